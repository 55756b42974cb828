"""Idempotency-Key on POST: replay, misuse, concurrency, purge."""

import threading
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from otto import services, views
from otto.idempotency import purge_expired_keys
from otto.models import Contact, IdempotencyKey

URL = "/api/v1/contacts/"


def post(client, body, key="key-1"):
    return client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_retry_with_the_same_key_and_body_replays_the_first_response(acme_csr):
    client = acme_csr.client()

    first = post(client, {"phone": "3035550142", "name": "Dana"})
    second = post(client, {"phone": "3035550142", "name": "Dana"})

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Contact.objects.filter(company=acme_csr.company).count() == 1


def test_the_same_key_with_another_body_is_422(acme_csr):
    client = acme_csr.client()
    post(client, {"phone": "3035550142"})

    response = post(client, {"phone": "3035550143"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Contact.objects.filter(company=acme_csr.company).count() == 1


def test_an_error_response_is_replayed_too(acme_csr):
    client = acme_csr.client()

    first = post(client, {"phone": "12"})
    second = post(client, {"phone": "12"})

    assert first.status_code == second.status_code == 400
    assert second.json()["error"]["details"] == first.json()["error"]["details"]


def test_keys_are_per_company(acme_csr, globex_manager):
    assert post(acme_csr.client(), {"phone": "3035550142"}).status_code == 201
    assert post(globex_manager.client(), {"phone": "3035550142"}).status_code == 201

    assert Contact.objects.count() == 2


def test_without_a_key_each_post_runs(acme_csr):
    client = acme_csr.client()

    client.post(URL, {"phone": "3035550142"}, format="json")
    again = client.post(URL, {"phone": "3035550142"}, format="json")

    assert again.status_code == 409  # the duplicate phone, not a replay


def test_a_key_that_is_too_long_is_400(acme_csr):
    assert post(acme_csr.client(), {"phone": "3035550142"}, key="k" * 300).status_code == 400


def test_an_unhandled_error_releases_the_key(acme_csr, monkeypatch):
    client = acme_csr.client()
    client.raise_request_exception = False

    def broken(company, **fields):
        raise RuntimeError("database fell over")

    monkeypatch.setattr(services, "create_contact", broken)
    assert post(client, {"phone": "3035550142"}).status_code == 500
    monkeypatch.undo()

    assert post(client, {"phone": "3035550142"}).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_make_one_contact(live_server, acme_csr, monkeypatch):
    # given: creating a contact takes a moment, so the second request arrives mid-way
    real = services.create_contact

    def slow(company, **fields):
        time.sleep(0.5)
        return real(company, **fields)

    monkeypatch.setattr(views.services, "create_contact", slow)
    token = acme_csr.token()
    start = threading.Barrier(2)
    results: list[int] = []

    def send() -> None:
        start.wait()
        response = httpx.post(
            f"{live_server.url}{URL}",
            json={"phone": "3035550142"},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "same"},
            timeout=10,
        )
        results.append(response.status_code)

    # when
    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: one ran, the other was told it is still running
    assert sorted(results) == [201, 409]
    assert Contact.objects.filter(company=acme_csr.company).count() == 1
    # and a later retry gets the stored answer
    replay = httpx.post(
        f"{live_server.url}{URL}",
        json={"phone": "3035550142"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "same"},
        timeout=10,
    )
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"


def test_a_claim_whose_worker_died_is_taken_over_and_a_live_one_is_409(acme_csr):
    client = acme_csr.client()
    body = {"phone": "3035550142"}
    # given a claim left in progress by a request that never finished
    post(client, body, key="crashed")
    row = IdempotencyKey.objects.get(key="crashed")
    Contact.objects.filter(company=acme_csr.company).delete()
    row.status = IdempotencyKey.Status.IN_PROGRESS
    row.response_status = None
    row.response_body = None
    row.save()

    # while it could still be running, a retry is told to wait
    assert post(client, body, key="crashed").status_code == 409

    # once it is older than any request can run, the retry runs the request
    IdempotencyKey.objects.filter(pk=row.pk).update(
        created_at=timezone.now() - timedelta(minutes=3)
    )
    response = post(client, body, key="crashed")

    assert response.status_code == 201
    assert Contact.objects.filter(company=acme_csr.company).count() == 1
    assert post(client, body, key="crashed")["Idempotent-Replayed"] == "true"


def test_keys_are_purged_after_the_ttl(acme_csr, settings):
    settings.IDEMPOTENCY_TTL_DAYS = 90
    client = acme_csr.client()
    post(client, {"phone": "3035550142"}, key="old")
    post(client, {"phone": "3035550143"}, key="new")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(days=91))

    assert purge_expired_keys() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


def test_the_purge_is_scheduled_daily():
    from otto.schedules import registry
    from otto.tasks import purge_idempotency_keys

    job = registry()["purge-idempotency-keys"]

    assert (job.func, job.minutes) == (purge_idempotency_keys, 24 * 60)
