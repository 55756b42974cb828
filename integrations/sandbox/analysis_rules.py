"""The sandbox's simulated call analysis: transparent keyword rules, never a model.

The sandbox's OpenAI and Shunya endpoints both answer from here. :func:`analyze` turns a
transcript (``"agent: …\\ncustomer: …"`` lines, as the scripted scenarios render them)
into plain facts; :func:`fit_to_schema` then shapes those facts into whatever JSON schema
the request asked for, so the official SDK's structured-output parsing succeeds for any
caller model. Every free-text field says it is simulated.
"""

from __future__ import annotations

import re
from typing import Any

SIMULATED_MODEL = "otto-sandbox-rules-v1"
SIMULATED_NOTE = "Simulated by the Otto sandbox's keyword rules; not real AI output."

_DAY = re.compile(
    r"\b(?:today|tomorrow|tonight|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    re.IGNORECASE,
)
_CLOCK = re.compile(
    r"\b\d{1,2}(?::\d{2})?\s*(?:a\.?m\b\.?|p\.?m\b\.?)"
    r"|\bnoon\b|\bthis (?:morning|afternoon|evening)\b",
    re.IGNORECASE,
)
_ADDRESS = re.compile(
    r"\b\d{1,6}\s+(?:[A-Za-z0-9.']+\s+){1,4}?"
    r"(?:street|st|avenue|ave|road|rd|drive|dr|lane|ln|boulevard|blvd|court|ct|way|place|pl"
    r"|circle|cir|parkway|pkwy|terrace|ter)\b\.?",
    re.IGNORECASE,
)
_AGREED = re.compile(
    r"\b(?:you're (?:all )?(?:set|booked)|(?:is |are |you're |it's )?(?:booked|scheduled|confirmed)"
    r"|see you (?:then|on|at|tomorrow)|that works|works for me|sounds good|perfect)\b",
    re.IGNORECASE,
)
_NOT_OFFERED = re.compile(
    r"\b(?:we don't (?:do|offer|service|handle|work on)|we do not (?:do|offer|service|handle)"
    r"|not something we (?:do|offer)|we only (?:do|handle|service)|outside (?:of )?our service)",
    re.IGNORECASE,
)
_SPAM = re.compile(
    r"\b(?:wrong number|extended warranty|press (?:one|1)|google (?:listing|business)"
    r"|search engine|seo\b|robocall|not a sales call|pre-?approved|business loan)",
    re.IGNORECASE,
)
_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b|\b(?:card number|credit card|debit card)\b", re.I)
_CALLBACK = re.compile(r"\bcall (?:me|you|us) back\b|\bcallback\b", re.IGNORECASE)
_SEND_QUOTE = re.compile(r"\bsend (?:me |us )?(?:a |the )?(?:written )?(?:quote|estimate)", re.I)
_URGENT = re.compile(
    r"\b(?:emergency|asap|right away|urgent|no heat|no (?:ac|a/c|air)|flood)", re.I
)

# Objection categories (DESIGN §9.2's taxonomy), most specific first; the first match per
# utterance wins. Asking what something costs, or for a written quote, is a question, not an
# objection: only words that push back on a price count. Quotes are the customer's own words.
_OBJECTIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "price",
        re.compile(r"\b(?:expensive|pricey|too much|cheaper|can't afford|cannot afford)", re.I),
    ),
    (
        "decision_maker",
        re.compile(r"\b(?:talk to|check with|ask) my (?:wife|husband|partner|landlord)", re.I),
    ),
    ("competitor", re.compile(r"\b(?:another company|other (?:company|quote)|competitor)", re.I)),
    (
        "trust",
        re.compile(r"\b(?:ridiculous|terrible|unacceptable|last time|never again|scam)", re.I),
    ),
    (
        "timing",
        re.compile(
            r"\b(?:not (?:right )?now|next (?:week|month)|too (?:soon|late)|think about it"
            r"|need to think)",
            re.I,
        ),
    ),
)
_POSITIVE = re.compile(r"\b(?:thank|thanks|great|perfect|awesome|appreciate|wonderful)\b", re.I)
_NEGATIVE = re.compile(
    r"\b(?:angry|ridiculous|terrible|unacceptable|frustrated|upset|awful|worst|never again)\b",
    re.IGNORECASE,
)


# Pending actions, and the canonical action type each is typed with when a caller's
# schema asks for a type (Otto's does: analysis.schema.ActionType).
_CALL_BACK = "Call the customer back"
_SEND_WRITTEN_QUOTE = "Send the customer a written quote"
_FOLLOW_UP = "Follow up to book the appointment"
_PAYMENT_LINK = "Take payment through the secure payment link, not over the phone"
ACTION_TYPES = {
    _CALL_BACK: "call_back",
    _SEND_WRITTEN_QUOTE: "send_quote",
    _FOLLOW_UP: "follow_up_call",
    _PAYMENT_LINK: "send_payment_link",
}

