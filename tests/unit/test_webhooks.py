"""shared.webhooks: Standard Webhooks verification (with the specification's own test vector), and `receive`:
verify first, 401 with nothing stored for any failure, dedup, store durably, then 2xx."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import clock
from shared.audit import Outcome
from shared.errors import DependencyFailure, Unauthenticated
from shared.observability import metrics
from shared.secrets import TenantSecrets
from shared.webhooks import (
    REJECTED_METRIC,
    Claim,
    StandardWebhooksVerifier,
    WebhookDelivery,
    WebhookRejected,
    receive,
    sign_standard_webhook,
)
from tests.fakes import FakeAuditLog, FakeReplayGuard, FakeSink, keyring

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "apigw_post_webhook_standard.json"
# The Standard Webhooks test vector (libraries/python/tests/test_webhooks.py, test_sign_function).
SPEC_SECRET = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SIGNED_AT = datetime.fromtimestamp(SPEC_TIMESTAMP, tz=UTC)
OTHER_SECRET = b"\x07" * 32


class World:
    def __init__(self, documents: dict[str, str]) -> None:
        self.asked: list[str] = []
        self.documents = documents
        self.secrets = TenantSecrets("ats-dev/tenants/", fetch=self._fetch, max_age=0)
        self.replay = FakeReplayGuard()
        self.sink = FakeSink()
        self.audit = FakeAuditLog()

    def _fetch(self, name: str) -> str:
        self.asked.append(name)
        return self.documents[name]

    def receive(self, event: dict[str, Any]) -> Any:
        return receive(
            event,
            verifier=StandardWebhooksVerifier(),
            secrets=self.secrets,
            replay=self.replay,
            sink=self.sink,
            audit=self.audit,
        )


def sample() -> dict[str, Any]:
    event: dict[str, Any] = json.loads(SAMPLE.read_text())
    return event


def signed(
    event: dict[str, Any], *, secret: bytes, body: bytes, event_id: str = SPEC_ID, at: datetime = SIGNED_AT
) -> dict[str, Any]:
    out = copy.deepcopy(event)
    ts = int(at.timestamp())
    out["body"] = body.decode()
    out["headers"].update(
        {
            "webhook-id": event_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign_standard_webhook(secret, event_id, ts, body),
        }
    )
    return out


@pytest.fixture(autouse=True)
def _at_the_vectors_time() -> Iterator[None]:
    clock.freeze(SIGNED_AT + timedelta(seconds=30))
    metrics.clear_metrics()
    yield
    clock.freeze(None)
    metrics.clear_metrics()


@pytest.fixture
def world() -> World:
    return World({"ats-dev/tenants/acme/webhook/standard": keyring("1", {"1": SPEC_SECRET})})


def rejected_count() -> float:
    entry = metrics.metric_set.get(REJECTED_METRIC)
    return sum(entry["Value"]) if entry else 0


def assert_refused(world: World, event: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unauthenticated) as raised:
        world.receive(event)
    assert raised.value.status == 401
    assert raised.value.message == "webhook signature not verified"  # the same for every cause
    assert world.sink.stored == [] and world.replay.items == {}  # nothing stored
    [entry] = world.audit.entries
    assert (entry.tenant, entry.outcome, entry.actor, entry.action) == (
        "_gateway",
        Outcome.DENIED,
        "webhook:standard",
        "webhook.receive",
    )
    assert reason in (entry.reason or "")
    assert rejected_count() == 1


# ---- the verifier -----------------------------------------------------------------------------------------


def test_our_signature_matches_the_specifications_test_vector() -> None:
    assert sign_standard_webhook(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_the_specifications_vector_verifies() -> None:
    headers = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP), "webhook-signature": SPEC_SIGNATURE}

    verified = StandardWebhooksVerifier().verify(body=SPEC_BODY, headers=headers, secrets=[SPEC_SECRET], now=SIGNED_AT)

    assert (verified.event_id, verified.signed_at) == (SPEC_ID, SIGNED_AT)


def test_one_valid_signature_among_several_is_enough() -> None:
    # As in the specification's test_multi_sig_payload_is_valid: unknown schemes and wrong v1 values are skipped.
    junk = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": " ".join([junk, "v2," + junk[3:], SPEC_SIGNATURE, junk, "v1,not base64!"]),
    }
    StandardWebhooksVerifier().verify(body=SPEC_BODY, headers=headers, secrets=[SPEC_SECRET], now=SIGNED_AT)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="}, "no signature matches"),
        ({"webhook-id": "msg_other"}, "no signature matches"),
        ({"webhook-id": "msg.1"}, "malformed webhook-id"),
        ({"webhook-timestamp": "hello"}, "malformed webhook-timestamp"),
        ({"webhook-timestamp": str(SPEC_TIMESTAMP - 301)}, "too old"),
        ({"webhook-timestamp": str(SPEC_TIMESTAMP + 301)}, "future"),
        ({"webhook-signature": ""}, "missing"),
        ({"webhook-id": ""}, "missing"),
    ],
)
def test_what_does_not_verify(change: dict[str, str], reason: str) -> None:
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
        **change,
    }

    with pytest.raises(WebhookRejected, match=reason):
        StandardWebhooksVerifier().verify(body=SPEC_BODY, headers=headers, secrets=[SPEC_SECRET], now=SIGNED_AT)


def test_the_window_is_five_minutes_both_ways() -> None:
    verifier = StandardWebhooksVerifier()
    headers = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP), "webhook-signature": SPEC_SIGNATURE}
    for offset in (-300, 300):
        verifier.verify(
            body=SPEC_BODY, headers=headers, secrets=[SPEC_SECRET], now=SIGNED_AT + timedelta(seconds=offset)
        )


def test_secrets_shorter_than_the_specifications_minimum_are_never_used() -> None:
    short = b"k" * 16
    ts = SPEC_TIMESTAMP
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard_webhook(short, SPEC_ID, ts, SPEC_BODY),
    }

    with pytest.raises(WebhookRejected):
        StandardWebhooksVerifier().verify(body=SPEC_BODY, headers=headers, secrets=[short], now=SIGNED_AT)


# ---- receive ----------------------------------------------------------------------------------------------


def test_a_valid_delivery_is_stored_then_accepted(world: World) -> None:
    receipt = world.receive(sample())

    assert (receipt.status, receipt.event_id, receipt.duplicate) == (202, SPEC_ID, False)
    [stored] = world.sink.stored
    assert (stored.provider, stored.tenant, stored.event_id) == ("standard", "acme", SPEC_ID)
    assert stored.body == SPEC_BODY  # the raw bytes, not re-serialised JSON
    assert stored.signed_at == SIGNED_AT and stored.content_type == "application/json"
    assert stored.request_id == "9b1d3c4e-7a2f-4e61-8c0d-5f6a7b8c9d01"
    assert world.replay.items[("acme", "standard", SPEC_ID)][0] is Claim.DONE
    assert world.audit.entries == [] and rejected_count() == 0
    assert world.asked == ["ats-dev/tenants/acme/webhook/standard"]


def test_a_base64_encoded_body_is_verified_as_the_bytes_it_encodes(world: World) -> None:
    event = sample()
    event["body"] = base64.b64encode(SPEC_BODY).decode()
    event["isBase64Encoded"] = True

    assert world.receive(event).status == 202
    assert world.sink.stored[0].body == SPEC_BODY


def test_header_names_are_case_insensitive(world: World) -> None:
    event = sample()
    event["headers"] = {k.title(): v for k, v in event["headers"].items()}
    assert world.receive(event).status == 202


def test_a_wrong_secret_is_refused(world: World) -> None:
    assert_refused(world, signed(sample(), secret=OTHER_SECRET, body=SPEC_BODY), "no signature matches")


def test_a_tampered_body_is_refused(world: World) -> None:
    event = sample()
    event["body"] = '{"test": 2432232315}'
    assert_refused(world, event, "no signature matches")


def test_a_reserialised_body_is_refused(world: World) -> None:
    event = sample()
    event["body"] = json.dumps(json.loads(event["body"]), separators=(",", ":"))
    assert_refused(world, event, "no signature matches")


def test_a_stale_timestamp_is_refused(world: World) -> None:
    clock.freeze(SIGNED_AT + timedelta(minutes=5, seconds=1))
    assert_refused(world, sample(), "too old")


def test_a_future_timestamp_is_refused(world: World) -> None:
    clock.freeze(SIGNED_AT - timedelta(minutes=5, seconds=1))
    assert_refused(world, sample(), "future")


def test_an_unknown_tenant_looks_exactly_like_a_bad_signature(world: World) -> None:
    event = sample()
    event["pathParameters"] = {"tenant": "initech"}

    assert_refused(world, event, "no such tenant")
    assert world.audit.entries[0].resource == "/v1/webhooks/standard/initech"


def test_a_delivery_signed_for_acme_is_refused_on_globexs_path() -> None:
    world = World(
        {
            "ats-dev/tenants/acme/webhook/standard": keyring("1", {"1": SPEC_SECRET}),
            "ats-dev/tenants/globex/webhook/standard": keyring("1", {"1": OTHER_SECRET}),
        }
    )
    event = sample()
    event["pathParameters"] = {"tenant": "globex"}
    assert_refused(world, event, "no signature matches")


@pytest.mark.parametrize("tenant", ["_gateway", "_platform", "../acme", "ACME", None])
def test_system_or_malformed_tenants_are_refused_without_a_lookup(world: World, tenant: str | None) -> None:
    event = sample()
    event["pathParameters"] = {"tenant": tenant} if tenant else None

    assert_refused(world, event, "no such tenant")
    assert world.asked == []


def test_a_replay_is_acknowledged_but_not_stored_again(world: World) -> None:
    first = world.receive(sample())
    again = world.receive(sample())

    assert (first.status, again.status) == (202, 200)
    assert again.duplicate and again.body() == {"status": "duplicate", "event_id": SPEC_ID}
    assert len(world.sink.stored) == 1


def test_a_provider_retry_with_a_new_timestamp_is_a_duplicate(world: World) -> None:
    world.receive(sample())
    retry = signed(sample(), secret=SPEC_SECRET, body=SPEC_BODY, at=SIGNED_AT + timedelta(seconds=60))

    assert world.receive(retry).duplicate
    assert len(world.sink.stored) == 1


def test_the_same_event_id_for_another_tenant_is_not_a_duplicate() -> None:
    world = World(
        {
            "ats-dev/tenants/acme/webhook/standard": keyring("1", {"1": SPEC_SECRET}),
            "ats-dev/tenants/globex/webhook/standard": keyring("1", {"1": OTHER_SECRET}),
        }
    )
    world.receive(sample())
    event = signed(sample(), secret=OTHER_SECRET, body=SPEC_BODY)
    event["pathParameters"] = {"tenant": "globex"}

    assert world.receive(event).status == 202
    assert [d.tenant for d in world.sink.stored] == ["acme", "globex"]


def test_when_the_sink_fails_nothing_is_acknowledged_and_the_retry_stores_it(world: World) -> None:
    world.sink.fail = 1

    with pytest.raises(DependencyFailure):
        world.receive(sample())
    assert world.replay.items[("acme", "standard", SPEC_ID)][0] is Claim.PENDING

    assert world.receive(sample()).status == 202  # the provider's retry
    assert len(world.sink.stored) == 1


def test_a_rotated_secret_still_verifies_deliveries_signed_with_the_old_one() -> None:
    world = World({"ats-dev/tenants/acme/webhook/standard": keyring("2", {"1": SPEC_SECRET, "2": OTHER_SECRET})})

    assert world.receive(sample()).status == 202  # signed with version 1
    new = signed(sample(), secret=OTHER_SECRET, body=b'{"n":2}', event_id="msg_2")
    assert world.receive(new).status == 202  # signed with version 2


def test_a_retired_secret_no_longer_verifies() -> None:
    world = World({"ats-dev/tenants/acme/webhook/standard": keyring("2", {"2": OTHER_SECRET})})
    assert_refused(world, sample(), "no signature matches")


def test_the_secret_never_appears_in_logs_or_the_audit(world: World, caplog: pytest.LogCaptureFixture) -> None:
    encoded = base64.b64encode(SPEC_SECRET).decode()
    with caplog.at_level("DEBUG"):
        world.receive(sample())
        with pytest.raises(Unauthenticated):
            world.receive(signed(sample(), secret=OTHER_SECRET, body=b"{}", event_id="msg_x"))

    everything = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert encoded not in everything and "2432232314" not in everything
    assert encoded not in json.dumps([e.model_dump(mode="json") for e in world.audit.entries])


def test_a_delivery_round_trips_through_json() -> None:
    delivery = WebhookDelivery(
        provider="standard",
        tenant="acme",
        event_id=SPEC_ID,
        signed_at=SIGNED_AT,
        received_at=SIGNED_AT,
        request_id="r-1",
        content_type=None,
        body=b"\x00\xffbinary",
    )
    assert WebhookDelivery.from_json(delivery.to_json()) == delivery
    assert "binary" not in repr(delivery)
