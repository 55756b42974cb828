"""AI follow-up calls against the sandbox's Bland: the gate (consent, quiet hours), placing
once (a task run twice, a lost answer), the signed post-call webhook (outcome, redacted
transcript, tasks, timeline), bad signatures, duplicates and tenant isolation."""

from __future__ import annotations

import ast
import datetime
import json
import pathlib

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from appointments.models import Task
from integrations.bland.signature import SIGNATURE_HEADER, sign_bland
from integrations.models import Provider, WebhookEvent
from integrations.sandbox.config import CREDENTIALS
from integrations.sandbox.providers import bland as sandbox_bland
from messaging import followups, tasks, voice
from messaging.models import AiCall, ConsentEvent, FollowUp
from messaging.services import opt_in_ai_voice
from otto.models import Contact
from tests.api.factories import CallFactory
from tests.integrations.conftest import Outbox
from tests.messaging.conftest import CUSTOMER, PUBLIC

Status = AiCall.Status
SECRET = CREDENTIALS["BLAND_WEBHOOK_SECRET"]
WEBHOOK = "/webhooks/bland"
# 12:00 in New York (EDT): inside the window. 23:30 is outside it.
NOON_NY = datetime.datetime(2026, 3, 10, 16, 0, tzinfo=datetime.UTC)
LATE_NY = datetime.datetime(2026, 3, 11, 3, 30, tzinfo=datetime.UTC)
OPENS_NY = datetime.datetime(2026, 3, 11, 12, 0, tzinfo=datetime.UTC)  # 08:00 EDT
SCRIPT = "Hi, this is an automated AI assistant calling for {company}. This call is recorded."
CARD = "4111 1111 1111 1111"


@pytest.fixture
def acme_voice(acme_sms, sandbox, settings):
    """Acme with its disclosure script; Bland's webhooks captured, not POSTed."""
    acme_sms.ai_call_disclosure_script = SCRIPT
    acme_sms.ai_call_disclosure_version = "ai-calls-2026-03"
    acme_sms.save(update_fields=["ai_call_disclosure_script", "ai_call_disclosure_version"])
    sandbox.state["bland"]["delay"] = 3600  # the call "ends" when a test says so
    return acme_sms


@pytest.fixture
def bland_outbox(sandbox) -> Outbox:
    box = Outbox()
    sandbox.outbound = box
    return box


@pytest.fixture
def jane(acme_voice) -> Contact:
    contact, _ = Contact.objects.get_or_create(company=acme_voice, phone=CUSTOMER)
    contact.name = "Jane Doe"
    contact.save(update_fields=["name"])
    return contact


def opt_in(company, phone: str = CUSTOMER) -> ConsentEvent:
    return opt_in_ai_voice(
        company,
        phone=phone,
        actor=None,
        disclosure_version="ai-calls-2026-03",
        evidence="verbal, call CA123 at 02:13",
    )


def sent(sandbox) -> list[dict]:
    return [json.loads(r["body"]) for r in sandbox.recorded("bland.calls.create")]


def place(company, contact, run_tasks, when=NOON_NY, **kwargs) -> AiCall:
    with time_machine.travel(when, tick=False), run_tasks():
        ai_call = voice.request_call(company, contact, **kwargs)
    ai_call.refresh_from_db()
    return ai_call


def end_call(sandbox, ai_call: AiCall, first_line: str | None = None) -> None:
    """The sandbox's call ends now (its webhook goes to the outbox)."""
    if first_line is not None:
        with sandbox.lock:
            sandbox.state["bland"]["calls"][ai_call.bland_call_id]["_body"]["first_sentence"] = (
                first_line
            )
    sandbox_bland._finish_and_notify(sandbox, ai_call.bland_call_id)


def post(body: bytes, signature: str | None = None):
    headers = {SIGNATURE_HEADER: signature if signature is not None else sign_bland(body, SECRET)}
    return Client().post(WEBHOOK, data=body, content_type="application/json", headers=headers)


def deliver(box: Outbox, run_tasks):
    [delivery] = box.to(WEBHOOK)
    with run_tasks():
        return Client().post(
            WEBHOOK, data=delivery.body, content_type="application/json", headers=delivery.headers
        )


# --- the gate -----------------------------------------------------------------------------


