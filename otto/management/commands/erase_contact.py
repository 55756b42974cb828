from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from otto import erasure
from otto.commands import find_company
from otto.logging import mask_phone


class Command(BaseCommand):
    help = (
        "Erase a person everywhere in one company: contact, calls and recordings in storage, "
        "transcripts, analyses, texts, leads, appointments, tasks, recoveries, webhook "
        "bodies. Keeps an opt-out under the number's hash and an audit event; prints the "
        "counts removed per kind (docs/governance.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", required=True, help="The company's slug (or id).")
        parser.add_argument("--phone", required=True, help="The number, E.164 or national.")
        parser.add_argument(
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Do not ask to confirm.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        company = find_company(options["company"])
        try:
            subject = erasure.person(company, options["phone"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        masked = mask_phone(subject.phone)
        if options["interactive"]:
            answer = input(f"Erase {masked} from {company.slug} everywhere? Type 'erase': ")
            if answer.strip() != "erase":
                raise CommandError("Not erased.")
        result = erasure.erase_contact(company, subject.phone)
        self.stdout.write(f"erased {masked} from {company.slug}")
        for kind, count in sorted(result.counts.items()):
            self.stdout.write(f"  {kind}: {count}")
        if not result.counts:
            self.stdout.write("  nothing was held on this number")
        if result.failed_files:
            raise CommandError(
                "rows erased, but these stored files could not be deleted (remove them by "
                f"hand): {', '.join(result.failed_files)}"
            )
