"""Helpers every tier shares: the sample events of `events/`, a Lambda context, and a CloudWatch Logs
subscription event. Fakes of the ports live in `tests/fakes.py`."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
ACCOUNT = "123456789012"
REGION = "eu-west-1"


def sample_event(name: str) -> dict[str, Any]:
    """A sample event from `events/`, as the tests and the docs share them."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def make_lambda_context(name: str = "test-function", *, memory_mb: int = 512) -> LambdaContext:
    """The Lambda context as far as Powertools reads it (logger, metrics)."""
    context = LambdaContext()
    context._function_name = name
    context._function_version = "$LATEST"
    context._memory_limit_in_mb = memory_mb
    context._invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    context._aws_request_id = "00000000-0000-4000-8000-000000000001"
    context._log_group_name = f"/aws/lambda/{name}"
    context._log_stream_name = "2025/01/01/[$LATEST]0123456789abcdef"
    return context


@pytest.fixture
def lambda_context() -> LambdaContext:
    return make_lambda_context()


def cloudwatch_logs_event(messages: list[str], *, log_group: str = "/aws/apigateway/it-access") -> dict[str, Any]:
    """A CloudWatch Logs subscription event: base64 of the gzipped DATA_MESSAGE holding `messages`."""
    payload = {
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": log_group,
        "logStream": "it-stream",
        "subscriptionFilters": ["GatewayRefusals"],
        "logEvents": [
            {"id": f"{index:056d}", "timestamp": 1735689600000 + index, "message": message}
            for index, message in enumerate(messages)
        ],
    }
    data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
    return {"awslogs": {"data": data}}