def test_without_consent_the_call_is_blocked_and_bland_hears_nothing(
    acme_voice, jane, sandbox, run_tasks
):
    ai_call = place(acme_voice, jane, run_tasks)

    assert ai_call.status == Status.BLOCKED
    assert ai_call.status_reason == "no_ai_voice_consent"
    assert ai_call.consent is None
    with time_machine.travel(NOON_NY, tick=False), run_tasks():
        assert tasks.place_ai_call(ai_call.pk) is None
        tasks.dispatch_due_ai_calls()
    assert sent(sandbox) == []


def test_a_revoked_consent_blocks_a_queued_call_at_placing(acme_voice, jane, sandbox, worker):
    with time_machine.travel(NOON_NY, tick=True):
        opt_in(acme_voice)
        ai_call = voice.request_call(acme_voice, jane)  # queued, not yet placed
        opt_out = ConsentEvent.objects.create(
            company=acme_voice, phone=CUSTOMER, channel="sms", action="opt_out", source="keyword"
        )
        assert voice.place(ai_call.pk) == Status.BLOCKED
    assert opt_out.pk and sent(sandbox) == []
    ai_call.refresh_from_db()
    assert ai_call.status_reason == "no_ai_voice_consent"


def test_no_disclosure_script_no_call(acme_voice, jane, sandbox, run_tasks):
    opt_in(acme_voice)
    acme_voice.ai_call_disclosure_script = "  "
    acme_voice.save(update_fields=["ai_call_disclosure_script"])

    ai_call = place(acme_voice, jane, run_tasks)

    assert (ai_call.status, ai_call.status_reason) == (Status.BLOCKED, "no_ai_call_disclosure")
    assert sent(sandbox) == []


def test_with_consent_it_is_placed_once_carrying_the_disclosure(
    acme_voice, jane, sandbox, run_tasks
):
    consent = opt_in(acme_voice)

    ai_call = place(acme_voice, jane, run_tasks)
    # the task delivered twice, and the minute schedule, place nothing more
    with time_machine.travel(NOON_NY, tick=False), run_tasks():
        assert tasks.place_ai_call(ai_call.pk) is None
        assert voice.place(ai_call.pk) is None
        tasks.dispatch_due_ai_calls()

    [body] = sent(sandbox)
    script = SCRIPT.replace("{company}", acme_voice.name)
    assert body["phone_number"] == CUSTOMER
    assert body["first_sentence"] == script
    assert "Jane Doe" in body["task"] and body["request_data"] == {"name": "Jane Doe"}
    assert body["webhook"] == PUBLIC + WEBHOOK
    assert body["metadata"] == {"otto_company": str(acme_voice.pk), "otto_ai_call": str(ai_call.pk)}
    assert body["record"] is False
    ai_call.refresh_from_db()
    assert ai_call.status == Status.PLACED and ai_call.bland_call_id
    assert ai_call.consent == consent  # the proof it relied on
    assert (ai_call.disclosure_script, ai_call.disclosure_version) == (script, "ai-calls-2026-03")


def test_quiet_hours_defer_the_call_to_the_window(acme_voice, jane, sandbox, run_tasks):
    opt_in(acme_voice)

    ai_call = place(acme_voice, jane, run_tasks, when=LATE_NY)
    assert (ai_call.status, ai_call.next_attempt_at) == (Status.PENDING, OPENS_NY)
    with time_machine.travel(OPENS_NY - datetime.timedelta(minutes=1), tick=False), run_tasks():
        assert tasks.dispatch_due_ai_calls() == 0
    assert sent(sandbox) == []

    with time_machine.travel(OPENS_NY, tick=False), run_tasks():
        assert tasks.dispatch_due_ai_calls() == 1
    ai_call.refresh_from_db()
    assert ai_call.status == Status.PLACED and len(sent(sandbox)) == 1