_AGENT_ROLES = {"agent", "assistant", "csr", "rep"}
_ROLES = _AGENT_ROLES | {"customer", "user", "caller"}


# Otto's prompt numbers each utterance: "[3] customer: …" (analysis.prompt).
_INDEX = re.compile(r"^\[(\d+)\]\s*")


def _numbered_lines(transcript: str) -> list[tuple[int, str, str]]:
    """(utterance index, role, text) from ``role: text`` or ``[i] role: text`` lines.

    When some lines carry a role, the others are the caller's prompt wrapped around the
    transcript (or an "omitted" marker) and are ignored; a text with no roles at all
    counts as the customer's. Unnumbered lines are numbered in order.
    """
    labelled: list[tuple[int, str, str]] = []
    unlabelled: list[tuple[int, str, str]] = []
    for raw in transcript.splitlines():
        line = raw.strip()
        if not line:
            continue
        number = _INDEX.match(line)
        body = line[number.end() :] if number else line
        role, sep, text = body.partition(":")
        role = role.strip().lower()
        if sep and role in _ROLES:
            index = int(number[1]) if number else len(labelled)
            labelled.append((index, "agent" if role in _AGENT_ROLES else "customer", text.strip()))
        else:
            unlabelled.append((len(unlabelled), "customer", line))
    return labelled or unlabelled


def _lines(transcript: str) -> list[tuple[str, str]]:
    """(role, text) pairs, see :func:`_numbered_lines`."""
    return [(role, text) for _, role, text in _numbered_lines(transcript)]


def _appointment_time(texts: list[str]) -> str | None:
    """ "tomorrow at 9 am": preferably from a confirmation line, else day and clock anywhere."""
    confirmations = [t for t in texts if _AGREED.search(t)]
    for text in [*confirmations, *texts]:
        day, clock = _DAY.search(text), _CLOCK.search(text)
        if day and clock:
            return f"{day.group(0)} at {clock.group(0)}"
    full = "\n".join(texts)
    parts = [m.group(0) for m in (_DAY.search(full), _CLOCK.search(full)) if m]
    return " at ".join(parts) or None


def analyze(transcript: str) -> dict[str, Any]:
    """Facts about a call, from keyword rules. Keys are the names ``fit_to_schema`` matches."""
    numbered = _numbered_lines(transcript)
    lines = [(role, text) for _, role, text in numbered]
    customer = [text for role, text in lines if role == "customer"]
    full = "\n".join(text for _, text in lines)

    time = _appointment_time([text for _, text in lines])
    addresses = [m.group(0).rstrip(".") for m in _ADDRESS.finditer(full)]
    spam = bool(_SPAM.search(full))
    not_offered = bool(_NOT_OFFERED.search(full))
    booked = bool(time and addresses and _AGREED.search(full)) and not (spam or not_offered)

    objections = []
    for index, (number, role, text) in enumerate(numbered):
        if role != "customer":
            continue
        for category, pattern in _OBJECTIONS:
            if pattern.search(text):
                objections.append(
                    {
                        "category": category,
                        "quote": text,
                        "line": index,
                        "utterance": number,
                        "resolved": False,
                    }
                )
                break

    positive = sum(len(_POSITIVE.findall(t)) for t in customer)
    negative = sum(len(_NEGATIVE.findall(t)) for t in customer)
    sentiment = "negative" if negative > positive else "positive" if positive else "neutral"

    if spam or not_offered or not lines:
        lead_quality = "cold"
    elif booked or _URGENT.search(full):
        lead_quality = "hot"
    else:
        lead_quality = "warm"

    booking_status = "service_not_offered" if not_offered else "booked" if booked else "not_booked"
    intent = (
        "spam"
        if spam
        else "service_not_offered"
        if not_offered
        else "book_service"
        if booked or time
        else "price_inquiry"
        if objections
        else "inquiry"
    )
    card_mentioned = bool(_CARD.search(full))

    pending = []
    if _CALLBACK.search(full):
        pending.append(_CALL_BACK)
    if _SEND_QUOTE.search(full):
        pending.append(_SEND_WRITTEN_QUOTE)
    if not booked and lead_quality != "cold":
        pending.append(_FOLLOW_UP)
    if card_mentioned:
        pending.append(_PAYMENT_LINK)

    tips = []
    if any(o["category"] == "price" for o in objections):
        tips.append("Explain the value and financing options before quoting a price.")
    if not booked and lead_quality != "cold":
        tips.append("Offer two specific appointment times before ending the call.")
    if card_mentioned:
        tips.append("Never take card numbers verbally; send the payment link.")

    # The appointment: what a booked call agreed to, or a time the customer asked for. A day
    # the agent names for a call back ("I'll call you on Thursday") is neither.
    asked = _appointment_time(customer)
    wanted = time if booked else asked
    requested = (
        {"time": wanted, "address": addresses[0] if addresses else None}
        if wanted or (booked and addresses)
        else None
    )
    citations = _citations(numbered, time=time, addresses=addresses, objections=objections)
    qualified = lead_quality in ("hot", "warm")
    followup_text = (
        _followup_text(objections) if qualified and booking_status == "not_booked" else None
    )
    summary = (
        f"{SIMULATED_NOTE} Booking: {booking_status}; lead: {lead_quality}; "
        f"sentiment: {sentiment}; {len(objections)} objection(s)."
    )
    return {
        "simulated": True,
        "summary": summary,
        "sentiment": sentiment,
        "intent": intent,
        "lead_quality": lead_quality,
        "booking_status": booking_status,
        "booked": booked,
        "is_spam": spam,
        "service_offered": not not_offered,
        "urgency": "high" if _URGENT.search(full) else "normal",
        "objections": objections,
        "requested_appointment": requested,
        "appointment_time": time,
        "address": addresses[0] if addresses else None,
        "pending_actions": pending,
        "coaching_tips": tips,
        "card_number_mentioned": card_mentioned,
        "customer_utterances": len(customer),
        "qualified": qualified,
        "followup_text": followup_text,
        "sentiment_score": {"negative": -0.6, "neutral": 0.0, "positive": 0.6}[sentiment],
        "sop": _sop(numbered, booked=booked, addresses=addresses),
        "citations": citations,
    }


