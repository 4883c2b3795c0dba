"""The sample events in events/ stay in the formats AWS sends and that the code reads."""

from __future__ import annotations

import ast
import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import (
    APIGatewayProxyEvent,
    CloudWatchLogsEvent,
    EventBridgeEvent,
)

from tests.conftest import sample_event

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
# Every sample in events/, found on disk: a new file is checked without an edit here.
SAMPLES = sorted(p.name for p in EVENTS.glob("*.json"))
# Provider bodies that are JSON arrays as the provider posts them (SendGrid's Event Webhook posts a batch).
ARRAY_BODIES = {"sendgrid_events.json"}


def module_constant(path: Path, name: str) -> Any:
    """A literal constant of a module, read without importing it (the infra modules pull in CDK and jsii)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{name} not found in {path}")


def test_the_samples_are_found() -> None:
    assert len(SAMPLES) >= 6


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_is_a_json_object_documented_in_the_readme(name: str) -> None:
    assert isinstance(sample_event(name), list if name in ARRAY_BODIES else dict)
    assert f"`{name}`" in (EVENTS / "README.md").read_text(), f"events/README.md does not describe {name}"


@pytest.mark.parametrize("name", [n for n in SAMPLES if n.startswith("apigw_")])
def test_every_api_sample_parses_as_a_rest_proxy_event(name: str) -> None:
    event = APIGatewayProxyEvent(sample_event(name))

    assert event.http_method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    assert event.path.startswith("/v1/")
    assert event.request_context.request_id


@pytest.mark.parametrize(
    ("name", "method", "path"), [("apigw_get_health.json", "GET", "/v1/health"), ("apigw_get_me.json", "GET", "/v1/me")]
)
def test_api_samples_are_rest_proxy_events(name: str, method: str, path: str) -> None:
    raw = sample_event(name)
    event = APIGatewayProxyEvent(raw)

    assert (event.http_method, event.path, event.resource) == (method, path, path)
    assert event.request_context.resource_path == path
    assert event.request_context.path == f"/prod{path}"
    assert event.request_context.stage == "prod"
    assert event.request_context.request_id
    assert event.request_context.identity.source_ip
    assert raw["body"] is None and raw["isBase64Encoded"] is False
    assert {k: v[-1] for k, v in raw["multiValueHeaders"].items()} == raw["headers"]


def test_the_health_sample_has_no_authorizer() -> None:
    assert "authorizer" not in sample_event("apigw_get_health.json")["requestContext"]
    assert "Authorization" not in sample_event("apigw_get_health.json")["headers"]


def test_the_me_sample_carries_cognito_claims_as_strings() -> None:
    claims = sample_event("apigw_get_me.json")["requestContext"]["authorizer"]["claims"]

    assert all(isinstance(v, str) for v in claims.values())
    assert claims["custom:tenant"] == "acme"
    assert claims["cognito:groups"] == "recruiter,auditor"
    assert claims["token_use"] == "id"
    assert claims["iss"].startswith("https://cognito-idp.")


def test_the_probe_sample_is_what_the_state_machine_passes() -> None:
    event = sample_event("stepfunctions_health_probe.json")

    assert list(event) == ["execution"]
    assert event["execution"].startswith("arn:aws:states:")
    assert ":execution:" in event["execution"]


def test_the_schedule_sample_is_an_eventbridge_scheduled_event() -> None:
    event = EventBridgeEvent(sample_event("eventbridge_scheduled_health.json"))

    assert (event.source, event.detail_type, event.detail) == ("aws.events", "Scheduled Event", {})
    assert event.resources[0].startswith("arn:aws:events:")
    assert ":rule/" in event.resources[0]


def test_the_cloudwatch_sample_encodes_its_decoded_twin() -> None:
    encoded = sample_event("cloudwatch_logs_api_access_refusals.json")
    decoded = sample_event("cloudwatch_logs_api_access_refusals.decoded.json")

    assert list(encoded) == ["awslogs"]
    assert json.loads(gzip.decompress(base64.b64decode(encoded["awslogs"]["data"]))) == decoded


def test_the_cloudwatch_sample_parses_as_a_subscription_event() -> None:
    data = CloudWatchLogsEvent(sample_event("cloudwatch_logs_api_access_refusals.json")).parse_logs_data()

    assert data.message_type == "DATA_MESSAGE"
    assert data.owner == "123456789012"
    assert len(data.subscription_filters) == 1
    statuses = [json.loads(e.message)["status"] for e in data.log_events]
    assert statuses == ["401", "403", "200"]
    assert len({e.get_id for e in data.log_events}) == 3


def test_access_log_lines_have_exactly_the_stage_format_fields() -> None:
    fields = module_constant(ROOT / "infra" / "constructs" / "api.py", "ACCESS_LOG_FIELDS")
    decoded = sample_event("cloudwatch_logs_api_access_refusals.decoded.json")

    for log_event in decoded["logEvents"]:
        line = json.loads(log_event["message"])
        assert list(line) == list(fields)
        assert all(isinstance(v, str) for v in line.values())
