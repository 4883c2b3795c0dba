"""The deployed shape, exercised over HTTP: the foundation's acceptance as a new user meets it."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import threading
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from functions.audit.dal.chain import DynamoChainStore
from infra.local.functions import MAX_INSTANCES
from shared.audit import INBOX_SHARDS, DynamoAuditLog
from shared.audit_proof import entry_hash, parse_export_line
from shared.auth import Role
from shared.events import DomainEvent
from shared.publisher import EventBridgePublisher
from tests.e2e.conftest import Api, start_runtime, stop_runtime, wait_for

pytestmark = pytest.mark.e2e


class ProbeRequested(DomainEvent):
    detail_type: ClassVar[str] = "ProbeRequested"
    n: int


class SomethingElse(DomainEvent):
    detail_type: ClassVar[str] = "SomethingElse"
    n: int


def audit_entries(api: Api, tenant: str) -> list[dict[str, Any]]:
    """The tenant's entries as requests inserted them (every inbox shard), oldest first."""
    log = DynamoAuditLog(api.resource("AuditAuditTable"), client=api.aws("dynamodb"))
    return [e.model_dump(mode="json") for e in log.entries(tenant, limit=100_000)]


def test_health_answers_without_a_token(runtime: Api) -> None:
    # When
    status, body = runtime.call("GET", "/v1/health")
    # Then
    assert status == 200
    # A fresh runtime's health workflow may not have run yet: degraded exactly when no recent heartbeat exists
    assert body["status"] == ("ok" if body["last_heartbeat"] else "degraded")
    assert body["versions"]["service"] and body["versions"]["powertools"]
    assert abs(
        datetime.fromisoformat(body["now"]) - datetime.now(datetime.fromisoformat(body["now"]).tzinfo)
    ) < timedelta(days=400)


def test_session_has_a_token_for_every_role_of_both_tenants(runtime: Api) -> None:
    for tenant in ("acme", "globex"):
        tokens = runtime.session["tokens"][tenant]
        # one ID token per role, and under "integration" the machine client's access token
        assert set(tokens) == {role.value for role in Role} | {"integration"}
        assert {_claims(tokens[role.value])["token_use"] for role in Role} == {"id"}
        assert tokens["integration"] == runtime.session["integration_tokens"][tenant]


@pytest.mark.parametrize(("tenant", "role"), [("acme", "recruiter"), ("globex", "auditor")])
def test_me_returns_the_verified_tenant_and_roles_and_is_audited(runtime: Api, tenant: str, role: str) -> None:
    # Given
    before = len(audit_entries(runtime, tenant))
    # When
    status, body = runtime.call("GET", "/v1/me", runtime.token(tenant, role))
    # Then
    assert status == 200
    assert body["tenant"] == tenant
    assert body["roles"] == [role]
    entries = audit_entries(runtime, tenant)
    assert len(entries) == before + 1
    assert entries[-1]["action"] == "identity:read" and entries[-1]["outcome"] == "allowed"
    assert body["actor"] == "user"
    assert entries[-1]["actor"] == f"user:{body['subject']}"


@pytest.mark.parametrize("case", ["no token", "tampered signature", "tenant claim swapped", "expired", "garbage"])
def test_refused_tokens_get_401_and_an_audit_entry(runtime: Api, case: str) -> None:
    # Given
    token = runtime.token("acme", "recruiter")
    if case == "no token":
        token = ""
    elif case == "tampered signature":
        head, payload, signature = token.split(".")
        token = ".".join([head, payload, ("A" if signature[0] != "A" else "B") + signature[1:]])
    elif case == "tenant claim swapped":  # the signature is acme's; the claims now say globex
        head, payload, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["custom:tenant"] = "globex"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        token = ".".join([head, forged, signature])
    elif case == "expired":
        token = runtime.call(
            "POST", "/_local/tokens", body={"tenant": "acme", "roles": ["recruiter"], "lifetime_seconds": -60}
        )[1]["token"]
    else:
        token = "not-a-jwt"
    # When
    status, body = runtime.call("GET", "/v1/me", token or None)
    # Then a bare Unauthorized, as Cognito's authorizer answers: nothing of why
    assert status == 401
    assert body["error"]["code"] == "unauthenticated"
    assert body["error"]["message"] == "Unauthorized"
    request_id = body["error"]["request_id"]
    entries = wait_for(
        lambda: [e for e in audit_entries(runtime, "_gateway") if e["request_id"] == request_id], timeout=120
    )
    assert entries, "the refusal was not audited"
    assert entries[0]["outcome"] == "denied" and entries[0]["action"] == "GET /v1/me"


