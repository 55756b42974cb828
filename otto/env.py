"""Typed readers for environment variables.

Every setting comes through one of these helpers, so a bad value stops the process at
start-up with a message that names the variable, instead of surfacing later as a
confusing runtime error.
"""

import os
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_RATE = re.compile(r"^(\d+)/(second|minute|hour|day|s|m|h|d)$")


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def _bad(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}={value!r} is invalid: expected {expected}.")


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _bad(name, value, "a boolean (true/false, 1/0, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise _bad(name, value, "an integer") from None
    if minimum is not None and number < minimum:
        raise _bad(name, value, f"an integer >= {minimum}")
    return number


def env_float(
    name: str, default: float, *, minimum: float = 0.0, maximum: float | None = None
) -> float:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise _bad(name, value, "a number") from None
    if number < minimum or (maximum is not None and number > maximum):
        raise _bad(name, value, f"a number between {minimum} and {maximum}")
    return number


def env_decimal(name: str) -> Decimal | None:
    """A non-negative amount (money: ``12.50``), or None when unset or blank."""
    value = _raw(name)
    if value is None or value == "":
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _bad(name, value, "an amount such as 50 or 12.50") from None
    if not number.is_finite() or number < 0:
        raise _bad(name, value, "an amount >= 0")
    return number


def env_list(name: str, default: Sequence[str] = ()) -> list[str]:
    """A comma-separated list; blanks are dropped."""
    value = _raw(name)
    if value is None or value == "":
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, choices: Sequence[str], default: str) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise _bad(name, value, "one of " + ", ".join(choices))
    return value


def env_secret(name: str, default: str | None = None) -> str | None:
    """A secret: never echoed back in an error message."""
    value = _raw(name)
    if value is None or value == "":
        return default
    if value != value.strip() or any(ch.isspace() for ch in value):
        raise ImproperlyConfigured(f"{name} contains whitespace; check how it was pasted.")
    return value


def env_rate(name: str, default: str) -> str:
    """A rate such as ``60/minute``, in the form DRF throttles accept."""
    value = env_str(name, default)
    if not _RATE.match(value):
        raise _bad(name, value, "a rate like 60/minute (per second, minute, hour or day)")
    return value


def env_mapping(name: str, *, keys: Sequence[str] | None = None) -> dict[str, str]:
    """``key=value`` pairs separated by commas, e.g. ``asr=asr,analysis=heavy``."""
    value = _raw(name)
    if not value:
        return {}
    mapping: dict[str, str] = {}
    for pair in value.split(","):
        if not pair.strip():
            continue
        key, sep, item = (part.strip() for part in pair.partition("="))
        if not sep or not key or not item:
            raise _bad(name, value, "comma-separated key=value pairs")
        if keys is not None and key not in keys:
            raise _bad(name, value, f"keys among {', '.join(keys)} (got {key!r})")
        if key in mapping:
            raise _bad(name, value, f"each key once ({key!r} repeats)")
        mapping[key] = item
    return mapping


_DURATION = re.compile(r"(\d+)([smh]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


def env_durations(
    name: str, defaults: dict[str, int], *, keys: Sequence[str] | None = None
) -> dict[str, int]:
    """``key=duration`` pairs in seconds (``900``, ``900s``, ``15m``, ``1h``) over
    ``defaults``, e.g. ``transcribing=15m,analyzing=600``."""
    durations = dict(defaults)
    for key, item in env_mapping(name, keys=keys).items():
        match = _DURATION.fullmatch(item)
        if not match or int(match[1]) <= 0:
            raise _bad(name, item, "positive durations such as 900, 900s, 15m or 1h")
        durations[key] = int(match[1]) * _UNIT_SECONDS[match[2]]
    return durations
