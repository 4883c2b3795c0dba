"""The local gateway as API Gateway's Cognito authorizer behaves: which token kind each route accepts, a bare
`Unauthorized` for every refusal, the access log's caller fields, and requests whose Content-Length is a lie.

Served on 127.0.0.1 only (the unit tier's socket guard is opened to the loopback address for this module)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, cast

import pytest
from pytest_socket import enable_socket, socket_allow_hosts

from infra.local.functions import FunctionHost
from infra.local.gateway import AccessLog, Gateway
from infra.local.template import RouteDef
from infra.local.tokens import LocalUserPool

SCOPES = ("ats/identity.read", "ats/retention.write", "ats/messages.write")
ROUTES = [
    RouteDef("GET", "/v1/me", "Me", authenticated=True),
    RouteDef("PUT", "/v1/retention/{policy}", "Retention", authenticated=True, scopes=("ats/retention.write",)),
    RouteDef("POST", "/v1/echo", "Echo", authenticated=False),
]


class FakeFunctions:
    """Answers every invocation with the claims the function was handed."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        claims = (event["requestContext"].get("authorizer") or {}).get("claims")
        return {"statusCode": 200, "body": json.dumps({"function": logical_id, "claims": claims})}


class FakeAccessLog:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def write(self, line: dict[str, Any]) -> None:
        self.lines.append(dict(line))


@pytest.fixture
def _loopback(_no_network: None) -> Iterator[None]:
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    yield


@pytest.fixture(scope="module")
def pool() -> LocalUserPool:
    return LocalUserPool(region="eu-west-1", resource_server_scopes=SCOPES)


@pytest.fixture
def served(_loopback: None, pool: LocalUserPool) -> Iterator[tuple[str, FakeFunctions, FakeAccessLog]]:
    functions, log = FakeFunctions(), FakeAccessLog()
    gateway = Gateway(ROUTES, cast(FunctionHost, functions), pool, cast(AccessLog, log), lambda: {}, {})
    port = gateway.start(0)
    try:
        yield f"http://127.0.0.1:{port}", functions, log
    finally:
        gateway.stop()


def call(base: str, method: str, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    request = urllib.request.Request(base + path, method=method, headers=headers, data=b"" if method != "GET" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_route_without_scopes_accepts_a_person_and_a_machine(served: Any, pool: LocalUserPool) -> None:
    base, functions, log = served
    status, body = call(base, "GET", "/v1/me", pool.issue("acme", ["recruiter"]))
    assert status == 200 and body["claims"]["token_use"] == "id"
    status, body = call(base, "GET", "/v1/me", pool.issue_access("globex"))
    assert status == 200 and body["claims"]["token_use"] == "access"
    assert body["claims"]["custom:tenant"] == "globex" and body["claims"]["scope"] == " ".join(SCOPES)
    # And the access log names the caller of both kinds
    assert [(line["sub"], line["tenant"]) for line in log.lines] == [
        (functions.events[0]["requestContext"]["authorizer"]["claims"]["sub"], "acme"),
        (pool.integration_client("globex"), "globex"),
    ]


def test_a_scope_only_route_refuses_an_id_token_and_an_access_token_without_its_scope(
    served: Any, pool: LocalUserPool
) -> None:
    base, functions, _ = served
    refused = [
        pool.issue("acme", ["compliance_officer", "hr_admin"]),  # a person, whatever the roles
        pool.issue_access("acme", ["identity.read", "messages.write"]),  # a machine without the scope
        pool.issue_access("acme", []),
    ]
    for token in refused:
        assert call(base, "PUT", "/v1/retention/p1", token)[0] == 401
    assert functions.events == []  # refused before the function
    status, body = call(base, "PUT", "/v1/retention/p1", pool.issue_access("acme", ["retention.write"]))
    assert status == 200 and body["function"] == "Retention"


def test_every_token_failure_answers_a_bare_unauthorized(served: Any, pool: LocalUserPool) -> None:
    base, functions, log = served
    other_pool = LocalUserPool(region="eu-west-1", pool_id=pool.pool_id, client_id=pool.client_id)
    good = pool.issue("acme", ["recruiter"])
    head, payload, signature = good.split(".")
    failures = {
        "none": None,
        "garbage": "not-a-jwt",
        "expired": pool.issue("acme", ["recruiter"], lifetime=-60),
        "tampered": ".".join([head, payload, ("A" if signature[0] != "A" else "B") + signature[1:]]),
        "unknown kid": other_pool.issue("acme", ["recruiter"]),
        "refresh token": pool._sign({**json.loads(_b64(payload)), "token_use": "refresh"}),
    }
    for case, token in failures.items():
        status, body = call(base, "GET", "/v1/me", token)
        assert status == 401, case
        assert body["error"]["code"] == "unauthenticated", case
        assert body["error"]["message"] == "Unauthorized", case
    assert functions.events == []
    assert {line["errorMessage"] for line in log.lines} == {"Unauthorized"}


def _b64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _raw(base: str, request: bytes, timeout: float = 5.0) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(request)
        chunks = []
        while True:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize("length", ["-1", "-99999", "abc", "1.5", "+3", " "])
def test_a_bad_content_length_answers_400_at_once_and_closes(served: Any, length: str) -> None:
    base, functions, _ = served
    started = time.monotonic()
    answer = _raw(base, f"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{{}}".encode())
    # The server answered and closed the connection itself (recv saw EOF), well before the client's timeout
    assert time.monotonic() - started < 3
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
    assert b'"bad_request"' in answer
    assert functions.events == []


def test_the_thread_is_free_after_a_negative_content_length(served: Any, pool: LocalUserPool) -> None:
    base, *_ = served
    for _ in range(3):
        _raw(base, b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
    assert call(base, "GET", "/v1/me", pool.issue("acme", ["auditor"]))[0] == 200
