"""AI follow-up calls through Bland, behind the same gate as texts (docs/recovery.md).

:func:`request_call` records an :class:`~messaging.models.AiCall` and asks the gate
(:func:`messaging.gate.check_call`): no recorded ai_voice opt-in, or no disclosure script,
and it is stored ``blocked`` with the reason and never queued; outside the recipient's
hours it waits ``pending`` for the window's opening (``dispatch-due-ai-calls``); else its
placing is enqueued on queue ``followups``.

:func:`place` is the only way a call reaches Bland: it claims the row with a
compare-and-set (``pending`` → ``placing``, committed before Bland is called), asks the
gate again, and only :func:`_dial`, reached solely through an allowed decision, calls
:meth:`BlandClient.send_call`. Bland's send is not idempotent, so the claim is never taken
twice: a task run twice finds the row ``placing`` or ``placed`` and does nothing. What is
done after an error depends on whether Bland may have placed the call:

- refused (a 4xx): ``failed`` with Bland's reason;
- certainly not placed (429 after the client's own retry, or no connection made):
  ``pending`` again with a backoff;
- unknown (a timeout, a 5xx): left ``placing`` and never resent. If Bland did place it, its
  post-call webhook finds the row by the ``otto_ai_call`` id in its metadata; if none
  arrives within :data:`UNANSWERED_DEADLINE`, the dispatcher marks it ``failed``.
"""

from __future__ import annotations

import datetime
import logging

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from appointments.models import Task
from calls.models import Call
from calls.redaction import redact_text
from integrations.bland.client import BlandClient
from integrations.bland.schemas import Call as BlandCall
from integrations.bland.schemas import SendCallRequest
from integrations.errors import ProviderError
from messaging import gate, selectors
from messaging.models import AiCall, FollowUp
from otto.models import Company, Contact
from otto.queues import Queue, enqueue

logger = logging.getLogger(__name__)

Status = AiCall.Status
WEBHOOK_PATH = "/webhooks/bland"
# Echoed back by Bland in the call object and its webhook (messaging.webhooks.bland).
COMPANY_KEY, AI_CALL_KEY = "otto_company", "otto_ai_call"
# A placing call with neither Bland's answer nor its webhook after this long is given up.
UNANSWERED_DEADLINE = datetime.timedelta(hours=1)
MAX_ATTEMPTS = 5
MAX_DURATION_MINUTES = 10

TASK = (
    "You are calling {name} on behalf of {company}, a home-services business, to follow up on "
    "their recent call. Open with the disclosure exactly as given in your first sentence: you "
    "are an automated AI assistant. Ask whether they would like to book a visit, and when; "
    "or whether they prefer a person to call them back. Never ask for or accept card, bank "
    "or social security numbers. If they ask not to be called again, apologise, confirm it "
    "and end the call."
)
# What Bland extracts into the call object's ``analysis`` (messaging.webhooks.bland).
ANALYSIS_SCHEMA = {
    "booking_requested": "boolean: the customer wants a visit or appointment booked",
    "requested_time": "string: the day and time the customer asked for, as said, or null",
    "call_back_requested": "boolean: the customer wants a person to call them back",
}


def disclosure(company: Company) -> str:
    """The tenant's disclosure script, ``{company}`` replaced by its name."""
    return company.ai_call_disclosure_script.strip().replace("{company}", company.name)


def request_call(
    company: Company,
    contact: Contact,
    *,
    call: Call | None = None,
    followup: FollowUp | None = None,
    now: datetime.datetime | None = None,
) -> AiCall:
    """Record an AI call to ``contact`` (a follow-up's to its number) and queue it through
    the gate (see the module). A follow-up has one AI call (``AiCall.followup`` is
    unique): asked again, the one it has is returned and nothing is queued twice."""
    from messaging import tasks  # tasks imports this module back

    now = now or timezone.now()
    if followup is not None:
        existing = AiCall.objects.filter(followup=followup).first()
        if existing is not None:
            return existing
    phone = (followup.phone if followup is not None else "") or contact.phone
    decision = gate.check_call(company, to=phone, now=now, contact_state=contact.state)
    if decision.allowed or decision.deferred:
        status, due = Status.PENDING, decision.send_at or now
    else:
        status, due = Status.BLOCKED, None
    ai_call = AiCall.objects.create(
        company=company,
        contact=contact,
        phone=phone,
        call=call,
        followup=followup,
        status=status,
        status_reason="" if decision.allowed else decision.reason,
        consent=decision.consent,
        next_attempt_at=due,
    )
    if decision.allowed:
        enqueue(Queue.FOLLOWUPS, tasks.place_ai_call, ai_call.pk)
    return ai_call


