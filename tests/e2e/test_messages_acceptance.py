"""Issue 12's acceptance on the local runtime (the real template deployed into the emulator): each provider's
documented sample posted to its endpoint, signed as the provider signs it; forgeries refused and nothing stored;
a replayed batch stored once; out-of-order statuses; search by candidate and by text; tenant isolation; a role
without the content permission sees metadata only.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from functions.messages.logic.providers.sendgrid import parse_sendgrid
from functions.messages.logic.verifiers import sign_sendgrid, twilio_signature
from tests.e2e.conftest import Api, wait_for

EVENTS = Path(__file__).resolve().parents[2] / "events"


TWILIO_TOKEN = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
GRAPH_CLIENT_STATE = "<<--SpecifiedClientState-->>"  # the value Microsoft's documented sample carries


@pytest.fixture(scope="module")
def signing(runtime: Api) -> ec.EllipticCurvePrivateKey:
    """What onboarding stores for these providers (docs/messages.md): SendGrid's verification key (a key pair made
    here, as SendGrid makes one per account), a Twilio auth token, the Graph clientState, for both tenants."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    secrets = runtime.aws("secretsmanager")
    prefix = f"{runtime.session['stack']}/tenants/"
    for tenant in ("acme", "globex"):
        for kind, value in (
            ("webhook/sendgrid", der),
            ("webhook/twilio", TWILIO_TOKEN.encode()),
            ("webhook/graph", GRAPH_CLIENT_STATE.encode()),
        ):
            secrets.put_secret_value(
                SecretId=f"{prefix}{tenant}/{kind}",
                SecretString=json.dumps({"current": "1", "keys": {"1": base64.b64encode(value).decode()}}),
            )
    return key


def _now(runtime: Api) -> int:
    """The runtime's clock (other tests move it): what a provider's timestamp is checked against."""
    return int(datetime.fromisoformat(runtime.call("GET", "/_local/clock")[1]["now"]).timestamp())


