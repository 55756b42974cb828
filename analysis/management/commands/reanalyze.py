"""``manage.py reanalyze``: run the analysis of a company's past calls again.

    manage.py reanalyze --company acme --since 2026-11-01 --until 2026-11-30
        [--prompt-version 2026-12-01.v1] [--dry-run]

Every run adds a version (the earlier ones are kept, people's corrections carry over).
Interrupt it at any time: the same command run again resumes with the calls not done yet.
See docs/analysis.md "Re-analysing past calls".
"""

from __future__ import annotations

import time
from collections import Counter

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from analysis import services
from calls.management.commands.backfill_calls import parse_day
from otto.commands import find_company


class ProgressBar:
    """A bar on stderr, redrawn in place on a terminal; elsewhere (a log) one line every
    ``every`` calls and at the end."""

    WIDTH = 30

    def __init__(self, stream: OutputWrapper, every: int = 50) -> None:
        self.stream = stream
        self.every = every
        self.tty = stream.isatty()
        self.started = time.monotonic()

    def __call__(self, counts: Counter[str], total: int) -> None:
        done = counts.total()
        if self.tty:
            self.stream.write("\r" + self.text(counts, total), ending="")
        elif done == total or done % self.every == 0:
            self.stream.write(self.text(counts, total))

    def text(self, counts: Counter[str], total: int) -> str:
        done = counts.total()
        filled = self.WIDTH * done // total if total else self.WIDTH
        rate = done / max(time.monotonic() - self.started, 1e-6)
        return (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total} · "
            f"{counts[services.ANALYSED]} analysed · {counts[services.WAITING]} waiting · "
            f"{counts[services.FAILED]} failed · {counts[services.SKIPPED]} skipped · "
            f"{rate:.1f}/s"
        )

    def close(self) -> None:
        if self.tty:
            self.stream.write("")


class Command(BaseCommand):
    help = "Run the analysis of a company's past calls again, keeping every version; resumable."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--company", required=True, help="company id or slug")
        parser.add_argument("--since", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--until", required=True, help="last day, YYYY-MM-DD")
        parser.add_argument(
            "--prompt-version",
            default="",
            help="only calls whose current analysis has another prompt version "
            f"(this deployment's is {services.PROMPT_VERSION})",
        )
        parser.add_argument("--dry-run", action="store_true", help="count the calls; write nothing")

    def handle(self, *args, **options) -> None:
        company = find_company(options["company"])
        since, until = parse_day(options["since"]), parse_day(options["until"])
        if until < since:
            raise CommandError("--until is before --since.")
        prompt_version, dry_run = options["prompt_version"], options["dry_run"]
        try:
            services.check_reanalysis(company, prompt_version)
        except (services.AnalysisWaits, services.ReanalysisRefused) as exc:
            raise CommandError(f"Not re-analysed: {exc}.") from None

        if dry_run:
            selected = services.reanalyze_calls(
                company, since=since, until=until, prompt_version=prompt_version, dry_run=True
            )["selected"]
            self.stdout.write(
                f"{selected} call(s) of {company.name} from {since} to {until} "
                "would be re-analysed (dry run, nothing written)."
            )
            return

        self.stdout.write(f"Re-analysing {company.name}'s calls from {since} to {until}.")
        progress = ProgressBar(self.stderr)
        counts: Counter[str] = Counter()  # filled as it goes, so an interruption can report it
        try:
            services.reanalyze_calls(
                company,
                since=since,
                until=until,
                prompt_version=prompt_version,
                counts=counts,
                progress=progress,
            )
        except (KeyboardInterrupt, services.AnalysisWaits) as exc:
            progress.close()
            self.summary(counts)
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
            raise CommandError(
                f"Stopped: {reason}. Run the same command again to resume where it stopped."
            ) from None
        progress.close()
        self.summary(counts)

    def summary(self, counts: Counter[str]) -> None:
        line = (
            f"{counts.total()} call(s): {counts[services.ANALYSED]} analysed, "
            f"{counts[services.WAITING]} left to the pipeline, {counts[services.FAILED]} failed, "
            f"{counts[services.SKIPPED]} skipped (moved meanwhile)."
        )
        style = self.style.SUCCESS if not counts[services.FAILED] else self.style.WARNING
        self.stdout.write(style(line))
        if counts[services.FAILED]:
            self.stdout.write("Failed calls are in the admin (Calls, stage 'failed') with why.")