def test_a_lost_answer_is_never_resent_and_its_webhook_settles_it(
    acme_voice, jane, sandbox, settings, bland_outbox, run_tasks
):
    opt_in(acme_voice)
    settings.PROVIDER_TIMEOUTS = {**settings.PROVIDER_TIMEOUTS, "bland": 0.3}
    sandbox.inject("bland.calls.create", "hold", delay_seconds=1.0)  # placed, answer late

    ai_call = place(acme_voice, jane, run_tasks)
    assert ai_call.status == Status.PLACING and ai_call.bland_call_id is None
    with time_machine.travel(NOON_NY + datetime.timedelta(minutes=5), tick=False), run_tasks():
        tasks.dispatch_due_ai_calls()
        assert voice.place(ai_call.pk) is None
    assert len(sent(sandbox)) == 1

    # Bland did place it: the post-call webhook finds the row by the id in its metadata
    [bland_id] = sandbox.state["bland"]["calls"]
    sandbox_bland._finish_and_notify(sandbox, bland_id)
    assert deliver(bland_outbox, run_tasks).status_code == 200
    ai_call.refresh_from_db()
    assert (ai_call.status, ai_call.bland_call_id) == (Status.COMPLETED, bland_id)


def test_a_placing_without_answer_or_webhook_is_given_up_not_resent(
    acme_voice, jane, sandbox, monkeypatch, run_tasks
):
    from integrations.bland.client import BlandClient
    from integrations.errors import ProviderError

    def timed_out(self, request):
        raise ProviderError("bland", "POST /v1/calls timed out", permanent=False)

    monkeypatch.setattr(BlandClient, "send_call", timed_out)
    opt_in(acme_voice)
    ai_call = place(acme_voice, jane, run_tasks)
    assert ai_call.status == Status.PLACING

    with time_machine.travel(NOON_NY + voice.UNANSWERED_DEADLINE, tick=False), run_tasks():
        tasks.dispatch_due_ai_calls()
    ai_call.refresh_from_db()
    assert ai_call.status == Status.FAILED and "not resent" in ai_call.status_reason


def test_only_voice_dial_calls_blands_send():
    """By construction: the one caller of BlandClient.send_call is behind the gate."""
    root = pathlib.Path(__file__).resolve().parents[2]
    packages = [
        top for top in root.iterdir() if (top / "__init__.py").exists() and top.name != "tests"
    ]
    assert {"messaging", "otto", "calls", "integrations"} <= {top.name for top in packages}
    # The client itself and the sandbox's stand-in are Bland's side of the call.
    theirs = (root / "integrations/bland", root / "integrations/sandbox")
    callers = []
    for path in (path for top in packages for path in top.rglob("*.py")):
        if path.is_relative_to(theirs[0]) or path.is_relative_to(theirs[1]):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "send_call":
                callers.append(str(path.relative_to(root)))
    assert callers == ["messaging/voice.py"]
    source = (root / "messaging/voice.py").read_text()
    dial = source.split("def _dial(")[1].split("\ndef ")[0]
    assert ".send_call(" in dial and source.count(".send_call(") == 1


# --- the post-call webhook ------------------------------------------------------------


def test_the_signed_webhook_stores_the_outcome_redacted_with_a_task_and_timeline_entry(
    acme_voice, jane, sandbox, bland_outbox, run_tasks, acme_csr
):
    opt_in(acme_voice)
    source = CallFactory(company=acme_voice, contact=jane, customer_number=CUSTOMER)
    ai_call = place(acme_voice, jane, run_tasks, call=source)
    end_call(sandbox, ai_call, first_line=f"Hi, my card is {CARD}, can you take it?")

    response = deliver(bland_outbox, run_tasks)

    assert response.status_code == 200, response.content
    ai_call.refresh_from_db()
    assert ai_call.status == Status.COMPLETED
    assert (ai_call.outcome, ai_call.answered_by, ai_call.duration_seconds) == (
        "completed",
        "human",
        45.0,
    )
    assert "Simulated" in ai_call.summary and ai_call.completed_at is not None
    assert "assistant: Hi, my card is [CARD]" in ai_call.transcript
    assert "user: Yes, tomorrow at 9 am works for me." in ai_call.transcript
    assert ai_call.redaction_counts == {"card": 1}
    event = WebhookEvent.objects.get(provider=Provider.BLAND)
    assert event.status == WebhookEvent.Status.PROCESSED and event.company == acme_voice
    assert "4111" not in event.body and "[CARD]" in event.body  # nothing unredacted stored
    # a CSR's task from it (Bland extracted nothing: a review), and the contact's timeline
    task = Task.objects.get(source=Task.Source.AI_CALL)
    assert (task.type, task.contact, task.call) == (Task.Type.FOLLOW_UP_CALL, jane, source)
    assert "Simulated" in task.description
    timeline = acme_csr.client().get(f"/api/v1/contacts/{jane.pk}/timeline/").json()
    [item] = [i for i in timeline["results"] if i["type"] == "ai_call"]
    assert item["data"]["id"] == ai_call.pk and "[CARD]" in item["data"]["transcript"]