def test_a_token_without_a_known_role_is_forbidden_and_audited(runtime: Api) -> None:
    # Given a verified token for acme whose only group is not an ATS role
    token = runtime.call("POST", "/_local/tokens", body={"tenant": "acme", "roles": ["intern"]})[1]["token"]
    before = len(audit_entries(runtime, "acme"))
    # When
    status, body = runtime.call("GET", "/v1/me", token)
    # Then
    assert status == 403
    assert body["error"]["code"] == "forbidden"
    entries = audit_entries(runtime, "acme")
    assert len(entries) == before + 1 and entries[-1]["outcome"] == "denied"


def test_the_tenant_comes_from_the_token_not_the_request(runtime: Api) -> None:
    # When acme's token is sent with a header and query naming another tenant
    status, body = runtime.call("GET", "/v1/me?tenant=globex", runtime.token("acme", "hr_admin"))
    # Then
    assert status == 200 and body["tenant"] == "acme"


def test_the_health_workflow_runs_its_lambda_task_from_the_code_asset(runtime: Api) -> None:
    # Given the scheduled rule that targets the health state machine
    rules = runtime.call("GET", "/_local/rules")[1]["rules"]
    rule = next(r["rule"] for r in rules if r["rule"].startswith("PlatformHealth"))
    # When it is run now
    status, body = runtime.call("POST", f"/_local/rules/{rule}/run")
    assert status == 200
    execution_arn = body["started"][0]
    sfn = runtime.aws("stepfunctions")
    # Then the execution succeeds, its Lambda task run by the runtime (no container), and health has the heartbeat
    final = wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution_arn))["status"] != "RUNNING" and d, timeout=60
    )
    assert final and final["status"] == "SUCCEEDED", final
    output = json.loads(final["output"])
    assert output["execution"] == execution_arn
    health = runtime.call("GET", "/v1/health")[1]
    assert health["last_heartbeat"] is not None and health["status"] == "ok"
    stats = runtime.call("GET", "/_local/status")[1]["functions"]
    probe = next(v for k, v in stats.items() if k.startswith("PlatformHealthProbe"))
    assert probe["invocations"] >= 1


def test_moving_the_clock_fires_due_schedules_and_moves_the_service_clock(runtime: Api) -> None:
    # Given
    before = datetime.fromisoformat(runtime.call("GET", "/v1/health")[1]["now"])
    # When the clock moves 30 days
    status, body = runtime.call("POST", "/_local/clock/advance", body={"days": 30})
    # Then the 5-minute health schedule fell due and fired, and handlers see the new time
    assert status == 200
    assert any(name.startswith("PlatformHealth") for name in body["fired"])
    after = datetime.fromisoformat(runtime.call("GET", "/v1/health")[1]["now"])
    assert after - before >= timedelta(days=30)


def _start_waiting_workflow(runtime: Api, wait: dict[str, Any]) -> str:
    sfn = runtime.aws("stepfunctions")
    definition = {
        "StartAt": "Hold",
        "States": {"Hold": {"Type": "Wait", **wait, "Next": "Done"}, "Done": {"Type": "Succeed"}},
    }
    machine = sfn.create_state_machine(
        name=f"e2e-wait-{uuid.uuid4().hex[:12]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/e2e-wait",
    )["stateMachineArn"]
    return str(sfn.start_execution(stateMachineArn=machine)["executionArn"])


