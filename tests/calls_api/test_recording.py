"""GET /api/v1/calls/{id}/recording/: a 302 to a short-lived link, audited; on the local
filesystem (signed Otto link) and on S3 (presigned, against moto's server over HTTP)."""

import time
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.test import Client

from calls.models import RecordingAccess
from tests.calls_api.conftest import AUDIO, store_recording


def recording_url(call) -> str:
    return f"/api/v1/calls/{call.pk}/recording/"


# --- the local filesystem (the embedded default) ---------------------------------------------


def test_a_302_to_a_signed_local_link_that_streams_the_audio_and_is_audited(
    acme_csr, make_call, local_media
):
    call = store_recording(make_call(acme_csr.company))

    response = acme_csr.client().get(recording_url(call), REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 302
    assert "no-store" in response["Cache-Control"]
    location = response["Location"]
    assert location.startswith("/recordings/")
    assert str(local_media) not in location and "recordings/" + str(call.pk) not in location
    # Any client may follow the link (an <audio> element sends no bearer token).
    audio = Client().get(location)
    assert audio.status_code == 200
    assert audio["Content-Type"] == "audio/mpeg"
    assert b"".join(audio.streaming_content) == AUDIO
    [access] = RecordingAccess.objects.all()
    assert (access.company, access.call, access.user) == (call.company, call, acme_csr.user)
    assert access.ip_address == "203.0.113.9"


def test_every_request_is_audited(acme_manager, acme_csr, make_call, local_media):
    call = store_recording(make_call(acme_manager.company))

    for member in (acme_manager, acme_csr, acme_csr):
        assert member.client().get(recording_url(call)).status_code == 302

    users = list(RecordingAccess.objects.order_by("pk").values_list("user", flat=True))
    assert users == [acme_manager.user.pk, acme_csr.user.pk, acme_csr.user.pk]


def test_an_expired_link_is_refused(acme_csr, make_call, local_media, settings):
    call = store_recording(make_call(acme_csr.company))
    location = acme_csr.client().get(recording_url(call))["Location"]

    later = time.time() + settings.RECORDING_URL_TTL_SECONDS + 1
    with mock.patch("django.core.signing.time.time", return_value=later):
        response = Client().get(location)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "link_expired"


@pytest.mark.parametrize("tamper", ["flip", "other_call", "garbage"])
def test_a_tampered_link_is_refused(acme_csr, make_call, local_media, tamper):
    call = store_recording(make_call(acme_csr.company))
    location = acme_csr.client().get(recording_url(call))["Location"]
    token = location.removeprefix("/recordings/")
    token = {
        "flip": token[:-1] + ("A" if token[-1] != "A" else "B"),
        "other_call": token.replace(token.split(":")[0], str(call.pk + 1), 1),
        "garbage": "../../etc/passwd",
    }[tamper]

    response = Client().get(f"/recordings/{token}")

    assert response.status_code in (403, 404)
    assert response.json()["error"]["code"] in ("link_invalid", "not_found")
    assert AUDIO not in response.content


def test_a_link_to_a_deleted_recording_is_404(acme_csr, make_call, local_media):
    call = store_recording(make_call(acme_csr.company))
    location = acme_csr.client().get(recording_url(call))["Location"]
    call.recording.delete(save=False)

    response = Client().get(location)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_media_root_is_not_served(acme_csr, make_call, local_media):
    call = store_recording(make_call(acme_csr.company))

    assert Client().get(f"/media/{call.recording.name}").status_code == 404


def test_no_recording_is_404_in_the_error_shape_and_not_audited(acme_csr, make_call):
    call = make_call(acme_csr.company, answered=False)

    response = acme_csr.client().get(recording_url(call))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["message"] == "This call has no recording."
    assert not RecordingAccess.objects.exists()


def test_the_outsider_gets_404_and_leaves_no_audit(acme, globex_manager, make_call, local_media):
    call = store_recording(make_call(acme))

    response = globex_manager.client().get(recording_url(call))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not RecordingAccess.objects.exists()


# --- S3, through moto's server -------------------------------------------------------------------


def expires_in(presigned: str) -> float:
    """Seconds the (SigV4) presigned URL stays valid."""
    query = parse_qs(urlsplit(presigned).query)
    assert "X-Amz-Signature" in query
    return int(query["X-Amz-Expires"][0])


def test_a_recording_is_stored_in_s3_over_http(acme, make_call, s3):
    call = store_recording(make_call(acme))

    stored = s3.get_object(Bucket=s3.bucket, Key=call.recording_path)

    assert call.recording.name == call.recording_path
    assert stored["Body"].read() == AUDIO


def test_the_302_is_a_presigned_s3_url_that_downloads_the_audio_and_expires(
    acme_csr, make_call, s3, settings, moto_s3_url
):
    call = store_recording(make_call(acme_csr.company))

    response = acme_csr.client().get(recording_url(call))

    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{moto_s3_url}/{s3.bucket}/{call.recording_path}?")
    assert expires_in(location) == pytest.approx(settings.RECORDING_URL_TTL_SECONDS, abs=5)
    assert httpx.get(location, timeout=5).content == AUDIO
    assert RecordingAccess.objects.filter(call=call, user=acme_csr.user).count() == 1