def bland_body(ai_call: AiCall, **changes) -> bytes:
    body = {
        "call_id": ai_call.bland_call_id,
        "status": "completed",
        "completed": True,
        "to": ai_call.phone,
        "answered_by": "human",
        "corrected_duration": "60",
        "summary": "The customer wants a visit on Friday morning.",
        "transcripts": [{"id": 1, "text": "Friday morning please.", "user": "user"}],
        "metadata": {"otto_company": str(ai_call.company_id), "otto_ai_call": str(ai_call.pk)},
        **changes,
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("changes", "kind", "words"),
    [
        (
            {"analysis": {"booking_requested": True, "requested_time": "Friday 9 am"}},
            Task.Type.SCHEDULE_APPOINTMENT,
            "(Friday 9 am): book it",
        ),
        ({"analysis": {"call_back_requested": True}}, Task.Type.CALL_BACK, "call back"),
        (
            {"answered_by": "voicemail", "transcripts": []},
            Task.Type.CALL_BACK,
            "did not reach the customer (voicemail)",
        ),
    ],
)
def test_the_outcome_becomes_the_right_task(
    acme_voice, jane, sandbox, run_tasks, changes, kind, words
):
    opt_in(acme_voice)
    ai_call = place(acme_voice, jane, run_tasks)

    with run_tasks():
        assert post(bland_body(ai_call, **changes)).status_code == 200

    task = Task.objects.get(source=Task.Source.AI_CALL)
    assert task.type == kind and words in task.description


def test_nothing_to_do_leaves_no_task(acme_voice, jane, sandbox, run_tasks):
    opt_in(acme_voice)
    ai_call = place(acme_voice, jane, run_tasks)

    with run_tasks():
        post(bland_body(ai_call, analysis={"booking_requested": False}))

    ai_call.refresh_from_db()
    assert ai_call.status == Status.COMPLETED and not Task.objects.exists()


def test_a_bad_signature_is_401_and_nothing_is_stored_or_processed(
    acme_voice, jane, sandbox, run_tasks
):
    opt_in(acme_voice)
    ai_call = place(acme_voice, jane, run_tasks)
    body = bland_body(ai_call)

    for signature in (sign_bland(body, "another-secret"), "", "abc"):
        with run_tasks():
            response = post(body, signature)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_signature"
    with run_tasks():
        assert post(body + b" ", sign_bland(body, SECRET)).status_code == 401

    assert not WebhookEvent.objects.filter(provider=Provider.BLAND).exists()
    ai_call.refresh_from_db()
    assert ai_call.status == Status.PLACED and not Task.objects.exists()


def test_a_duplicate_delivery_is_stored_and_processed_once(acme_voice, jane, sandbox, run_tasks):
    opt_in(acme_voice)
    ai_call = place(acme_voice, jane, run_tasks)
    body = bland_body(ai_call)

    with run_tasks():
        first = post(body)
        second = post(body)

    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert WebhookEvent.objects.filter(provider=Provider.BLAND).count() == 1
    assert Task.objects.filter(source=Task.Source.AI_CALL).count() == 1


def test_a_webhook_naming_another_tenant_never_touches_its_call(
    acme_voice, jane, globex, sandbox, run_tasks
):
    opt_in(acme_voice)
    ai_call = place(acme_voice, jane, run_tasks)

    forged = [
        # acme's Bland call id, claimed for globex
        bland_body(ai_call, metadata={"otto_company": str(globex.pk)}),
        # globex's delivery naming acme's AiCall by its id
        bland_body(
            ai_call,
            call_id="0f9a4d7e-0000-4000-8000-000000000000",
            metadata={"otto_company": str(globex.pk), "otto_ai_call": str(ai_call.pk)},
        ),
    ]
    with run_tasks():
        for body in forged:
            assert post(body).status_code == 200

    ai_call.refresh_from_db()
    assert ai_call.status == Status.PLACED and ai_call.summary == ""
    assert not Task.objects.exists()
    events = WebhookEvent.objects.filter(provider=Provider.BLAND)
    assert {e.status for e in events} == {WebhookEvent.Status.IGNORED}


