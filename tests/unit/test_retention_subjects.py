"""Unit tier for helper C: links, forget_person, notification signing (no AWS: fakes only)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.retention.logic.erasure import forget_person
from functions.retention.logic.links import REFUSAL, issue_link, redeem_link
from functions.retention.logic.notify import DeliveryFailed, notify_removal
from functions.retention.models.entities import RetentionPolicy
from functions.retention.models.events import PurgedKind, PurgeReason, RecordPurged
from functions.retention.models.subjects_io import SelfServiceLink
from shared import clock
from shared.auth import Actor, Scope
from shared.errors import Unauthenticated
from shared.keys import GATEWAY_TENANT
from shared.secrets import SecretNotFound
from shared.webhooks import StandardWebhooksVerifier
from tests.fakes import FakeAuditLog

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ATS = Actor.integration("acme", "ats-acme", frozenset({Scope.RETENTION_WRITE}))


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    clock.freeze(NOW)
    yield
    clock.freeze(None)


class FakeSigner:
    """TenantKeys' digest/candidates over fixed keys: acme holds versions 1 and 2 (2 current)."""

    keys = {"acme": {"1": b"k" * 32, "2": b"K" * 32}, "globex": {"1": b"g" * 32}}

    def _d(self, version: str, key: bytes, kind: str, value: str) -> str:
        return f"h{version}:" + hmac.new(key, f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()

    def digest(self, tenant: str, kind: str, value: str) -> str:
        version = max(self.keys[tenant])
        return self._d(version, self.keys[tenant][version], kind, value)

    def candidates(self, tenant: str, kind: str, value: str) -> list[str]:
        if tenant not in self.keys:
            raise SecretNotFound(tenant)
        return [self._d(v, k, kind, value) for v, k in self.keys[tenant].items()]


class FakeLinkStore:
    def __init__(self) -> None:
        self.links: dict[tuple[str, str], SelfServiceLink] = {}

    def person(self, tenant: str, person_id: str) -> dict[str, Any] | None:
        return {"pk": {"S": "x"}} if person_id == "P-1" else None

    def put_link(self, link: SelfServiceLink) -> None:
        self.links[(link.tenant, link.link_id)] = link

    def consume_link(self, tenant: str, link_id: str, *, used_at: datetime, used_for: str, request_id: str) -> bool:
        link = self.links.get((tenant, link_id))
        if link is None or link.used_at is not None:
            return False
        self.links[(tenant, link_id)] = link.model_copy(update={"used_at": used_at, "used_for": used_for})
        return True


def _redeem(token: str, store: FakeLinkStore, audit: FakeAuditLog) -> Any:
    return redeem_link(
        token, "erasure", store=store, signer=FakeSigner(), audit=audit, request_id="r", subject_request_id="dsr-1"
    )


def test_a_link_verifies_once_and_after_a_key_rotation_but_not_after_expiry() -> None:
    """Issue 11: "a one-time, signed, short-lived link"."""
    store, audit = FakeLinkStore(), FakeAuditLog()
    signer = FakeSigner()
    issued = issue_link(ATS, "P-1", 10, store=store, signer=signer, audit=audit, request_id="r")
    assert issued.token.split(".")[1].startswith("h2:")
    assert _redeem(issued.token, store, audit).person_id == "P-1"
    with pytest.raises(Unauthenticated, match=REFUSAL):
        _redeem(issued.token, store, audit)
    # A link signed under version 1 still verifies once version 2 is current
    FakeSigner.keys["acme"] = {"1": b"k" * 32}
    old = issue_link(ATS, "P-1", 10, store=store, signer=signer, audit=audit, request_id="r")
    FakeSigner.keys["acme"] = {"1": b"k" * 32, "2": b"K" * 32}
    assert _redeem(old.token, store, audit).link_id == old.link_id
    late = issue_link(ATS, "P-1", 10, store=store, signer=signer, audit=audit, request_id="r")
    clock.freeze(NOW + timedelta(minutes=10))
    with pytest.raises(Unauthenticated):
        _redeem(late.token, store, audit)
    denied = [(e.tenant, e.reason) for e in audit.entries if e.outcome.value == "denied"]
    assert denied == [("acme", "link already used or unknown"), ("acme", "link expired")]


@pytest.mark.parametrize("token", ["", "a.b.c", "!!!.h1:00", "e30.h1:00"])
def test_malformed_tokens_are_refused_under_the_gateway_tenant(token: str) -> None:
    audit = FakeAuditLog()
    with pytest.raises(Unauthenticated, match=REFUSAL):
        _redeem(token, FakeLinkStore(), audit)
    assert [e.tenant for e in audit.entries] == [GATEWAY_TENANT]


def test_forget_person_shreds_then_purges_then_deletes_the_person_last() -> None:
    calls: list[str] = []

    class Port:
        def delete_person(self, tenant: str, person_id: str) -> None:
            calls.append("delete")

        def shred(self, tenant: str, person_id: str) -> None:
            calls.append("shred")

        def purge_person(self, tenant: str, person_id: str) -> int:
            calls.append("purge")
            return 3

    port = Port()
    assert forget_person("acme", "P-1", people=port, vault=port, exports=port).export_versions_deleted == 3
    assert calls == ["shred", "purge", "delete"]


class FakePolicies:
    def __init__(self, url: str | None) -> None:
        self.url = url

    def policy(self, tenant: str) -> RetentionPolicy | None:
        return RetentionPolicy(tenant=tenant, notification_url=self.url)


class FakeKeys:
    def current(self, tenant: str, kind: str, *, min_bytes: int = 0) -> tuple[str, bytes]:
        assert kind == "webhook/outbound"
        return "1", b"s" * 32


class FakeSender:
    def __init__(self, status: int) -> None:
        self.status = status
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.sent.append((url, body, headers))
        return self.status


EVENT = RecordPurged(
    tenant="acme", record_kind=PurgedKind.PERSON, record_id="P-1", reason=PurgeReason.SELF_ERASURE, request_id="d-1"
)


def test_a_removal_notification_is_signed_and_holds_ids_only() -> None:
    sender = FakeSender(202)
    assert notify_removal(EVENT, policies=FakePolicies("https://ats.example/h"), keys=FakeKeys(), sender=sender)
    url, body, headers = sender.sent[0]
    verified = StandardWebhooksVerifier().verify(body=body, headers=headers, secrets=[b"s" * 32], now=NOW)
    assert url == "https://ats.example/h" and verified.event_id == EVENT.event_id
    assert set(json.loads(body)) == {
        "type",
        "event_id",
        "tenant",
        "occurred_at",
        "record_kind",
        "record_id",
        "vacancy_id",
        "person_id",
        "reason",
        "request_id",
    }


def test_a_refused_notification_raises_and_no_url_sends_nothing() -> None:
    with pytest.raises(DeliveryFailed):
        notify_removal(EVENT, policies=FakePolicies("https://ats.example/h"), keys=FakeKeys(), sender=FakeSender(410))
    silent = FakeSender(200)
    assert not notify_removal(EVENT, policies=FakePolicies(None), keys=FakeKeys(), sender=silent)
    assert silent.sent == []


def test_the_real_sender_refuses_plain_http_before_any_connection() -> None:
    from functions.retention.handlers.notify import UrllibSender

    with pytest.raises(DeliveryFailed, match="https"):
        UrllibSender().post("http://169.254.169.254/latest", b"{}", {})