# What the simulated analyzer suggests texting, by the customer's first open objection.
_FOLLOWUP_TEXTS = {
    "price": "we can walk you through the options and financing so the price works for you.",
    "timing": "whenever the time is right, we can hold a slot that suits you.",
    "decision_maker": "happy to go over it again with everyone who needs to decide.",
}
_FOLLOWUP_DEFAULT = "we would be glad to answer any questions and find a time that suits you."


def _followup_text(objections: list[dict[str, Any]]) -> str:
    """The simulated analyzer's suggested text for a qualified call that did not book."""
    open_ = [o["category"] for o in objections if not o.get("resolved")]
    concern = _FOLLOWUP_TEXTS.get(open_[0], _FOLLOWUP_DEFAULT) if open_ else _FOLLOWUP_DEFAULT
    return f"Thanks for calling us today: {concern} Reply here to book a visit."


def _citations(
    numbered: list[tuple[int, str, str]],
    *,
    time: str | None,
    addresses: list[str],
    objections: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Which utterances back each fact: those the rules matched on (Otto's schema shape,
    ``[{field, utterances}]``)."""

    def where(pattern: re.Pattern[str]) -> list[int]:
        return [number for number, _, text in numbered if pattern.search(text)]

    agreed = where(_AGREED)
    appointment = [
        number for number, _, text in numbered if _DAY.search(text) and _CLOCK.search(text)
    ]
    everything = [number for number, _, _ in numbered]
    cited = {
        "summary": everything[:1] + everything[-1:],
        "booking_status": sorted(set(agreed + appointment)) or everything[-1:],
        "lead_quality": sorted(set(agreed + where(_URGENT))) or everything[:1],
        "objections": [o["utterance"] for o in objections],
        "appointment": appointment if time else [],
        "service_address": where(_ADDRESS) if addresses else [],
    }
    return [
        {"field": field, "utterances": sorted(set(numbers))}
        for field, numbers in cited.items()
        if numbers
    ]


_GREETING = re.compile(r"\b(?:thanks for calling|this is|speaking|how can i help)\b", re.I)
_ASKS_ADDRESS = re.compile(r"\b(?:address|where are you|where is the)\b", re.I)
_ASKS_NAME = re.compile(r"\b(?:your name|who am i speaking|can i get your name)\b", re.I)


def _sop(
    numbered: list[tuple[int, str, str]], *, booked: bool, addresses: list[str]
) -> dict[str, Any]:
    agent = [text for _, role, text in numbered if role == "agent"]
    steps = {
        "greeting": any(_GREETING.search(t) for t in agent[:1]),
        "asked_address": any(_ASKS_ADDRESS.search(t) for t in agent) or bool(addresses),
        "asked_name": any(_ASKS_NAME.search(t) for t in agent),
        "confirmed_booking": booked,
    }
    completed = [step for step, done in steps.items() if done]
    return {
        "score": round(100 * len(completed) / len(steps)),
        "completed": completed,
        "missed": [step for step, done in steps.items() if not done],
    }


# --- fitting facts to a requested JSON schema -------------------------------------------

# Schema property names that mean the same fact (normalised: lower case, no underscores).
_ALIASES = {
    "status": "booking_status",
    "bookingoutcome": "booking_status",
    "outcome": "booking_status",
    "leadscore": "lead_quality",
    "quality": "lead_quality",
    "category": "category",
    "type": "category",
    "text": "quote",
    "evidence": "quote",
    "excerpt": "quote",
    "actions": "pending_actions",
    "nextsteps": "pending_actions",
    "followup": "booked",
    "spam": "is_spam",
    "cardmentioned": "card_number_mentioned",
    "pcimentioned": "card_number_mentioned",
    "appointment": "requested_appointment",
    "requestedtime": "appointment_time",
    "time": "time",
    "tips": "coaching_tips",
    "serviceaddress": "address",
}
# Numbers asked for under a name whose fact is a label (e.g. sentiment as -1.0…1.0).
_NUMERIC = {"sentiment": "sentiment_score"}
_FREE_TEXT = {"summary", "notes", "explanation", "reasoning", "rationale", "description"}


def _norm(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def _lookup(facts: Any, name: str) -> Any:
    if not isinstance(facts, dict):
        return None
    if name in facts:
        return facts[name]
    by_norm = {_norm(k): v for k, v in facts.items()}
    key = _norm(name)
    if key in by_norm:
        return by_norm[key]
    alias = _ALIASES.get(key)
    return by_norm.get(_norm(alias)) if alias else None


def fit_to_schema(schema: dict[str, Any], facts: Any) -> Any:
    """A value that validates against ``schema`` (a JSON schema, ``$defs`` allowed)."""
    return _fit(schema, facts, schema.get("$defs") or schema.get("definitions") or {}, "")


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = {**defs.get(name, {}), **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _fit(schema: dict[str, Any], value: Any, defs: dict[str, Any], name: str) -> Any:
    schema = _resolve(schema, defs)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        resolved = [_resolve(o, defs) for o in options]
        nullable = any(o.get("type") == "null" for o in resolved)
        concrete = [o for o in resolved if o.get("type") != "null"]
        if value is None and nullable or not concrete:
            return None
        return _fit(concrete[0], value, defs, name)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return _pick_enum(schema["enum"], value)
    kind = schema.get("type")
    if isinstance(kind, list):  # e.g. ["string", "null"]
        if value is None and "null" in kind:
            return None
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if isinstance(value, str):  # a fact kept as text ("Call the customer back")
            value = {"description": value, "type": ACTION_TYPES.get(value)}
        return {
            key: _fit(sub, _value(value, key, sub, defs), defs, key)
            for key, sub in properties.items()
        }
    if kind == "array":
        items = schema.get("items", {})
        values = value if isinstance(value, list) else []
        return [_fit(items, item, defs, name) for item in values]
    if kind == "string":
        return _string(schema, value, name)
    if kind in ("integer", "number"):
        return _number(schema, value, integer=kind == "integer")
    if kind == "boolean":
        return bool(value) if isinstance(value, bool | int) else False
    if kind == "null":
        return None
    return value  # an untyped schema accepts anything


def _value(facts: Any, key: str, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    kind = _resolve(schema, defs).get("type")
    if kind in ("number", "integer") and _norm(key) in _NUMERIC:
        return _lookup(facts, _NUMERIC[_norm(key)])
    return _lookup(facts, key)


def _pick_enum(choices: list[Any], value: Any) -> Any:
    if value in choices:
        return value
    if isinstance(value, str):
        for choice in choices:
            if isinstance(choice, str) and _norm(choice) == _norm(value):
                return choice
    if isinstance(value, bool):
        for choice in choices:
            if isinstance(choice, str) and _norm(choice) in (
                ("yes", "true") if value else ("no", "false")
            ):
                return choice
    # A fact outside the caller's list is "other" (or "custom") when it has one.
    for fallback in ("other", "custom"):
        if fallback in choices:
            return fallback
    return choices[0] if choices else None


def _string(schema: dict[str, Any], value: Any, name: str) -> str:
    if _norm(name) in _FREE_TEXT and isinstance(value, str) and SIMULATED_NOTE not in value:
        return f"{SIMULATED_NOTE} {value}"
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, list):
        return "; ".join(str(v.get("quote", v)) if isinstance(v, dict) else str(v) for v in value)
    if _norm(name) in _FREE_TEXT:
        return SIMULATED_NOTE
    text = ""
    return text + "x" * max(0, int(schema.get("minLength", 0)))


def _number(schema: dict[str, Any], value: Any, *, integer: bool) -> int | float:
    number: float = (
        float(value)
        if isinstance(value, int | float)
        else (float(len(value)) if isinstance(value, list) else 0.0)
    )
    if "minimum" in schema:
        number = max(number, float(schema["minimum"]))
    if "maximum" in schema:
        number = min(number, float(schema["maximum"]))
    return int(number) if integer else number