def test_the_timeline_shows_ai_calls_to_the_tenant_only(
    acme_voice, jane, sandbox, run_tasks, globex_manager, acme_rep
):
    opt_in(acme_voice)
    ai_call = place(acme_voice, jane, run_tasks)
    with run_tasks():
        post(bland_body(ai_call))

    url = f"/api/v1/contacts/{jane.pk}/timeline/"
    assert globex_manager.client().get(url).status_code == 404
    items = acme_rep.client().get(url).json().get("results", [])
    assert not [i for i in items if i["type"] == "ai_call"]


# --- follow-ups of channel ai_call ------------------------------------------------------


def a_followup(company, contact, due=NOON_NY) -> FollowUp:
    call = CallFactory(company=company, contact=contact, customer_number=contact.phone)
    return FollowUp.objects.create(
        company=company,
        call=call,
        contact=contact,
        phone=contact.phone,
        channel=FollowUp.Channel.AI_CALL,
        status=FollowUp.Status.APPROVED,
        drafted_by=FollowUp.DraftedBy.TEMPLATE,
        scheduled_for=due,
    )


def test_an_ai_call_followup_is_placed_once_and_marked_sent(acme_voice, jane, sandbox, run_tasks):
    opt_in(acme_voice)
    followup = a_followup(acme_voice, jane)

    with time_machine.travel(NOON_NY, tick=False), run_tasks():
        assert tasks.dispatch_due_followups() == 1
    with time_machine.travel(NOON_NY, tick=False), run_tasks():
        assert followups.run_due(followup.pk) is None  # claimed once
        assert voice.send_followup(followup) == FollowUp.Status.SENT  # the same call
        tasks.dispatch_due_followups()
        tasks.dispatch_due_ai_calls()

    assert len(sent(sandbox)) == 1
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.SENT
    ai_call = AiCall.objects.get(followup=followup)
    assert (ai_call.status, ai_call.call) == (Status.PLACED, followup.call)


def test_an_ai_call_followup_without_consent_is_blocked(acme_voice, jane, sandbox, run_tasks):
    followup = a_followup(acme_voice, jane)

    with time_machine.travel(NOON_NY, tick=False), run_tasks():
        tasks.dispatch_due_followups()

    followup.refresh_from_db()
    assert (followup.status, followup.status_reason) == (
        FollowUp.Status.BLOCKED,
        "no_ai_voice_consent",
    )
    assert sent(sandbox) == []


def test_an_ai_call_followup_in_quiet_hours_waits_for_the_window(
    acme_voice, jane, sandbox, run_tasks
):
    opt_in(acme_voice)
    followup = a_followup(acme_voice, jane, due=LATE_NY)

    with time_machine.travel(LATE_NY, tick=False), run_tasks():
        tasks.dispatch_due_followups()
    followup.refresh_from_db()
    assert (followup.status, followup.scheduled_for) == (FollowUp.Status.SCHEDULED, OPENS_NY)
    assert sent(sandbox) == []

    with time_machine.travel(OPENS_NY, tick=False), run_tasks():
        tasks.dispatch_due_followups()
        tasks.dispatch_due_ai_calls()
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.SENT and len(sent(sandbox)) == 1


def test_a_cancelled_followup_cancels_its_deferred_call(acme_voice, jane, sandbox, run_tasks):
    opt_in(acme_voice)
    followup = a_followup(acme_voice, jane, due=LATE_NY)
    with time_machine.travel(LATE_NY, tick=False), run_tasks():
        tasks.dispatch_due_followups()

    followups.cancel(acme_voice, followup, actor=None)
    with time_machine.travel(OPENS_NY, tick=False), run_tasks():
        tasks.dispatch_due_followups()
        tasks.dispatch_due_ai_calls()

    assert sent(sandbox) == []
    assert AiCall.objects.get(followup=followup).status == Status.BLOCKED


def test_followups_are_ai_calls_only_when_chosen_and_consented(acme_voice):
    assert voice.followup_channel(acme_voice, CUSTOMER) == FollowUp.Channel.SMS
    acme_voice.followup_ai_calls = True
    assert voice.followup_channel(acme_voice, CUSTOMER) == FollowUp.Channel.SMS  # no opt-in
    opt_in(acme_voice)
    assert voice.followup_channel(acme_voice, CUSTOMER) == FollowUp.Channel.AI_CALL
    acme_voice.followup_ai_calls = False
    assert voice.followup_channel(acme_voice, CUSTOMER) == FollowUp.Channel.SMS


def test_a_qualified_unbooked_call_is_drafted_as_an_ai_call_when_chosen(acme_voice, jane):
    acme_voice.followup_ai_calls = True
    acme_voice.save(update_fields=["followup_ai_calls"])
    opt_in(acme_voice)
    call = CallFactory(
        company=acme_voice, contact=jane, customer_number=CUSTOMER, started_at=timezone.now()
    )

    made = followups.draft(call, {"qualified": True, "booking_status": "not_booked"})

    assert made is not None and made.channel == FollowUp.Channel.AI_CALL


def test_the_admin_shows_the_outcome_and_links_the_consent_proof(
    acme_voice, jane, sandbox, run_tasks, client
):
    from django.urls import reverse

    from otto.models import User

    consent = opt_in(acme_voice)
    ai_call = place(acme_voice, jane, run_tasks)
    with run_tasks():
        post(bland_body(ai_call, transcripts=[{"text": f"card {CARD}", "user": "user"}]))
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))

    page = client.get(reverse("admin:messaging_aicall_change", args=[ai_call.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert reverse("admin:messaging_consentevent_change", args=[consent.pk]) in html
    assert "verbal, call CA123 at 02:13" in html and "user: card [CARD]" in html
    assert "4111" not in html
    assert (
        client.post(reverse("admin:messaging_aicall_change", args=[ai_call.pk])).status_code == 403
    )


def test_a_replay_verifies_the_sealed_redacted_body_and_changes_nothing_twice(
    acme_voice, jane, sandbox, run_tasks
):
    from integrations import services as inbox_services

    opt_in(acme_voice)
    ai_call = place(acme_voice, jane, run_tasks)
    with run_tasks():
        post(bland_body(ai_call, transcripts=[{"text": f"my card {CARD}", "user": "user"}]))
    event = WebhookEvent.objects.get(provider=Provider.BLAND)
    assert "4111" not in event.body

    with run_tasks():
        assert inbox_services.replay_event(event) == WebhookEvent.Status.PROCESSED
    assert Task.objects.filter(source=Task.Source.AI_CALL).count() == 1
    ai_call.refresh_from_db()
    assert ai_call.redaction_counts == {"card": 1}  # the original's, carried in the body

    WebhookEvent.objects.filter(pk=event.pk).update(body=event.body.replace("Friday", "Monday"))
    event.refresh_from_db()
    with pytest.raises(inbox_services.ReplayRefused, match="no longer verifies"):
        inbox_services.replay_event(event)


def test_a_signed_body_that_is_no_call_is_stored_failed_redacted(acme_voice, sandbox, run_tasks):
    body = json.dumps({"status": "completed", "summary": f"card {CARD}"}).encode()

    with run_tasks():
        response = post(body)

    assert response.status_code == 200
    event = WebhookEvent.objects.get(provider=Provider.BLAND)
    assert event.status == WebhookEvent.Status.FAILED and "call_id" in event.last_error
    assert "4111" not in event.body and "4111" not in event.last_error


def test_a_rate_limited_send_is_retried_later_and_placed_once(acme_voice, jane, sandbox, run_tasks):
    opt_in(acme_voice)
    sandbox.inject("bland.calls.create", "429", count=2)  # the client's own retry too

    ai_call = place(acme_voice, jane, run_tasks)
    assert ai_call.status == Status.PENDING and ai_call.next_attempt_at > NOON_NY
    assert not sandbox.state["bland"].get("calls")  # Bland refused both: no call exists

    with time_machine.travel(ai_call.next_attempt_at, tick=False), run_tasks():
        assert tasks.dispatch_due_ai_calls() == 1
    ai_call.refresh_from_db()
    assert ai_call.status == Status.PLACED and ai_call.attempts == 2
    assert len(sandbox.state["bland"]["calls"]) == 1