def test_wait_states_follow_the_local_clock(runtime: Api) -> None:
    # Given two executions waiting: one for an hour, one until a moment two days ahead of the service clock
    now = datetime.fromisoformat(runtime.call("GET", "/_local/clock")[1]["now"])
    until = (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    waiting = [
        _start_waiting_workflow(runtime, {"Seconds": 3600}),
        _start_waiting_workflow(runtime, {"Timestamp": until}),
    ]
    sfn = runtime.aws("stepfunctions")

    def statuses() -> list[str]:
        return [sfn.describe_execution(executionArn=arn)["status"] for arn in waiting]

    # When a little real time passes, they still wait
    wait_for(lambda: False, timeout=1.0)
    assert statuses() == ["RUNNING", "RUNNING"]
    # When the clock moves past the hour, only the first is released
    assert runtime.call("POST", "/_local/clock/advance", body={"seconds": 3601})[0] == 200
    assert wait_for(lambda: statuses()[0] == "SUCCEEDED", timeout=10)
    assert statuses()[1] == "RUNNING"
    # When it moves past the timestamp, the second is released too
    assert runtime.call("POST", "/_local/clock/advance", body={"days": 2})[0] == 200
    assert wait_for(lambda: statuses() == ["SUCCEEDED", "SUCCEEDED"], timeout=10)


def test_bad_clock_moves_are_refused(runtime: Api) -> None:
    assert runtime.call("POST", "/_local/clock/advance", body={"days": -1})[0] == 400
    assert runtime.call("POST", "/_local/clock/advance", body={"days": "soon"})[0] == 400


def test_unknown_routes_get_a_404_error_body(runtime: Api) -> None:
    status, body = runtime.call("GET", "/v1/nowhere")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = runtime.call("DELETE", "/v1/health")
    assert status == 404


def test_openapi_and_swagger_ui_are_served_without_a_cdn(runtime: Api) -> None:
    status, document = runtime.call("GET", "/openapi.json")
    assert status == 200
    assert {"/v1/health", "/v1/me"} <= set(document["paths"])
    assert document["paths"]["/v1/me"]["get"]["security"] == [{"bearerAuth": []}]
    with urllib.request.urlopen(runtime.base + "/docs", timeout=30) as response:
        html = response.read().decode()
    assert "/docs/swagger-ui.js" in html and "cdn" not in html.lower()
    with urllib.request.urlopen(runtime.base + "/docs/swagger-ui.js", timeout=30) as response:
        assert response.status == 200 and len(response.read()) > 100_000


def test_ctrl_c_stops_the_runtime_and_frees_its_port(cloud_assembly: Path, tmp_path: Path) -> None:
    # Given a second runtime
    process, session, log = start_runtime(cloud_assembly, tmp_path)
    assert Api(session).call("GET", "/v1/health")[0] == 200
    # When Ctrl-C
    code = stop_runtime(process)
    # Then it exits cleanly and nothing serves on its port any more
    assert code == 0, log.read_text()[-2000:]
    with pytest.raises(OSError):
        urllib.request.urlopen(session["base_url"] + "/v1/health", timeout=5)


def test_overlapping_requests_scale_out_and_keep_the_audit_chain_whole(runtime: Api) -> None:
    # Given eight callers of one tenant, released at the same instant
    roles = ["recruiter", "hiring_manager", "hr_admin", "auditor", "company_admin", "compliance_officer"]
    callers = [runtime.token("globex", roles[n % len(roles)]) for n in range(8)]
    start = threading.Barrier(len(callers))

    def call(token: str) -> int:
        start.wait()
        return runtime.call("GET", "/v1/me", token)[0]

    # When they call at once
    with ThreadPoolExecutor(len(callers)) as pool:
        statuses = list(pool.map(call, callers))
    # Then every call is answered, by more than one execution environment but no more than the limit
    assert statuses == [200] * len(callers)
    stats = runtime.call("GET", "/_local/status")[1]["functions"]
    me = next(v for k, v in stats.items() if k.startswith("PlatformMe"))
    assert 2 <= me["instances"] <= MAX_INSTANCES
    # And every call's audit entry was inserted, then linked by the single writer into globex's chains without a
    # fork or a gap (each shard's seqs 1..n, each hash over the one before)
    table = runtime.resource("AuditAuditTable")
    ddb = runtime.aws("dynamodb")
    assert len(DynamoAuditLog(table, client=ddb).entries("globex")) >= len(callers)

    def linked() -> int:
        total = 0
        for shard in range(INBOX_SHARDS):
            prev = bytes(32)
            lines = list(DynamoChainStore(table, client=ddb).lines("globex", shard, after_seq=0))
            for seq, line in enumerate(lines, start=1):
                exported = parse_export_line(line.encode())
                assert exported.entry["seq"] == seq and exported.stored_hash == entry_hash(prev, exported.entry)
                prev = exported.stored_hash
            total += len(lines)
        return total

    assert wait_for(lambda: linked() >= len(callers), timeout=30)


def test_domain_events_on_the_bus_reach_the_lambda_targets_of_matching_rules(runtime: Api) -> None:
    # Given a rule on the project's bus that sends one kind of domain event to a function
    events, functions = runtime.aws("events"), runtime.aws("lambda")
    bus = runtime.resource("FoundationDomainEventBus")
    functions_by_id = runtime.call("GET", "/_local/status")[1]["functions"]
    probe_id = next(k for k in functions_by_id if k.startswith("PlatformHealthProbe"))
    probe = functions.get_function(FunctionName=runtime.session["resources"][probe_id])["Configuration"]
    rule = f"e2e-{uuid.uuid4().hex[:12]}"
    pattern = {"source": ["ats.e2e"], "detail-type": ["ProbeRequested"]}
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "probe", "Arn": probe["FunctionArn"]}])

    def invocations() -> int:
        stats = runtime.call("GET", "/_local/status")[1]["functions"]
        return int(next(v for k, v in stats.items() if k.startswith("PlatformHealthProbe"))["invocations"])

    before = invocations()
    # When the publisher port puts a matching and a non-matching event on the bus
    EventBridgePublisher(bus, "ats.e2e", client=events).publish(
        [ProbeRequested(tenant="acme", n=1), SomethingElse(tenant="acme", n=2)]
    )
    # Then the function runs once, for the matching event only
    assert wait_for(lambda: invocations() == before + 1, timeout=15)
    wait_for(lambda: False, timeout=1.0)
    assert invocations() == before + 1


