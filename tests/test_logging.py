import json
import logging

import pytest

from otto.logging import OttoJsonFormatter, RequestIdFilter, bind_request_id, redact


def render(message: str, *args, redact_pii: bool = True, **extra) -> dict:
    record = logging.LogRecord("otto.test", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    RequestIdFilter().filter(record)
    formatter = OttoJsonFormatter("%(levelname)s %(name)s %(message)s", redact_pii=redact_pii)
    return json.loads(formatter.format(record))


def test_a_log_line_masks_phone_numbers_and_emails():
    line = render("text-back to %s for %s", "+1 (303) 555-0142", "jane.doe@example.com")

    assert line["message"] == "text-back to [phone] for [email]"


def test_extra_fields_are_masked_too():
    line = render("contact updated", contact={"phone": "+13035550142", "name": "Jane"})

    assert line["contact"] == {"phone": "[phone]", "name": "Jane"}


def test_redaction_can_be_switched_off():
    line = render("call from %s", "+13035550142", redact_pii=False)

    assert line["message"] == "call from +13035550142"


def test_each_line_is_json_with_level_logger_and_request_id():
    bind_request_id("req-42")

    line = render("hello")

    assert line["level"] == "INFO"
    assert line["logger"] == "otto.test"
    assert line["request_id"] == "req-42"
    assert "timestamp" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111 1111 1111 1111 on file", "card [card] on file"),
        ("card 4111-1111-1111-1111", "card [card]"),
        ("ssn 123-45-6789", "ssn [ssn]"),
        ("call 303.555.0142 now", "call [phone] now"),
        ("intl +442071838750", "intl [phone]"),
        # Ids and timestamps stay readable.
        (
            "call 1732812345678 at 2026-11-28T17:43:04Z",
            "call 1732812345678 at 2026-11-28T17:43:04Z",
        ),
        ("request 4f9c2a0e6b1d4e3f8a7b6c5d4e3f2a1b", "request 4f9c2a0e6b1d4e3f8a7b6c5d4e3f2a1b"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected
