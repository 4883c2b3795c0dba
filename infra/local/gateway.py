"""The local API gateway on 127.0.0.1: turns HTTP requests into API Gateway REST proxy events for the routes
the template defines, verifies tokens as the Cognito authorizer would, writes the access log that the deployed
stage writes (which feeds the refusal auditor), and serves the OpenAPI document, Swagger UI and the local-only
controls under /_local/."""

from __future__ import annotations

import base64
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra.constants import API_STAGE_NAME
from infra.local.functions import FunctionFailed, FunctionHost
from infra.local.template import RouteDef
from infra.local.tokens import InvalidToken, LocalUserPool, authorizer_claims, scopes_of
from shared.auth import TENANT_CLAIM

_SWAGGER_DIR = (
    Path(str(__import__("aws_lambda_powertools").__file__)).parent / "event_handler" / "openapi" / "swagger_ui"
)
_API_ID = "local"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's REST payload limit
UNAUTHORIZED = "Unauthorized"  # all a caller learns of a refused token, as from Cognito's authorizer


@dataclass(frozen=True)
class _CompiledRoute:
    route: RouteDef
    pattern: re.Pattern[str]
    resource: str


def _compile(route: RouteDef) -> _CompiledRoute:
    regex = ""
    for part in route.path.strip("/").split("/"):
        if part.startswith("{") and part.endswith("+}"):
            regex += f"/(?P<{part[1:-2]}>.+)"
        elif part.startswith("{") and part.endswith("}"):
            regex += f"/(?P<{part[1:-1]}>[^/]+)"
        else:
            regex += "/" + re.escape(part)
    return _CompiledRoute(route, re.compile(f"^{regex or '/'}$"), route.path)