def _function_arn(runtime: Api, prefix: str) -> str:
    logical_id = next(k for k in runtime.call("GET", "/_local/status")[1]["functions"] if k.startswith(prefix))
    configuration = runtime.aws("lambda").get_function(FunctionName=runtime.session["resources"][logical_id])
    return str(configuration["Configuration"]["FunctionArn"])


def _queue_with_dead_letters(runtime: Api) -> tuple[str, str]:
    sqs = runtime.aws("sqs")
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    queue = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "1", "RedrivePolicy": redrive})[
        "QueueUrl"
    ]
    return queue, dlq


def _visible(runtime: Api, url: str) -> int:
    attributes = runtime.aws("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_sqs_mappings_are_polled_in_batches_and_settled_as_lambda_does(runtime: Api) -> None:
    sqs, functions = runtime.aws("sqs"), runtime.aws("lambda")
    # Given a queue mapped to a function that handles any event, and one mapped to a function that fails on it
    handled, handled_dlq = _queue_with_dead_letters(runtime)
    failing, failing_dlq = _queue_with_dead_letters(runtime)
    for url, prefix in ((handled, "PlatformHealthProbe"), (failing, "AuditGatewayRefusalAuditor")):
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        functions.create_event_source_mapping(EventSourceArn=arn, FunctionName=_function_arn(runtime, prefix))
    # When messages arrive on both
    sqs.send_message_batch(
        QueueUrl=handled, Entries=[{"Id": str(n), "MessageBody": json.dumps({"n": n})} for n in range(3)]
    )
    sqs.send_message(QueueUrl=failing, MessageBody="{}")
    # Then the handled ones are deleted after the function returned, and nothing reaches their DLQ
    assert wait_for(lambda: _visible(runtime, handled) == 0, timeout=20)
    assert runtime.call("GET", "/_local/status")[1]["queue_batches_delivered"] >= 1
    assert _visible(runtime, handled_dlq) == 0
    # And the failing one is retried after its visibility timeout, then moved to the DLQ by the redrive policy
    assert wait_for(lambda: _visible(runtime, failing_dlq) == 1, timeout=30)
    assert _visible(runtime, failing) == 0


def test_a_taken_port_fails_at_once_and_says_what_to_do(cloud_assembly: Path, tmp_path: Path) -> None:
    # Given something already listening on the port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        # When the runtime is asked to serve on it
        result = subprocess.run(
            [sys.executable, "-m", "infra.local", "--port", str(port), "--cdk-out", str(cloud_assembly)]
            + ["--session-file", str(tmp_path / "session.json")],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=60,
        )
    # Then it exits before deploying anything, naming the port and the way out
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr and "PORT=" in result.stderr
    assert not (tmp_path / "session.json").exists()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@pytest.mark.parametrize("tenant", ["acme", "globex"])
def test_an_integration_token_from_the_session_is_an_integration_actor_of_its_tenant(runtime: Api, tenant: str) -> None:
    # Given the machine client's access token that session.json hands out
    token = runtime.session["integration_tokens"][tenant]
    claims = _claims(token)
    assert claims["token_use"] == "access" and claims["exp"] - claims["iat"] == 3600
    # When it calls /v1/me
    status, body = runtime.call("GET", "/v1/me", token)
    # Then the answer names an integration of that tenant: its client, its scopes, no roles
    assert status == 200, body
    assert body["tenant"] == tenant and body["actor"] == "integration"
    assert body["subject"] == claims["client_id"] and body["roles"] == []
    assert "identity.read" in body["scopes"]


def test_an_access_token_for_acme_cannot_read_globex(runtime: Api) -> None:
    acme, globex = (runtime.session["integration_tokens"][t] for t in ("acme", "globex"))
    for path in ("/v1/me?tenant=globex", "/v1/me?custom:tenant=globex"):
        status, body = runtime.call("GET", path, acme)
        assert status == 200 and body["tenant"] == "acme"
    # Given a vacancy that globex's ATS reported
    report = {"status": "open", "opened_at": "2026-01-05T09:00:00Z"}
    status, body = runtime.call("PUT", "/v1/vacancies/GX-e2e-1", globex, body=report)
    assert status in (200, 201), body
    assert runtime.call("GET", "/v1/vacancies/GX-e2e-1", globex)[0] == 200
    # When acme's integration reads it, or overwrites it, by its id: globex's record is neither seen nor touched
    status, body = runtime.call("GET", "/v1/vacancies/GX-e2e-1", acme)
    assert status == 404 and body["error"]["message"] == "no vacancy"
    closed = {**report, "status": "closed", "closed_at": "2026-02-01T00:00:00Z"}
    assert runtime.call("PUT", "/v1/vacancies/GX-e2e-1", acme, body=closed)[0] == 201  # acme's own, new record
    assert runtime.call("GET", "/v1/vacancies/GX-e2e-1", globex)[1]["status"] == "open"


def test_an_access_token_without_the_routes_scope_is_forbidden(runtime: Api) -> None:
    # /v1/me has no AuthorizationScopes: the gateway lets the machine in, the function's policy decides
    token = runtime.call("POST", "/_local/tokens", body={"tenant": "acme", "kind": "access", "scopes": ["audit.read"]})
    assert token[0] == 200, token
    status, body = runtime.call("GET", "/v1/me", token[1]["token"])
    assert status == 403 and body["error"]["code"] == "forbidden"


def test_the_pool_mints_no_token_for_a_system_tenant(runtime: Api) -> None:
    for body in ({"tenant": "_platform", "roles": ["auditor"]}, {"tenant": "_gateway", "kind": "access"}):
        assert runtime.call("POST", "/_local/tokens", body=body)[0] == 400
    assert runtime.call("POST", "/_local/tokens", body={"tenant": "acme", "kind": "access", "scopes": ["x"]})[0] == 400


def test_an_id_token_on_a_scope_only_route_is_refused(runtime: Api, cloud_assembly: Path) -> None:
    from infra.local.template import load

    scoped = [r for r in load(cloud_assembly).routes if r.scopes]
    assert scoped, "the template has a scope-only route (PUT /v1/vacancies/{vacancy_id})"
    for route in scoped:
        path = re.sub(r"\{[^}]+\}", "e2e-scope-1", route.path)
        # Every person's ID token is refused by the gateway itself, whatever the role
        for role in ("company_admin", "hr_admin", "recruiter"):
            status, body = runtime.call(route.method, path, runtime.token("acme", role), body={})
            assert status == 401 and body["error"]["message"] == "Unauthorized", (route, role, body)
        # An access token without one of the route's scopes is refused there too; with one, it reaches the function
        other = runtime.call(
            "POST", "/_local/tokens", body={"tenant": "acme", "kind": "access", "scopes": ["audit.read"]}
        )
        assert runtime.call(route.method, path, other[1]["token"], body={})[0] == 401
        # ...the function then judges the request: 422 for a body missing what it requires, 404 for an unknown
        # record when the body needs nothing (a self-service link for a person nobody reported)
        reached = runtime.call(route.method, path, runtime.session["integration_tokens"]["acme"], body={})
        assert reached[0] in (404, 422), (route, reached)


def test_a_token_signed_by_a_rotated_out_key_is_refused(runtime: Api) -> None:
    # Given a token signed by a key that is then rotated out of the JWKS (the session's own key stays)
    assert runtime.call("POST", "/_local/keys/rotate")[0] == 200
    token = runtime.call("POST", "/_local/tokens", body={"tenant": "acme", "roles": ["auditor"]})[1]["token"]
    assert runtime.call("GET", "/v1/me", token)[0] == 200
    rotated = runtime.call("POST", "/_local/keys/rotate", body={"remove_previous": True})[1]
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==")).get("kid") not in {
        k["kid"] for k in rotated["jwks"]["keys"]
    }
    # When it is used, then it is refused, bare; tokens of the keys still published keep working
    status, body = runtime.call("GET", "/v1/me", token)
    assert status == 401 and body["error"]["message"] == "Unauthorized"
    assert runtime.call("GET", "/v1/me", runtime.token("acme", "auditor"))[0] == 200
    fresh = runtime.call("POST", "/_local/tokens", body={"tenant": "acme", "kind": "access"})[1]["token"]
    assert runtime.call("GET", "/v1/me", fresh)[0] == 200


