from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from otto import retention
from otto.models import Company


class Command(BaseCommand):
    help = (
        "Purge what is past each tenant's retention windows now, as the daily "
        "purge-retention schedule does, and print the counts (docs/retention.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", metavar="SLUG", help="Only this tenant.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be purged; write and delete nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        companies = retention.companies_with_work()
        if options["company"]:
            companies = Company.objects.filter(slug=options["company"])
            if not companies.exists():
                raise CommandError(f"No company with slug {options['company']!r}.")
        dry_run = options["dry_run"]
        for company in companies.order_by("slug"):
            purge = retention.purge_company(company, dry_run=dry_run)
            counts = ", ".join(f"{kind} {n}" for kind, n in sorted(purge.counts.items()))
            prefix = "would purge" if dry_run else "purged"
            self.stdout.write(f"{company.slug}: {prefix} {counts or 'nothing'}")
            for error in purge.errors:
                self.stderr.write(f"{company.slug}: {error}")