def _post(runtime: Api, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(runtime.base + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def _sendgrid(runtime: Api, key: Any, tenant: str, events: list[dict[str, Any]]) -> tuple[int, Any]:
    body = json.dumps(events, separators=(",", ":")).encode()
    timestamp = str(_now(runtime))
    return _post(
        runtime,
        f"/v1/webhooks/sendgrid/{tenant}",
        body,
        {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": sign_sendgrid(key, timestamp, body),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
    )


def _search(runtime: Api, query: str, *, tenant: str = "acme", role: str = "recruiter") -> list[dict[str, Any]]:
    status, page = runtime.call("GET", f"/v1/messages?{query}", runtime.token(tenant, role))
    assert status == 200, page
    return list(page["messages"])


def _documented_sendgrid(suffix: str) -> list[dict[str, Any]]:
    """SendGrid's documented Event Webhook examples, their message ids made unique to this test run."""
    events = json.loads((EVENTS / "sendgrid_events.json").read_text())
    for event in events:
        if "sg_message_id" in event:
            event["sg_message_id"] = f"{suffix}{event['sg_message_id'].strip()}"
        if "sg_event_id" in event:
            event["sg_event_id"] = f"{suffix}{event['sg_event_id']}"
    return events


def test_the_documented_sendgrid_batch_is_stored_once_even_when_posted_twice(
    runtime: Api, signing: ec.EllipticCurvePrivateKey
) -> None:
    suffix = uuid.uuid4().hex[:8]
    events = _documented_sendgrid(suffix)
    expected = parse_sendgrid(json.dumps(events).encode())
    keys = {e.message_key for e in expected}
    assert _sendgrid(runtime, signing, "acme", events)[0] == 202
    assert _sendgrid(runtime, signing, "acme", events)[0] == 200  # SendGrid's retry of the same batch

    def stored() -> list[dict[str, Any]] | None:
        found = [m for m in _search(runtime, "channel=email&limit=100") if m["provider_message_id"] in keys]
        return found if len(found) == len(keys) else None

    found = wait_for(stored, timeout=60)
    by_key = {m["provider_message_id"]: m for m in found}
    for key in keys:
        ids = {e.event_id for e in expected if e.message_key == key}
        assert len(by_key[key]["history"]) == len(ids), key  # each event once


def test_forged_signatures_and_a_wrong_client_state_are_refused_and_store_nothing(
    runtime: Api, signing: ec.EllipticCurvePrivateKey
) -> None:
    before = len(_search(runtime, "channel=sms&limit=100"))
    forged_key = ec.generate_private_key(ec.SECP256R1())
    assert _sendgrid(runtime, forged_key, "acme", _documented_sendgrid(uuid.uuid4().hex[:8]))[0] == 401

    form = dict(parse_qsl((EVENTS / "twilio_status_callback.txt").read_text().strip()))
    form["MessageSid"] = "SM" + uuid.uuid4().hex
    url = f"{runtime.base}/v1/webhooks/twilio/acme"
    forged = twilio_signature("not-the-auth-token", url, form)
    status, _ = _post(
        runtime,
        "/v1/webhooks/twilio/acme",
        "&".join(f"{k}={urllib.parse.quote(v)}" for k, v in form.items()).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": forged},
    )
    assert status == 401

    graph = json.loads((EVENTS / "graph_chat_message_notification.json").read_text())
    graph["value"][0]["clientState"] = "someone else's state"
    status, _ = _post(
        runtime, "/v1/webhooks/graph/acme", json.dumps(graph).encode(), {"Content-Type": "application/json"}
    )
    assert status == 401
    time.sleep(2)  # what a forged request could have queued would have been applied by now
    assert len(_search(runtime, "channel=sms&limit=100")) == before


def test_the_documented_twilio_callback_and_graph_notification_are_stored(
    runtime: Api, signing: ec.EllipticCurvePrivateKey
) -> None:
    form = dict(parse_qsl((EVENTS / "twilio_status_callback.txt").read_text().strip()))
    sid = "SM" + uuid.uuid4().hex
    form["MessageSid"] = form["SmsSid"] = sid
    body = "&".join(f"{k}={urllib.parse.quote(v)}" for k, v in form.items()).encode()
    url = f"{runtime.base}/v1/webhooks/twilio/acme"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, form),
    }
    status, receipt = _post(runtime, "/v1/webhooks/twilio/acme", body, headers)
    assert status == 202, receipt
    sms = wait_for(
        lambda: [m for m in _search(runtime, "channel=sms&limit=100") if m["provider_message_id"] == sid] or None,
        timeout=60,
    )
    assert sms[0]["status"] == "sent"

    graph = (EVENTS / "graph_chat_message_notification.json").read_bytes()
    status, receipt = _post(runtime, "/v1/webhooks/graph/acme", graph, {"Content-Type": "application/json"})
    assert status == 202, receipt
    teams = wait_for(lambda: _search(runtime, "channel=teams&limit=100") or None, timeout=60)
    assert any(m["provider_message_id"] == "1612293113399" for m in teams)

    status, answer = _post(runtime, "/v1/webhooks/graph/acme?validationToken=Validation%3A%20Testing", b"", {})
    assert (status, answer) == (200, "Validation: Testing")


def test_delivered_before_sent_ends_delivered(runtime: Api, signing: ec.EllipticCurvePrivateKey) -> None:
    message = f"order-{uuid.uuid4().hex[:10]}.filter0001p1las1-1"
    now = _now(runtime)
    base = {"email": "candidate@example.com", "sg_message_id": message, "candidate_id": "cand-order"}
    delivered = {**base, "event": "delivered", "timestamp": now, "sg_event_id": f"d-{message}"}
    processed = {**base, "event": "processed", "timestamp": now - 30, "sg_event_id": f"p-{message}"}
    assert _sendgrid(runtime, signing, "acme", [delivered])[0] == 202
    key = message.split(".")[0]
    wait_for(
        lambda: [m for m in _search(runtime, "candidate_id=cand-order") if m["provider_message_id"] == key] or None,
        timeout=60,
    )
    assert _sendgrid(runtime, signing, "acme", [processed])[0] == 202

    def both() -> dict[str, Any] | None:
        found = [m for m in _search(runtime, "candidate_id=cand-order") if m["provider_message_id"] == key]
        return found[0] if found and len(found[0]["history"]) == 2 else None

    message_found = wait_for(both, timeout=60)
    assert message_found["status"] == "delivered"
    assert [h["status"] for h in message_found["history"]] == ["sent", "delivered"]


def _keep_full_content(runtime: Api, officer: str) -> None:
    status, policy = runtime.call("GET", "/v1/message-policy", officer)
    assert status == 200
    if policy["content"] != "full":
        status, policy = runtime.call(
            "PUT", "/v1/message-policy", officer, {"content": "full", "version": policy["version"]}
        )
        assert status == 200, policy


def test_found_by_candidate_and_by_text_isolated_and_content_only_with_its_permission(runtime: Api) -> None:
    officer = runtime.call("POST", "/_local/tokens", body={"tenant": "acme", "roles": ["compliance_officer"]})[1][
        "token"
    ]
    _keep_full_content(runtime, officer)
    candidate = f"cand-{uuid.uuid4().hex[:8]}"
    ats_id = f"ats-{uuid.uuid4().hex[:10]}"
    record = {
        "message_id": ats_id,
        "channel": "email",
        "direction": "inbound",
        "status": "delivered",
        "occurred_at": runtime.call("GET", "/_local/clock")[1]["now"],
        "candidate_id": candidate,
        "requisition_id": "req-e2e",
        "sender": {"address": "zoe@example.com", "name": "Zoë Ærøskøbing"},
        "subject": "Entretien à Zürich",
        "body": "Je confirme l'entretien de lundi. 東京のオフィスでも可能です。",
    }
    status, receipt = runtime.call("POST", "/v1/messages", str(runtime.session["integration_tokens"]["acme"]), record)
    assert status == 202, receipt
    (message_id,) = receipt["message_ids"]

    found = wait_for(lambda: _search(runtime, f"candidate_id={candidate}") or None, timeout=60)
    assert [m["message_id"] for m in found] == [message_id]
    assert found[0]["content"]["subject"] == "Entretien à Zürich"
    for words in ("zurich", "ENTRETIEN%20lundi", "%E6%9D%B1%E4%BA%AC"):  # 東京
        assert [m["message_id"] for m in _search(runtime, f"q={words}")] == [message_id], words

    metadata_only = _search(runtime, f"candidate_id={candidate}", role="hiring_manager")
    assert metadata_only[0]["content"] is None and metadata_only[0]["content_kept"] is True

    assert _search(runtime, f"candidate_id={candidate}", tenant="globex") == []
    assert _search(runtime, "q=zurich", tenant="globex") == []
    status, _ = runtime.call("GET", f"/v1/messages/{message_id}", runtime.token("globex", "recruiter"))
    assert status == 404


def test_an_export_downloads_and_its_manifest_hashes_match_the_files(runtime: Api) -> None:
    officer = runtime.call("POST", "/_local/tokens", body={"tenant": "acme", "roles": ["compliance_officer"]})[1][
        "token"
    ]
    _keep_full_content(runtime, officer)
    candidate = f"cand-{uuid.uuid4().hex[:8]}"
    now = runtime.call("GET", "/_local/clock")[1]["now"]
    records = [
        {
            "message_id": f"ats-{uuid.uuid4().hex[:10]}",
            "channel": channel,
            "direction": "outbound",
            "status": "sent",
            "occurred_at": now,
            "candidate_id": candidate,
            "requisition_id": "req-export",
            "rfc_message_id": f"{uuid.uuid4().hex}@mail.acme.example" if channel == "email" else None,
            "sender": {"address": "recrutement@acme.example" if channel == "email" else "+33612345678"},
            "recipients": [{"address": "zoe@example.com" if channel == "email" else "+33698765432"}],
            "subject": "Votre entretien",
            "body": "Rendez-vous lundi à 10 h.",
        }
        for channel in ("email", "sms", "email")
    ]
    integration = str(runtime.session["integration_tokens"]["acme"])
    status, receipt = runtime.call("POST", "/v1/message-batches", integration, {"messages": records})
    assert status == 202, receipt
    wait_for(lambda: len(_search(runtime, f"candidate_id={candidate}")) == 3, timeout=60)

    status, started = runtime.call("POST", "/v1/message-exports", officer, {"candidate_id": candidate})
    assert status == 202, started
    path = f"/v1/message-exports/{started['export_id']}"

    def succeeded() -> dict[str, Any] | None:
        answer = runtime.call("GET", path, officer)[1]
        assert answer["status"] != "failed", answer
        return answer if answer["status"] == "succeeded" else None

    done = wait_for(succeeded, timeout=120, interval=1)
    assert done is not None and done["counts"]["documents"] == 3 and done["counts"]["emails"] == 2
    with urllib.request.urlopen(done["manifest"]["url"], timeout=30) as response:
        manifest = json.loads(response.read())
    for entry in manifest["files"]:
        status, link = runtime.call("GET", f"{path}/file?path={entry['path']}", officer)
        assert status == 200, link
        with urllib.request.urlopen(link["url"], timeout=30) as response:
            data = response.read()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]
        if entry["path"].endswith(".eml"):
            parsed = email.message_from_bytes(data, policy=email.policy.default)
            assert parsed["X-ATS-Candidate-Id"] == candidate and parsed["Subject"] == "Votre entretien"
    assert len([f for f in manifest["files"] if f["path"].startswith("native/")]) == 2

    globex = runtime.call("POST", "/_local/tokens", body={"tenant": "globex", "roles": ["compliance_officer"]})[1][
        "token"
    ]
    assert runtime.call("GET", path, globex)[0] == 404
    assert runtime.call("GET", path, runtime.token("acme", "recruiter"))[0] == 403


