"""``manage.py rebuild_kpi_rollup``: rebuild the KPIs' daily rollup from the raw tables.

    manage.py rebuild_kpi_rollup [--company acme]

Every company, or the one named (id or slug), each in one transaction, in the time zone it
has now. Run it after loading calls around the application (a restore, ``COPY``); the
``kpi-rollup`` schedule rebuilds on its own a tenant that was never built or whose time
zone changed, and recomputes every day a change marked. Safe to run at any time, twice.
See docs/kpis.md "The daily rollup".
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from analysis import rollup
from otto.commands import find_company
from otto.models import Company


class Command(BaseCommand):
    help = "Rebuild the KPIs' daily rollup from the raw tables (every company, or one)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--company", help="company id or slug (default: every company)")

    def handle(self, *args, **options) -> None:
        if options["company"]:
            companies = [find_company(options["company"])]
        else:
            companies = list(Company.objects.order_by("pk"))
        for company in companies:
            started = time.monotonic()
            rows = rollup.rebuild(company)
            self.stdout.write(
                f"{company.slug}: {rows} day rows in {time.monotonic() - started:.1f} s"
            )
