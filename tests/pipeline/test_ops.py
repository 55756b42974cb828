"""Ops on the pipeline: retry through the API and the admin (audited), speaker roles
corrected through the API and the admin, and the call detail's transcript and history."""

from __future__ import annotations

import pytest

from calls import stages, transcription
from calls.models import Call, CallStageChange, Transcript
from tests.pipeline.conftest import INGEST, TRANSCRIBE, Stage, recorded_call


def failed_in_transcription(company) -> Call:
    call = recorded_call(company, "booked")
    stages.move(Call.objects.all(), call, Stage.TRANSCRIBING)
    stages.move(Call.objects.all(), call, Stage.FAILED, reason="HTTP 400", attempts=1)
    return call


def transcribed(company) -> Call:
    call = recorded_call(company, "booked")
    transcription.transcribe_call(call.pk)
    call.refresh_from_db()
    return call


def retry(member, call, query: str = "", **body):
    return member.client().post(f"/api/v1/calls/{call.pk}/retry/{query}", body, format="json")


# --- retry ------------------------------------------------------------------------------


def test_a_manager_retries_a_failed_call_from_its_failed_stage(
    acme_manager, sandbox, worker, django_capture_on_commit_callbacks
):
    call = failed_in_transcription(acme_manager.company)

    with django_capture_on_commit_callbacks(execute=True):
        response = retry(acme_manager, call, reason="Deepgram fixed")

    assert response.status_code == 200, response.content
    assert response.json()["stage"] == Stage.RECORDED
    call.refresh_from_db()
    assert (call.stage, call.attempts, call.last_error) == (Stage.RECORDED, 0, "")
    assert worker.pushed == [("asr", TRANSCRIBE, (call.pk,))]
    audit = CallStageChange.objects.filter(call=call).latest("created_at")
    assert (audit.from_stage, audit.to_stage, audit.actor) == (
        Stage.FAILED,
        Stage.RECORDED,
        acme_manager.user,
    )
    assert audit.reason == "retried by ops from transcription: Deepgram fixed"
    assert response.json()["stage_history"][-1]["actor"]["id"] == acme_manager.user.pk


def test_a_call_that_failed_in_ingest_goes_back_to_ingest(
    acme_manager, sandbox, worker, django_capture_on_commit_callbacks
):
    call = recorded_call(acme_manager.company, "booked", stage=Stage.RECEIVED)
    stages.move(Call.objects.all(), call, Stage.FAILED, reason="CallRail 404")

    with django_capture_on_commit_callbacks(execute=True):
        assert retry(acme_manager, call).status_code == 200

    assert Call.objects.get(pk=call.pk).stage == Stage.RECEIVED
    assert worker.count(INGEST) == 1


def test_a_call_that_has_not_failed_is_a_conflict(acme_manager, sandbox):
    call = transcribed(acme_manager.company)

    response = retry(acme_manager, call)

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict" and error["details"] == {"stage": Stage.TRANSCRIBED}
    assert Call.objects.get(pk=call.pk).stage == Stage.TRANSCRIBED


def test_from_stage_forces_a_rerun_and_the_transcript_stays_one(acme_manager, sandbox, run_tasks):
    call = transcribed(acme_manager.company)

    with run_tasks():
        response = retry(acme_manager, call, "?from_stage=transcription")

    assert response.status_code == 200
    call.refresh_from_db()
    assert call.stage == Stage.TRANSCRIBED and call.attempts == 1
    assert Transcript.objects.filter(call=call).count() == 1


def test_from_stage_recording_reingests_and_keeps_the_audio_until_replaced(
    acme_manager, sandbox, worker, django_capture_on_commit_callbacks
):
    call = transcribed(acme_manager.company)
    stored = call.recording.name

    with django_capture_on_commit_callbacks(execute=True):
        assert retry(acme_manager, call, "?from_stage=recording").status_code == 200

    # back to ingest, and the old audio stays playable until a new download replaces it
    call.refresh_from_db()
    assert (call.stage, call.recording.name) == (Stage.RECEIVED, stored)
    assert call.recording.storage.exists(stored)
    assert worker.count(INGEST) == 1


def test_an_unknown_from_stage_is_refused(acme_manager, sandbox):
    call = failed_in_transcription(acme_manager.company)

    response = retry(acme_manager, call, "?from_stage=analysis")

    assert response.status_code == 400
    assert Call.objects.get(pk=call.pk).stage == Stage.FAILED


def test_a_csr_may_not_retry(acme_csr, sandbox):
    call = failed_in_transcription(acme_csr.company)

    assert retry(acme_csr, call).status_code == 403
    assert Call.objects.get(pk=call.pk).stage == Stage.FAILED


def test_the_outsider_gets_404(acme, globex_manager, sandbox):
    call = failed_in_transcription(acme)

    assert retry(globex_manager, call).status_code == 404
    assert Call.objects.get(pk=call.pk).stage == Stage.FAILED


# --- roles ------------------------------------------------------------------------------


def patch_roles(member, call, body):
    url = f"/api/v1/calls/{call.pk}/transcript/roles/"
    return member.client().patch(url, body, format="json")


@pytest.mark.parametrize("who", ["acme_manager", "acme_csr"])
def test_the_office_swaps_speaker_roles(who, request, sandbox):
    member = request.getfixturevalue(who)
    call = transcribed(member.company)

    response = patch_roles(member, call, {"swap": True})

    assert response.status_code == 200, response.content
    transcript = Transcript.objects.get(call=call)
    assert transcript.roles == {"0": "customer", "1": "agent"}
    assert transcript.utterances[0]["role"] == "customer"
    assert transcript.roles_corrected_by == member.user and transcript.roles_corrected_at
    assert (transcript.roles_method, transcript.roles_confidence) == ("corrected", 1.0)


def test_roles_are_set_per_speaker(acme_manager, sandbox):
    call = transcribed(acme_manager.company)

    response = patch_roles(acme_manager, call, {"roles": {"1": "agent"}})

    assert response.status_code == 200
    assert response.json()["roles"] == {"0": "agent", "1": "agent"}


def test_a_speaker_not_in_the_transcript_is_refused(acme_manager, sandbox):
    call = transcribed(acme_manager.company)

    assert patch_roles(acme_manager, call, {"roles": {"7": "agent"}}).status_code == 400
    assert patch_roles(acme_manager, call, {}).status_code == 400


def test_roles_of_a_call_without_transcript_are_not_found(acme_manager, sandbox):
    call = recorded_call(acme_manager.company, "booked")

    assert patch_roles(acme_manager, call, {"swap": True}).status_code == 404


def test_a_rep_and_the_outsider_may_not_correct_roles(acme_rep, globex_manager, sandbox):
    call = transcribed(acme_rep.company)
    Call.objects.filter(pk=call.pk).update(handled_by=acme_rep.user)

    assert patch_roles(acme_rep, call, {"swap": True}).status_code == 403
    assert patch_roles(globex_manager, call, {"swap": True}).status_code == 404
    assert Transcript.objects.get(call=call).roles == {"0": "agent", "1": "customer"}


# --- the detail -------------------------------------------------------------------------


def test_the_detail_shows_the_redacted_transcript_and_the_history(acme_csr, sandbox):
    call = recorded_call(acme_csr.company, "card_number")
    transcription.transcribe_call(call.pk)

    body = acme_csr.client().get(f"/api/v1/calls/{call.pk}/").json()

    transcript = body["transcript"]
    assert "[CARD]" in transcript["text"] and "4111" not in str(body)
    assert transcript["roles"] == {"0": "agent", "1": "customer"}
    assert {u["role"] for u in transcript["utterances"]} == {"agent", "customer"}
    assert transcript["roles_confidence"] is not None
    assert [(h["from_stage"], h["to_stage"]) for h in body["stage_history"]] == [
        (Stage.RECORDED, Stage.TRANSCRIBING),
        (Stage.TRANSCRIBING, Stage.TRANSCRIBED),
    ]


# --- the admin --------------------------------------------------------------------------


def test_the_admin_shows_history_and_transcript_and_retries(
    admin_client, acme, sandbox, worker, django_capture_on_commit_callbacks
):
    done = transcribed(acme)
    failed = failed_in_transcription(acme)

    page = admin_client.get(f"/admin/calls/call/{done.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "transcribing → transcribed" in html and "Thanks for calling Acme" in html

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/calls/call/",
            {"action": "retry_failed", "_selected_action": [done.pk, failed.pk]},
        )
    assert response.status_code == 302
    assert Call.objects.get(pk=failed.pk).stage == Stage.RECORDED
    assert Call.objects.get(pk=done.pk).stage == Stage.TRANSCRIBED  # refused: not failed
    audit = CallStageChange.objects.filter(call=failed).latest("created_at")
    assert audit.actor is not None and audit.actor.is_staff
    assert worker.count(TRANSCRIBE) == 1


def test_the_admin_retries_one_call_from_its_page(admin_client, acme, sandbox, worker):
    failed = failed_in_transcription(acme)

    response = admin_client.post(f"/admin/calls/call/{failed.pk}/retry/")

    assert response.status_code == 302
    assert Call.objects.get(pk=failed.pk).stage == Stage.RECORDED


def test_the_admin_swaps_speaker_roles(admin_client, acme, sandbox):
    call = transcribed(acme)

    admin_client.post(
        "/admin/calls/call/", {"action": "swap_speaker_roles", "_selected_action": [call.pk]}
    )

    assert Transcript.objects.get(call=call).roles == {"0": "customer", "1": "agent"}
