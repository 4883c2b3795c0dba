"""The handler modules, found in the source (never imported here), and a sample first event for each.

A handler module is `functions/<domain>/handlers/<name>.py` defining `lambda_handler` at module level. Its
sample event is, first found:
  1. `events/<name>.json` (the project's own samples);
  2. an API Gateway REST proxy event for the module's first route (`@app.get("/v1/...")`), from a caller whose
     verified claims carry every role, so authorization lets the call through to its use case;
  3. a minimal event of the trigger whose Powertools data class the module imports (CloudWatch Logs, SQS,
     EventBridge);
  4. `{}`.
"""

from __future__ import annotations

import ast
import base64
import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HTTP_METHODS = ("get", "post", "put", "patch", "delete")
_DATA_CLASSES = "aws_lambda_powertools.utilities.data_classes"


@dataclass(frozen=True)
class HandlerModule:
    name: str  # dotted, e.g. functions.platform.handlers.me
    path: Path
    event: dict[str, Any]
    event_source: str  # where the sample event came from, for the report


def discover(root: Path) -> list[HandlerModule]:
    """Every handler module under `root`, sorted by name, then the pattern handlers of `benchmarks/patterns/`."""
    found = []
    for path in [*sorted(root.glob("functions/*/handlers/*.py")), *sorted(root.glob("benchmarks/patterns/*.py"))]:
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if not _defines_lambda_handler(tree):
            continue
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        event, source = _sample_event(root, path, tree)
        found.append(HandlerModule(name=name, path=path, event=event, event_source=source))
    return found


def _defines_lambda_handler(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "lambda_handler":
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "lambda_handler" for t in node.targets
        ):
            return True
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "lambda_handler":
            return True
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == "lambda_handler" for a in node.names):
            return True
    return False


def _sample_event(root: Path, path: Path, tree: ast.Module) -> tuple[dict[str, Any], str]:
    named = _module_string(tree, "SAMPLE_EVENT")
    own = root / "events" / (named or f"{path.stem}.json")
    if own.is_file():
        return json.loads(own.read_text(encoding="utf-8")), f"events/{own.name}"
    route = _first_route(tree)
    if route is not None:
        method, rule = route
        return _api_event(method, rule), f"API {method} {rule}"
    for data_class in _imported_data_classes(tree):
        synthesise = _TRIGGERS.get(data_class)
        if synthesise is not None:
            return synthesise(), data_class
    return {}, "{}"


def _module_string(tree: ast.Module, name: str) -> str | None:
    """A module-level string constant, read without importing the module."""
    for node in tree.body:
        named = isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        if named and isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            return str(node.value.value)
    return None


def _first_route(tree: ast.Module) -> tuple[str, str] | None:
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
                continue
            rule = _string_argument(decorator, 0, "rule", tree)
            if rule is None:
                continue
            if decorator.func.attr in _HTTP_METHODS:
                return decorator.func.attr.upper(), rule
            if decorator.func.attr == "route":
                method = _string_argument(decorator, 1, "method", tree)
                return (method or "GET").upper(), rule
    return None


def _string_argument(call: ast.Call, position: int, keyword: str, tree: ast.Module) -> str | None:
    """A decorator's string argument, written literally or as a module-level constant (`_APPLICATION`)."""
    candidates = [call.args[position]] if len(call.args) > position else []
    candidates += [k.value for k in call.keywords if k.arg == keyword]
    for value in candidates:
        if isinstance(value, ast.List | ast.Tuple) and value.elts:
            value = value.elts[0]
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return value.value
        if isinstance(value, ast.Name):
            return _module_string(tree, value.id)
    return None


def _imported_data_classes(tree: ast.Module) -> list[str]:
    return [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(_DATA_CLASSES)
        for alias in node.names
    ]


def _api_event(method: str, rule: str) -> dict[str, Any]:
    """A REST proxy event as API Gateway hands it over after the Cognito authorizer verified the token."""
    from shared.auth import ROLES_CLAIM, TENANT_CLAIM, Role  # the claims the handlers read, named where they are

    path = re.sub(r"<(\w+)>", "bench-1", rule)
    resource = re.sub(r"<(\w+)>", r"{\1}", rule)
    parameters = dict.fromkeys(re.findall(r"<(\w+)>", rule), "bench-1") or None
    headers = {"Accept": "application/json", "Content-Type": "application/json", "Host": "bench.local"}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": parameters,
        "stageVariables": None,
        "body": "{}" if method in ("POST", "PUT", "PATCH") else None,
        "isBase64Encoded": False,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.local",
            "httpMethod": method,
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "requestId": "bench-request-1",
            "requestTimeEpoch": 1_700_000_000_000,
            "resourcePath": resource,
            "stage": "prod",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "cold-start-bench"},
            "authorizer": {
                "claims": {
                    "sub": "bench-user",
                    TENANT_CLAIM: "acme",
                    "cognito:username": "acme-bench",
                    ROLES_CLAIM: ",".join(role.value for role in Role),
                }
            },
        },
    }


def _cloudwatch_logs_event() -> dict[str, Any]:
    # One line of the API access log: a request the gateway refused before any function ran.
    line = {
        "requestId": "bench-request-1",
        "ip": "127.0.0.1",
        "httpMethod": "GET",
        "resourcePath": "/v1/me",
        "path": "/v1/me",
        "status": "401",
        "errorMessage": "Unauthorized",
        "integrationStatus": "-",
    }
    data = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/apigateway/access",
        "logStream": "bench",
        "subscriptionFilters": ["bench"],
        "logEvents": [{"id": "1", "timestamp": 1_700_000_000_000, "message": json.dumps(line)}],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()}}


def _sqs_event() -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": "bench-1",
                "receiptHandle": "bench",
                "body": "{}",
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:bench",
                "awsRegion": "eu-west-1",
            }
        ]
    }


def _eventbridge_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": "bench-1",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2024-01-01T00:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {},
    }


_TRIGGERS = {
    "CloudWatchLogsEvent": _cloudwatch_logs_event,
    "SQSEvent": _sqs_event,
    "EventBridgeEvent": _eventbridge_event,
}