# --- follow-ups of channel ai_call (messaging.followups dispatches on the channel) -----


def followup_channel(company: Company, phone: str) -> str:
    """The channel a follow-up to ``phone`` is drafted in: an AI call when the tenant
    chose AI calls for follow-ups (``followup_ai_calls``) and the number has an ai_voice
    opt-in that still stands; else a text. The gate checks the consent again at the call."""
    if company.followup_ai_calls and selectors.ai_voice_consent(company, phone) is not None:
        return FollowUp.Channel.AI_CALL
    return FollowUp.Channel.SMS


# A follow-up's status while its AI call is in each of its own.
FOLLOWUP_STATUS: dict[str, str] = {
    Status.PENDING: FollowUp.Status.SCHEDULED,
    Status.BLOCKED: FollowUp.Status.BLOCKED,
    Status.FAILED: FollowUp.Status.FAILED,
}


def send_followup(followup: FollowUp, now: datetime.datetime | None = None) -> str:
    """The ``ai_call`` sender of :data:`messaging.followups.SENDERS` (called with the
    follow-up claimed): the follow-up placed as an AI call, through the gate, once per
    follow-up. It writes and returns the status the follow-up ends in, which then follows
    its call: ``blocked`` with the gate's reason, ``scheduled`` (for the window's opening)
    while quiet hours defer it, ``sent`` once asked of Bland, ``failed`` if that failed."""
    from messaging import tasks  # tasks imports this module back

    now = now or timezone.now()
    ai_call = request_call(
        followup.company, followup.contact, call=followup.call, followup=followup, now=now
    )
    status: str = FOLLOWUP_STATUS.get(ai_call.status, FollowUp.Status.SENT)
    changes: dict[str, object] = {"status_reason": ai_call.status_reason}
    due = ai_call.next_attempt_at
    if status == FollowUp.Status.SCHEDULED and (due is None or due <= now):
        # Due (just queued, or its window opened): placed now; the claim makes a second
        # push of the task harmless.
        status = FollowUp.Status.SENT
        enqueue(Queue.FOLLOWUPS, tasks.place_ai_call, ai_call.pk)
    elif status == FollowUp.Status.SCHEDULED:
        changes["scheduled_for"] = due
    FollowUp.objects.filter(pk=followup.pk).update(status=status, **changes)
    return status


def _followup_moved(ai_call: AiCall, status: str, **changes: object) -> None:
    """The follow-up follows its call after the send (a cancelled one stays so)."""
    if ai_call.followup_id is None:
        return
    FollowUp.objects.filter(pk=ai_call.followup_id).exclude(
        status=FollowUp.Status.CANCELLED
    ).update(status=status, **changes)


def claim(ai_call_id: int, now: datetime.datetime) -> AiCall | None:
    claimed = (
        AiCall.objects.filter(pk=ai_call_id, status=Status.PENDING, next_attempt_at__lte=now)
        .filter(bland_call_id__isnull=True)
        .update(
            status=Status.PLACING,
            claimed_at=now,
            attempts=F("attempts") + 1,
            # When a placing that neither Bland nor its webhook settled is given up.
            next_attempt_at=now + UNANSWERED_DEADLINE,
        )
    )
    if not claimed:
        return None
    return AiCall.objects.select_related("company", "contact").get(pk=ai_call_id)


def place(ai_call_id: int, now: datetime.datetime | None = None) -> str | None:
    """Place one due AI call, once; its status afterwards, or None when not ours."""
    now = now or timezone.now()
    ai_call = claim(ai_call_id, now)
    if ai_call is None:
        return None
    if (
        ai_call.followup_id is not None
        and FollowUp.objects.filter(
            pk=ai_call.followup_id, status=FollowUp.Status.CANCELLED
        ).exists()
    ):
        return _finish(
            ai_call, Status.BLOCKED, status_reason="follow-up cancelled", next_attempt_at=None
        )
    # Consent may have been revoked, or the window closed, since the call was queued.
    decision = gate.check_call(
        ai_call.company, to=ai_call.phone, now=now, contact_state=ai_call.contact.state
    )
    if decision.deferred:
        _followup_moved(ai_call, FollowUp.Status.SCHEDULED, scheduled_for=decision.send_at)
        return _finish(ai_call, Status.PENDING, next_attempt_at=decision.send_at)
    if not decision.allowed:
        _followup_moved(ai_call, FollowUp.Status.BLOCKED, status_reason=decision.reason)
        return _finish(ai_call, Status.BLOCKED, status_reason=decision.reason, next_attempt_at=None)
    return _dial(ai_call, decision, now)