def test_raw_mime_captured_to_the_inbound_bucket_is_stored(runtime: Api) -> None:
    """What SES receiving's S3 action does: the raw message under inbound/<tenant>/; the bucket's Object Created
    event travels the default bus and the captured-mail queue to the ingest consumer."""
    raw = (EVENTS / "mime_reply.eml").read_bytes()
    wanted = email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"].strip("<>")
    runtime.aws("s3").put_object(
        Bucket=runtime.resource("MessagesInboundMail"), Key=f"inbound/acme/{uuid.uuid4().hex}", Body=raw
    )

    def stored() -> list[dict[str, Any]]:
        return [m for m in _search(runtime, "channel=email&limit=100") if m["rfc_message_id"] == wanted]

    (message,) = wait_for(stored, timeout=60)
    assert message["provider"] == "smtp" and message["direction"] == "inbound"
    assert [
        m for m in _search(runtime, "channel=email&limit=100", tenant="globex") if m["rfc_message_id"] == wanted
    ] == []


def test_the_restore_drill_restores_the_messages_table_and_checks_it_against_the_audit_trail(
    runtime: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disaster-recovery drill's command (`python -m functions.messages.drill`) against the runtime's emulator:
    the messages table (filled by the tests above: policies, messages, holds) restored to now into a new table,
    checked against the audit trail, then deleted. The command runs here, on the runtime's clock (other tests
    move it): moto copies the table as it is (docs/decisions.md), so this proves the drill's mechanics on the
    deployed tables, not PITR itself."""
    from functions.messages.drill import main
    from shared import clock

    now = datetime.fromisoformat(runtime.call("GET", "/_local/clock")[1]["now"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    clock.set_offset((now - datetime.now(now.tzinfo)).total_seconds())
    try:
        status = main(
            [
                *("--table", runtime.resource("MessagesMessagesTable")),
                *("--audit-table", runtime.resource("AuditAuditTable")),
                *("--restore-time", now.isoformat()),
                *("--endpoint-url", str(runtime.session["emulator_endpoint"])),
                *("--region", str(runtime.session["region"])),
                *("--settle-seconds", "0", "--wait-minutes", "1"),
            ]
        )
    finally:
        clock.set_offset(0)

    report = json.loads(capsys.readouterr().out)
    assert status == 0, report
    assert report["ok"] is True and report["mismatches"] == [] and report["messages"] > 0
    assert report["kept"] is False and report["deleted"] is True
    assert report["restored_table"] not in runtime.aws("dynamodb").list_tables()["TableNames"]
