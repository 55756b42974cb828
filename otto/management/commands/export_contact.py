import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from otto import erasure
from otto.commands import find_company


class Command(BaseCommand):
    help = (
        "Write everything Otto holds on a person in one company as JSON (recordings as "
        "their storage keys, not their audio); audited (docs/governance.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", required=True, help="The company's slug (or id).")
        parser.add_argument("--phone", required=True, help="The number, E.164 or national.")
        parser.add_argument("--output", help="A file to write; standard output when left out.")

    def handle(self, *args: Any, **options: Any) -> None:
        company = find_company(options["company"])
        try:
            data = erasure.export_contact(company, options["phone"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        text = json.dumps(data, cls=DjangoJSONEncoder, indent=2, sort_keys=True)
        if options["output"]:
            Path(options["output"]).write_text(text + "\n", encoding="utf-8")
            self.stderr.write(f"wrote {options['output']}")
        else:
            self.stdout.write(text)