def _dial(ai_call: AiCall, decision: gate.Decision, now: datetime.datetime) -> str:
    """The one caller of Bland's send: only with an allowed decision and its consent."""
    if not decision.allowed or decision.consent is None:
        raise ValueError("an AI call is placed only with the gate's consent")
    company = ai_call.company
    script = disclosure(company)
    name = ai_call.contact.name or "there"
    request = SendCallRequest(
        phone_number=ai_call.phone,
        task=TASK.format(name=name, company=company.name),
        first_sentence=script,
        from_number=company.twilio_number or None,
        # No recording: audio cannot be redacted, the transcript is (calls.redaction).
        record=False,
        webhook=settings.PUBLIC_BASE_URL + WEBHOOK_PATH,
        metadata={COMPANY_KEY: str(company.pk), AI_CALL_KEY: str(ai_call.pk)},
        request_data={"name": ai_call.contact.name},
        max_duration=MAX_DURATION_MINUTES,
        analysis_schema=ANALYSIS_SCHEMA,
    )
    # Written with the claim's row before the send: what the call carries and relies on.
    AiCall.objects.filter(pk=ai_call.pk).update(
        disclosure_script=script,
        disclosure_version=company.ai_call_disclosure_version,
        consent=decision.consent,
    )
    try:
        sent = BlandClient.from_settings().send_call(request)
    except ProviderError as exc:
        return _failed(ai_call, exc, now)
    _finish(
        ai_call,
        Status.PLACED,
        bland_call_id=sent.call_id,
        placed_at=now,
        status_reason="",
        next_attempt_at=None,
    )
    _followup_moved(ai_call, FollowUp.Status.SENT, status_reason="")
    return Status.PLACED


def not_placed(exc: ProviderError) -> bool:
    """True when Bland certainly did not place the call: rate-limited, or never reached."""
    cause = exc.__cause__
    return exc.status == 429 or isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout)


def _failed(ai_call: AiCall, exc: ProviderError, now: datetime.datetime) -> str:
    reason = exc.detail[:255]
    if exc.permanent:
        return _finish(ai_call, Status.FAILED, status_reason=reason, next_attempt_at=None)
    if not_placed(exc) and ai_call.attempts < MAX_ATTEMPTS:
        wait = max(exc.retry_after or 0.0, 60.0 * 2 ** (ai_call.attempts - 1))
        logger.warning("AI call %s: Bland did not take it, retrying: %s", ai_call.pk, exc)
        return _finish(
            ai_call,
            Status.PENDING,
            status_reason=reason,
            next_attempt_at=now + datetime.timedelta(seconds=min(wait, 3600)),
        )
    if not_placed(exc):
        return _finish(ai_call, Status.FAILED, status_reason=reason, next_attempt_at=None)
    # Bland may have placed it: never resent; its webhook, or the deadline, settles it.
    logger.warning("AI call %s: Bland's answer was lost; not resent: %s", ai_call.pk, exc)
    _finish(
        ai_call,
        Status.PLACING,
        status_reason=f"no answer from Bland ({reason}); waiting for its webhook, not resent"[:255],
        next_attempt_at=now + UNANSWERED_DEADLINE,
    )
    return Status.PLACING


def _finish(ai_call: AiCall, status: str, **changes: object) -> str:
    AiCall.objects.filter(pk=ai_call.pk, status=Status.PLACING).update(status=status, **changes)
    if status == Status.FAILED:
        _followup_moved(ai_call, FollowUp.Status.FAILED, status_reason=changes["status_reason"])
    return status


def due_calls(now: datetime.datetime, limit: int = 500) -> list[int]:
    """Pending calls whose window opened or whose retry is due."""
    due = AiCall.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
    return list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


def give_up_unanswered(now: datetime.datetime) -> int:
    """Calls left ``placing`` whose webhook never came: ``failed``, never resent."""
    lost = AiCall.objects.filter(
        status=Status.PLACING, bland_call_id__isnull=True, next_attempt_at__lte=now
    )
    reason = "neither Bland's answer nor its webhook came; not resent"
    with transaction.atomic():
        ids = list(lost.select_for_update(skip_locked=True).values_list("pk", flat=True))
        FollowUp.objects.filter(ai_call__pk__in=ids).update(
            status=FollowUp.Status.FAILED, status_reason=reason
        )
        return AiCall.objects.filter(pk__in=ids).update(
            status=Status.FAILED, status_reason=reason, next_attempt_at=None
        )


