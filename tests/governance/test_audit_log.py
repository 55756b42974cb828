"""The audit log itself: one event per record() call, append-only, read by a tenant's
managers through GET audit/ (their own tenant only) and by staff in the admin."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys

import pytest
from django.test import RequestFactory, override_settings

from otto import audit
from otto.audit import client_ip
from otto.models import AuditAction, AuditEvent

URL = "/api/v1/audit/"


def event(company, action=AuditAction.CALL_RETRIED, **fields) -> AuditEvent:
    fields.setdefault("target_type", "call")
    fields.setdefault("target_id", 7)
    return audit.record(action, company=company, **fields)


# --- record ------------------------------------------------------------------------------


def test_record_writes_one_event_with_the_actor_and_the_request(acme_manager):
    request = RequestFactory().get(
        "/", REMOTE_ADDR="198.51.100.4", HTTP_USER_AGENT="Mozilla/5.0 " + "x" * 400
    )

    written = audit.record(
        AuditAction.COMPANY_SETTINGS_CHANGED,
        company=acme_manager.company,
        actor=acme_manager.user,
        request=request,
        target_type="company",
        target_id=acme_manager.company.pk,
        changes={"fields": ["timezone"]},
    )

    stored = AuditEvent.objects.get()
    assert stored == written
    assert (stored.actor, stored.actor_label) == (acme_manager.user, acme_manager.user.email)
    assert (stored.target_type, stored.target_id) == ("company", str(acme_manager.company.pk))
    assert stored.details == {"fields": ["timezone"]}
    assert stored.ip_address == "198.51.100.4"
    assert stored.user_agent.startswith("Mozilla/5.0") and len(stored.user_agent) == 200


def test_without_an_actor_or_request_the_system_did_it(acme):
    stored = event(acme)

    assert (stored.actor, stored.actor_label, stored.ip_address, stored.user_agent) == (
        None,
        "system",
        None,
        "",
    )


def test_events_are_append_only(acme):
    stored = event(acme)

    stored.details = {"rewritten": True}
    with pytest.raises(ValueError, match="append-only"):
        stored.save()
    with pytest.raises(ValueError, match="append-only"):
        stored.delete()
    with pytest.raises(ValueError, match="append-only"):
        AuditEvent.objects.filter(pk=stored.pk).update(details={})
    with pytest.raises(ValueError, match="append-only"):
        AuditEvent.objects.filter(pk=stored.pk).delete()
    assert AuditEvent.objects.get(pk=stored.pk).details == {}


def test_a_company_with_an_audit_trail_cannot_be_deleted(acme):
    from django.db.models import ProtectedError

    event(acme)

    with pytest.raises(ProtectedError):
        acme.delete()


# --- the client's address: X-Forwarded-For only from trusted proxies ---------------------


def forwarded(peer: str, xff: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": xff} if xff is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=peer, **extra)


@override_settings(TRUSTED_PROXIES=[])
def test_with_no_trusted_proxy_the_peer_is_the_client_whatever_it_forwards():
    assert client_ip(forwarded("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_an_untrusted_peer_cannot_spoof_its_address():
    # The attacker talks to the app directly and claims to be someone else.
    assert client_ip(forwarded("203.0.113.9", "198.51.100.1, 10.0.0.5")) == "203.0.113.9"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8", "192.0.2.7"])
def test_a_trusted_proxy_chain_is_walked_from_the_right():
    # client 198.51.100.1 -> edge 192.0.2.7 -> router 10.1.2.3 -> app
    request = forwarded("10.1.2.3", "198.51.100.1, 192.0.2.7")
    assert client_ip(request) == "198.51.100.1"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_a_spoofed_leftmost_hop_is_not_believed():
    # The client wrote "1.2.3.4" itself; the trusted proxy appended the real peer.
    request = forwarded("10.0.0.2", "1.2.3.4, 198.51.100.1")
    assert client_ip(request) == "198.51.100.1"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8", "2001:db8::/48"])
@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("10.0.0.2", None, "10.0.0.2"),  # a trusted proxy with no header
        ("10.0.0.2", "10.0.0.3", "10.0.0.3"),  # every hop trusted: the leftmost
        ("10.0.0.2", "garbage, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, garbage", "10.0.0.2"),  # nothing past a bad hop
        ("2001:db8::1", "[2001:db8:ffff::9]:443, 2001:db8::2", "2001:db8:ffff::9"),
        ("10.0.0.2", "198.51.100.1:51000", "198.51.100.1"),
    ],
)
def test_forwarded_for_edge_cases(peer, xff, expected):
    assert client_ip(forwarded(peer, xff)) == expected


def test_a_bad_trusted_proxies_entry_stops_the_settings():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "otto.settings",
            "TRUSTED_PROXIES": "10.0.0.0/8,not-an-ip",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "TRUSTED_PROXIES: 'not-an-ip' is not an IP address or CIDR network." in result.stderr


# --- GET audit/ ----------------------------------------------------------------------------


def test_a_manager_reads_their_tenant_newest_first(acme_manager, globex):
    older = event(acme_manager.company, actor=acme_manager.user)
    newer = event(acme_manager.company, AuditAction.WEBHOOK_REPLAYED, target_type="webhook_event")
    event(globex)
    event(None)  # staff-wide: no tenant reads it

    response = acme_manager.client().get(URL)

    assert response.status_code == 200, response.content
    body = response.json()
    assert [item["id"] for item in body["results"]] == [newer.pk, older.pk]
    first = body["results"][1]
    assert first["action"] == "call.retried"
    assert first["actor"] == {
        "id": acme_manager.user.pk,
        "name": acme_manager.user.name,
        "email": acme_manager.user.email,
    }
    assert first["target_type"] == "call" and first["target_id"] == "7"
    assert set(first) >= {"details", "ip_address", "user_agent", "created_at", "actor_label"}


@pytest.mark.parametrize("who", ["acme_csr", "acme_rep"])
def test_csrs_and_reps_may_not_read_the_log(who, request, acme):
    event(acme)

    response = request.getfixturevalue(who).client().get(URL)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_the_outsider_sees_none_of_acme(acme, globex_manager):
    event(acme)

    response = globex_manager.client().get(URL)

    assert response.status_code == 200 and response.json()["results"] == []


def test_filters_by_action_actor_target_and_date(acme_manager, time_machine):
    company, user = acme_manager.company, acme_manager.user
    time_machine.move_to(datetime.datetime(2026, 5, 1, 12, tzinfo=datetime.UTC))
    early = event(company, actor=user)
    time_machine.move_to(datetime.datetime(2026, 5, 3, 12, tzinfo=datetime.UTC))
    replayed = event(company, AuditAction.WEBHOOK_REPLAYED, target_type="webhook_event")
    played = event(company, AuditAction.RECORDING_PLAYED, actor=user, target_id=9)
    client = acme_manager.client()

    def ids(**query):
        response = client.get(URL, query)
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["results"]]

    assert ids(action="webhook.replayed") == [replayed.pk]
    assert ids(action=["webhook.replayed", "recording.played"]) == [played.pk, replayed.pk]
    assert ids(actor=user.pk) == [played.pk, early.pk]
    assert ids(target_type="call", target_id="9") == [played.pk]
    assert ids(created_before="2026-05-02T00:00:00Z") == [early.pk]
    assert ids(created_after="2026-05-02T00:00:00Z", action="call.retried") == []
    bad = client.get(URL, {"action": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"
    assert client.get(URL, {"created_after": "yesterday"}).status_code == 400


def test_the_log_is_cursor_paginated(acme_manager, django_assert_max_num_queries):
    written = [event(acme_manager.company, actor=acme_manager.user) for _ in range(5)]
    client = acme_manager.client()

    with django_assert_max_num_queries(12):
        first = client.get(URL, {"page_size": 2}).json()
    second = client.get(first["next"]).json()

    assert [item["id"] for item in first["results"]] == [written[4].pk, written[3].pk]
    assert [item["id"] for item in second["results"]] == [written[2].pk, written[1].pk]


def test_the_log_is_read_only_through_the_api(acme_manager):
    response = acme_manager.client().post(URL, {"action": "call.retried"}, format="json")

    assert response.status_code == 405
    assert not AuditEvent.objects.exists()


# --- the admin -----------------------------------------------------------------------------


def test_staff_read_every_tenant_in_the_admin_and_cannot_change_it(admin_client, acme, globex):
    ours, theirs = event(acme), event(globex, AuditAction.CONTACT_ERASED, target_type="phone")

    listing = admin_client.get("/admin/otto/auditevent/")
    page = admin_client.get(f"/admin/otto/auditevent/{ours.pk}/change/")
    posted = admin_client.post(f"/admin/otto/auditevent/{ours.pk}/change/", {"action": "x"})
    deleted = admin_client.post(f"/admin/otto/auditevent/{ours.pk}/delete/", {"post": "yes"})

    assert listing.status_code == 200
    assert "Call retried" in listing.content.decode()
    assert "Contact erased" in listing.content.decode()
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert posted.status_code == 403 and deleted.status_code == 403
    assert admin_client.get("/admin/otto/auditevent/add/").status_code == 403
    assert AuditEvent.objects.filter(pk__in=[ours.pk, theirs.pk]).count() == 2


def test_a_tenant_user_without_staff_gets_no_admin_log(client, acme_manager):
    client.force_login(acme_manager.user)

    response = client.get("/admin/otto/auditevent/")

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