def _error(code: str, message: str, request_id: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


class AccessLog:
    """Batches access-log lines into the stage's log group in the emulator, off the request path."""

    def __init__(self, put: Callable[[list[str]], None]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._put = put
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def write(self, line: dict[str, Any]) -> None:
        self._queue.put(json.dumps(line))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            time.sleep(0.2)
            while not self._queue.empty() and len(batch) < 100:
                item = self._queue.get()
                if item is None:
                    self._flush(batch)
                    return
                batch.append(item)
            self._flush(batch)

    def _flush(self, batch: list[str]) -> None:
        try:
            self._put(batch)
        except Exception as exc:  # the access log must never break serving
            print(f"[local] access log write failed: {exc}")

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)


class Gateway:
    def __init__(
        self,
        routes: list[RouteDef],
        functions: FunctionHost,
        pool: LocalUserPool,
        access_log: AccessLog | None,
        openapi: Callable[[], dict[str, Any]],
        controls: dict[tuple[str, str], Callable[[dict[str, Any]], tuple[int, Any]]],
    ) -> None:
        self._routes = [_compile(r) for r in routes]
        self._functions = functions
        self._pool = pool
        self._access_log = access_log
        self._openapi = openapi
        self._controls = controls
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- serving ---------------------------------------------------------------------------------------
    def start(self, port: int) -> int:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                gateway.handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True)
        self._thread.start()
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- one request -----------------------------------------------------------------------------------
    def handle(self, req: BaseHTTPRequestHandler) -> None:
        split = urlsplit(req.path)
        header = req.headers.get("Content-Length")
        raw_length = "0" if header is None else header.strip()
        if not raw_length.isdigit():  # negative, signed, fractional or not a number: never read on a guess
            req.close_connection = True
            message = "Content-Length must be a non-negative integer"
            return _send_json(req, 400, _error("bad_request", message, "-"), close=True)
        length = int(raw_length)
        if req.headers.get("Transfer-Encoding"):  # a chunked body would be read as the next request: refuse it
            req.close_connection = True
            message = "send the body with a Content-Length (chunked transfer is not served locally)"
            return _send_json(req, 411, _error("length_required", message, "-"), close=True)
        if length > MAX_PAYLOAD_BYTES:
            req.close_connection = True
            message = f"the payload exceeds API Gateway's {MAX_PAYLOAD_BYTES} bytes"
            return _send_json(req, 413, _error("payload_too_large", message, "-"), close=True)
        body = req.rfile.read(length) if length else b""
        method = req.command
        path = split.path or "/"
        if path == "/openapi.json" and method == "GET":
            return _send(req, 200, {"Content-Type": "application/json"}, json.dumps(self._openapi()).encode())
        if path in ("/docs", "/docs/") and method == "GET":
            html = _swagger_html(json.dumps(self._openapi()))
            return _send(req, 200, {"Content-Type": "text/html; charset=utf-8"}, html.encode())
        if path.startswith("/docs/") and method == "GET":
            return self._static(req, path.removeprefix("/docs/"))
        if path.startswith("/_local/"):
            return self._control(req, method, path, body)
        return self._proxy(req, method, path, split.query, body)

    def _static(self, req: BaseHTTPRequestHandler, name: str) -> None:
        files = {
            "swagger-ui.js": ("swagger-ui-bundle.min.js", "text/javascript"),
            "swagger-ui.css": ("swagger-ui.min.css", "text/css"),
        }
        if name not in files:
            return _send(
                req,
                404,
                {"Content-Type": "application/json"},
                b'{"error":{"code":"not_found","message":"no such asset"}}',
            )
        file, content_type = files[name]
        return _send(req, 200, {"Content-Type": content_type}, (_SWAGGER_DIR / file).read_bytes())

    def _control(self, req: BaseHTTPRequestHandler, method: str, path: str, body: bytes) -> None:
        parts = path.removeprefix("/_local/").strip("/").split("/")
        handler = next(
            (
                fn
                for (m, pattern), fn in self._controls.items()
                if m == method
                and len(pattern.split("/")) == len(parts)
                and all(a in ("*", b) for a, b in zip(pattern.split("/"), parts, strict=True))
            ),
            None,
        )
        if handler is None:
            return _send_json(req, 404, _error("not_found", f"no local control {method} {path}", "-"))
        try:
            payload = json.loads(body or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as exc:
            return _send_json(req, 400, _error("bad_request", f"invalid JSON body: {exc}", "-"))
        payload["_path"] = parts
        status, result = handler(payload)
        return _send_json(req, status, result)

    def authorize(self, route: RouteDef, header: str | None) -> dict[str, Any]:
        """The verified claims for `route`, as the Cognito authorizer decides: a valid ID or access token on a
        route without scopes; only an access token carrying one of the route's scopes on a scope-only route.
        InvalidToken (with the reason, never shown to the caller) otherwise."""
        token = (header or "").strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not token:
            raise InvalidToken("no token")
        claims = self._pool.verify(token)
        if route.scopes:
            if claims.get("token_use") != "access":
                raise InvalidToken(f"{route.method} {route.path} accepts access tokens only (scopes {route.scopes})")
            if not scopes_of(claims) & set(route.scopes):
                raise InvalidToken(f"the token carries none of the scopes {route.scopes}")
        return claims

    def _match(self, method: str, path: str) -> tuple[_CompiledRoute | None, dict[str, str]]:
        for compiled in self._routes:
            found = compiled.pattern.match(path)
            if found and compiled.route.method == method:
                return compiled, found.groupdict()
        return None, {}

    def _proxy(self, req: BaseHTTPRequestHandler, method: str, path: str, query: str, body: bytes) -> None:
        request_id = str(uuid.uuid4())
        started = datetime.now(UTC)
        source_ip = req.client_address[0]
        compiled, params = self._match(method, path)
        log = {
            "requestId": request_id,
            "ip": source_ip,
            "requestTime": started.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "httpMethod": method,
            "resourcePath": compiled.resource if compiled else "-",
            "path": f"/{API_STAGE_NAME}{path}",
            "protocol": req.request_version,
            "integrationStatus": "-",
            "errorMessage": "-",
            "sub": "-",
            "tenant": "-",
        }

        def finish(status: int, headers: dict[str, str], payload: bytes) -> None:
            log.update(status=str(status), responseLength=str(len(payload)))
            if self._access_log is not None:
                self._access_log.write(log)
            _send(req, status, {"x-amzn-RequestId": request_id, **headers}, payload)

        def refuse(status: int, code: str, message: str) -> None:
            log["errorMessage"] = message
            payload = json.dumps(_error(code, message, request_id)).encode()
            finish(status, {"Content-Type": "application/json"}, payload)

        if compiled is None:
            return refuse(404, "not_found", f"no route for {method} {path}")
        claims: dict[str, Any] | None = None
        if compiled.route.authenticated:
            try:
                claims = self.authorize(compiled.route, req.headers.get("Authorization"))
            except InvalidToken as exc:
                print(f"[local] 401 {method} {path}: {exc}")  # the reason stays on this console
                return refuse(401, "unauthenticated", UNAUTHORIZED)
            log.update(sub=str(claims.get("sub", "-")), tenant=str(claims.get(TENANT_CLAIM, "-")))
        event = _proxy_event(req, method, path, query, body, compiled, params, claims, request_id, source_ip, started)
        try:
            result = self._functions.invoke(compiled.route.function, event)
            log["integrationStatus"] = "200"
        except FunctionFailed as failed:
            log["integrationStatus"] = "200"
            print(f"[local] {compiled.route.function} failed: {failed}")
            return refuse(502, "internal_error", "Internal server error")
        if not isinstance(result, dict) or "statusCode" not in result:
            return refuse(502, "internal_error", "Malformed Lambda proxy response")
        headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(str(v) for v in values)
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        return finish(int(result["statusCode"]), headers, payload)


def _proxy_event(
    req: BaseHTTPRequestHandler,
    method: str,
    path: str,
    query: str,
    body: bytes,
    compiled: _CompiledRoute,
    params: dict[str, str],
    claims: dict[str, Any] | None,
    request_id: str,
    source_ip: str,
    started: datetime,
) -> dict[str, Any]:
    """An API Gateway REST (v1) Lambda proxy event, as the deployed stage would send it."""
    multi_headers: dict[str, list[str]] = {}
    for name, value in req.headers.items():
        multi_headers.setdefault(name, []).append(value)
    # API Gateway adds these to every proxied request; a webhook signed over the URL the caller used (Twilio)
    # rebuilds it from them. Here the scheme is plain http on the loopback.
    present = {name.lower() for name in multi_headers}
    forwarded = {"X-Forwarded-Proto": "http", "X-Forwarded-For": source_ip}
    for name, value in forwarded.items():
        if name.lower() not in present:
            multi_headers[name] = [value]
    multi_query = parse_qs(query, keep_blank_values=True) if query else {}
    is_text = True
    try:
        text = body.decode()
    except UnicodeDecodeError:
        is_text = False
    context: dict[str, Any] = {
        "resourceId": _API_ID,
        "resourcePath": compiled.resource,
        "httpMethod": method,
        "extendedRequestId": request_id,
        "requestTime": started.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "path": f"/{API_STAGE_NAME}{path}",
        "accountId": "123456789012",
        "protocol": req.request_version,
        "stage": API_STAGE_NAME,
        "domainPrefix": "localhost",
        "requestTimeEpoch": int(started.timestamp() * 1000),
        "requestId": request_id,
        "identity": {"sourceIp": source_ip, "userAgent": req.headers.get("User-Agent")},
        "domainName": req.headers.get("Host", "127.0.0.1"),
        "apiId": _API_ID,
    }
    if claims is not None:
        context["authorizer"] = {"claims": authorizer_claims(claims)}
    return {
        "resource": compiled.resource,
        "path": path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": context,
        "body": (text if is_text else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


def _send(
    req: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes, close: bool = False
) -> None:
    req.send_response(status)
    for name, value in headers.items():
        if name.lower() not in ("content-length", "connection", "transfer-encoding"):
            req.send_header(name, value)
    if close:
        req.send_header("Connection", "close")
    req.send_header("Content-Length", str(len(payload)))
    req.end_headers()
    if req.command != "HEAD":
        req.wfile.write(payload)


def _send_json(req: BaseHTTPRequestHandler, status: int, payload: Any, close: bool = False) -> None:
    _send(req, status, {"Content-Type": "application/json"}, json.dumps(payload, default=str).encode(), close)


def _swagger_html(spec: str) -> str:
    """Powertools' Swagger UI page with its own bundled assets (served under /docs/, never from a CDN)."""
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    return generate_swagger_html(
        spec=spec,
        swagger_js="/docs/swagger-ui.js",
        swagger_css="/docs/swagger-ui.css",
        swagger_base_url="/docs",
        oauth2_config=None,
        persist_authorization=True,
    )