# --- the outcome (Bland's post-call webhook, messaging.webhooks.bland) -----------------

# Bland's words for a call that never got going (providers.md §6.2).
BLAND_FAILED = frozenset({"failed", "error", "call_error"})


def transcript_text(call: BlandCall) -> str:
    """The conversation as one text, "speaker: words" per line."""
    if call.transcripts:
        return "\n".join(f"{line.user}: {line.text}" for line in call.transcripts)
    return (call.concatenated_transcript or "").replace(" \n ", "\n")


def reached_a_person(call: BlandCall) -> bool:
    if call.answered_by:
        return call.answered_by == "human"
    return any(line.user == "user" and line.text.strip() for line in call.transcripts)


def record_outcome(
    company: Company, call: BlandCall, *, counts: dict[str, int] | None = None
) -> AiCall | None:
    """Store what Bland reports about the call on the tenant's AiCall, once: the outcome,
    the redacted transcript and summary, then its tasks. None when the tenant has no AI
    call with that Bland id (nor, for one whose send answer was lost, the metadata's id)."""
    rows = AiCall.objects.select_related("contact").filter(company=company)
    ai_call = rows.filter(bland_call_id=call.call_id).first()
    own_id = str(call.metadata.get(AI_CALL_KEY, ""))
    if ai_call is None and own_id.isdigit():
        ai_call = rows.filter(pk=int(own_id), bland_call_id__isnull=True).first()
    if ai_call is None:
        return None
    failed = bool(
        {call.status, call.queue_status} & BLAND_FAILED
        or (call.error_message and not call.completed)
    )
    transcript = redact_text(transcript_text(call))
    now = timezone.now()
    with transaction.atomic():
        # Once: a redelivery (or a replay) finds the call completed and changes nothing.
        done = AiCall.objects.filter(
            pk=ai_call.pk, status__in=[Status.PLACING, Status.PLACED]
        ).update(
            status=Status.FAILED if failed else Status.COMPLETED,
            status_reason=redact_text(call.error_message or "").text[:255],
            bland_call_id=call.call_id,
            outcome=(call.status or call.queue_status or "")[:32],
            answered_by=(call.answered_by or "")[:32],
            duration_seconds=call.duration_seconds,
            summary=redact_text(call.summary or "").text,
            transcript=transcript.text,
            redaction_counts=counts if counts is not None else transcript.counts,
            placed_at=F("placed_at") if ai_call.placed_at else (call.started_at or now),
            completed_at=call.end_at or now,
            next_attempt_at=None,
        )
        if done:
            ai_call.refresh_from_db()
            if failed:
                _followup_moved(
                    ai_call, FollowUp.Status.FAILED, status_reason=ai_call.status_reason
                )
            make_tasks(ai_call, call)
    return ai_call


def make_tasks(ai_call: AiCall, call: BlandCall) -> Task | None:
    """The CSR's task an AI call leaves (docs/recovery.md "AI calls"): a call back when it
    reached nobody or the customer asked for one; a booking to make when they asked for a
    visit; a review when Bland extracted nothing. None when the customer wanted neither."""
    analysis = call.analysis
    summary = ai_call.summary or "no summary"
    if not reached_a_person(call) or ai_call.status == Status.FAILED:
        reached = ai_call.answered_by or ai_call.outcome or "no answer"
        kind = Task.Type.CALL_BACK
        text = f"The AI follow-up call did not reach the customer ({reached}): call them back."
    elif analysis.get("booking_requested") is True:
        when = str(analysis.get("requested_time") or "").strip()
        kind = Task.Type.SCHEDULE_APPOINTMENT
        text = (
            f"The customer asked the AI call for a visit{f' ({when})' if when else ''}: "
            f"book it and confirm with them. Summary: {summary}"
        )
    elif analysis.get("call_back_requested") is True:
        kind = Task.Type.CALL_BACK
        text = f"The customer asked the AI call for a person to call back. Summary: {summary}"
    elif not analysis:
        kind = Task.Type.FOLLOW_UP_CALL
        text = f"Review the AI follow-up call and follow up. Summary: {summary}"
    else:
        return None
    task, _ = Task.objects.get_or_create(
        company=ai_call.company,
        source=Task.Source.AI_CALL,
        dedupe_key=f"ai_call:{ai_call.pk}",
        defaults={
            "type": kind,
            "description": redact_text(text).text,
            "due_at": ai_call.completed_at,
            "contact": ai_call.contact,
            "call": ai_call.call,
        },
    )
    return task