def test_a_negative_content_length_is_refused_at_once(runtime: Api) -> None:
    host, port = runtime.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"POST /v1/me HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400")
    assert runtime.call("GET", "/_local/status")[0] == 200  # the gateway still serves


def test_declared_tenant_secrets_are_seeded_and_session_kinds_handed_out(runtime: Api, cloud_assembly: Path) -> None:
    from infra.local.template import load

    declared = load(cloud_assembly).tenant_secrets
    secrets = runtime.aws("secretsmanager")
    prefix = f"{runtime.session['stack']}/tenants/"
    for tenant in ("acme", "globex"):
        for kind in declared:
            keyring = json.loads(secrets.get_secret_value(SecretId=f"{prefix}{tenant}/{kind.kind}")["SecretString"])
            assert len(base64.b64decode(keyring["keys"][keyring["current"]])) == 32
            if kind.session:
                assert runtime.session["tenant_secrets"][tenant][kind.kind] == keyring["keys"][keyring["current"]]
    assert set(runtime.session["tenant_secrets"].get("acme", {})) == {k.kind for k in declared if k.session}


def _queue(runtime: Api, name: str) -> tuple[str, str]:
    sqs = runtime.aws("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _put_probe_event(runtime: Api, bus: str, detail_type: str) -> None:
    detail = {"metadata": {"event_id": str(uuid.uuid4()), "tenant": "acme", "version": "1"}, "data": {"n": 1}}
    entry = {"EventBusName": bus, "Source": "ats.e2e", "DetailType": detail_type, "Detail": json.dumps(detail)}
    assert runtime.aws("events").put_events(Entries=[entry])["FailedEntryCount"] == 0


def test_an_undeliverable_rule_target_sends_the_event_to_its_dead_letter_queue(runtime: Api) -> None:
    # Given a rule whose Lambda target does not exist, with a retry policy and a dead-letter queue
    events, bus = runtime.aws("events"), runtime.resource("FoundationDomainEventBus")
    url, dlq_arn = _queue(runtime, f"e2e-dlq-{uuid.uuid4().hex[:8]}")
    rule, kind = f"e2e-{uuid.uuid4().hex[:12]}", f"Gone{uuid.uuid4().hex[:6]}"
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"detail-type": [kind]}))
    missing = "arn:aws:lambda:eu-west-1:123456789012:function:no-such-function"
    target = {
        "Id": "gone",
        "Arn": missing,
        "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 600},
        "DeadLetterConfig": {"Arn": dlq_arn},
    }
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[target])
    # When a matching event is published
    _put_probe_event(runtime, bus, kind)
    # Then it lands in the dead-letter queue with EventBridge's error attributes, without retries
    sqs = runtime.aws("sqs")
    got = wait_for(
        lambda: sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1).get("Messages"),
        timeout=20,
    )
    assert got, "nothing reached the dead-letter queue"
    attributes = {k: v["StringValue"] for k, v in got[0]["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "RESOURCE_NOT_FOUND" and attributes["TARGET_ARN"] == missing
    assert attributes["RULE_ARN"].endswith(rule) and attributes["RETRY_ATTEMPTS"] == "0"
    assert attributes["ERROR_MESSAGE"]
    assert json.loads(got[0]["Body"])["detail-type"] == kind


def test_a_function_failing_on_a_rule_event_is_retried_then_dead_lettered(runtime: Api) -> None:
    # Given a rule targeting the refusal auditor (which fails on any event but a CloudWatch Logs one); its
    # EventInvokeConfig allows 2 retries and its DeadLetterConfig names a queue of the stack
    events, bus = runtime.aws("events"), runtime.resource("FoundationDomainEventBus")
    auditor = _function_arn(runtime, "AuditGatewayRefusalAuditor")
    dlq_url = runtime.resource("AuditGatewayRefusalAuditorDeadLetters")
    rule, kind = f"e2e-{uuid.uuid4().hex[:12]}", f"Bad{uuid.uuid4().hex[:6]}"
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"detail-type": [kind]}))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "auditor", "Arn": auditor}])

    def invocations() -> int:
        stats = runtime.call("GET", "/_local/status")[1]["functions"]
        return int(next(v for k, v in stats.items() if k.startswith("AuditGatewayRefusalAuditor"))["invocations"])

    before = invocations()
    # When a matching event is published
    _put_probe_event(runtime, bus, kind)
    # Then Lambda's async invocation ran it 3 times and put the event in the function's dead-letter queue
    sqs = runtime.aws("sqs")

    def dead_letter() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=1)
        return [m for m in messages.get("Messages", []) if json.loads(m["Body"]).get("detail-type") == kind]

    got = wait_for(dead_letter, timeout=30)
    assert got, "the failed event did not reach the function's dead-letter queue"
    assert invocations() >= before + 3  # (the access-log subscription may run it too meanwhile)
    assert got[0]["MessageAttributes"]["ErrorMessage"]["StringValue"]
