"""``manage.py backfill_calls``: bring a tenant's CallRail call history in.

    manage.py backfill_calls --company acme --since 2026-01-01 [--until 2026-03-31]
        [--dry-run] [--no-recordings]

Interrupt it at any time (Ctrl-C, a CallRail outage): run the same command again and it
resumes after the last call it handled, without duplicates. See docs/operations.md.
"""

from __future__ import annotations

import datetime
import time
from collections import Counter
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand, CommandError

from calls.backfill import (
    EXISTING,
    FAILED,
    NEW,
    RETRYING,
    BackfillRefused,
    backfill_calls,
    check_backfill,
)
from integrations.errors import ProviderError
from otto.commands import find_company


def parse_day(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from None


class ProgressLine:
    """One line on stderr, rewritten in place on a terminal; elsewhere (a log) every
    ``every`` calls. No bar: CallRail's relative pagination does not say how many to go."""

    def __init__(self, stream, every: int = 100) -> None:
        self.stream = stream
        self.every = every
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.last_drawn = 0.0

    def __call__(self, counts: Counter) -> None:
        done = counts.total()
        now = time.monotonic()
        if self.tty and now - self.last_drawn < 0.1:
            return
        if not self.tty and done % self.every:
            return
        self.last_drawn = now
        if self.tty:
            self.stream.write("\r" + self.text(counts), ending="")
        else:
            self.stream.write(self.text(counts))

    def text(self, counts: Counter) -> str:
        rate = counts.total() / max(time.monotonic() - self.started, 1e-6)
        return (
            f"{counts.total()} calls · {counts[NEW]} new · {counts[EXISTING]} existing · "
            f"{counts[FAILED]} failed · {counts[RETRYING]} retrying · {rate:.1f}/s"
        )

    def close(self, counts: Counter) -> None:
        """The final counts, ending the line."""
        self.stream.write(("\r" if self.tty else "") + self.text(counts))


class Command(BaseCommand):
    help = "Ingest a company's CallRail calls over a date range; resumable."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--company", required=True, help="company id or slug")
        parser.add_argument("--since", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument(
            "--until", help="last day, YYYY-MM-DD (default: today in the company's time zone)"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="list and count the calls; write nothing"
        )
        parser.add_argument(
            "--no-recordings",
            action="store_true",
            help="store the calls without their audio (they end 'skipped')",
        )

    def handle(self, *args, **options) -> None:
        company = find_company(options["company"])
        since = parse_day(options["since"])
        today = datetime.datetime.now(ZoneInfo(company.timezone)).date()
        until = parse_day(options["until"]) if options["until"] else today
        if until < since:
            raise CommandError("--until is before --since.")
        dry_run, recordings = options["dry_run"], not options["no_recordings"]
        try:
            check_backfill(company)
        except BackfillRefused as exc:
            raise CommandError(f"Not backfilled: {exc}.") from None

        mode = "dry run, nothing written" if dry_run else "resumable"
        self.stdout.write(f"Backfilling {company.name} from {since} to {until} ({mode}).")
        progress = ProgressLine(self.stderr)
        counts: Counter = Counter()  # filled as it goes, so an interruption can report it
        try:
            backfill_calls(
                company,
                since=since,
                until=until,
                dry_run=dry_run,
                recordings=recordings,
                counts=counts,
                progress=progress,
            )
        except (KeyboardInterrupt, ProviderError) as exc:
            progress.close(counts)
            self.summary(counts, dry_run)
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
            raise CommandError(
                f"Stopped: {reason}. Run the same command again to resume where it stopped."
            ) from None
        progress.close(counts)
        self.summary(counts, dry_run)

    def summary(self, counts: Counter, dry_run: bool) -> None:
        new = "would be new" if dry_run else "new"
        line = (
            f"{counts.total()} calls: {counts[NEW]} {new}, {counts[EXISTING]} existing, "
            f"{counts[FAILED]} failed, {counts[RETRYING]} left to retry."
        )
        style = self.style.SUCCESS if not counts[FAILED] else self.style.WARNING
        self.stdout.write(style(line))
        if counts[FAILED]:
            self.stdout.write("Failed calls are in the admin (Calls, stage 'failed') with why.")
