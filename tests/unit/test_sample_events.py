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

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
SAMPLES = [
    "apigw_get_health.json",
    "apigw_get_me.json",
    "stepfunctions_health_probe.json",
    "cloudwatch_logs_api_access_refusals.json",
    "cloudwatch_logs_api_access_refusals.decoded.json",
    "eventbridge_scheduled_health.json",
]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def module_constant(path: Path, name: str) -> Any:
    """A literal constant of a module, read without importing it (the infra modules pull in CDK and jsii)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{name} not found in {path}")


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_is_json_and_listed_in_the_readme(name: str) -> None:
    assert isinstance(load(name), dict)
    assert f"`{name}`" in (EVENTS / "README.md").read_text()


@pytest.mark.parametrize(
    ("name", "method", "path"), [("apigw_get_health.json", "GET", "/v1/health"), ("apigw_get_me.json", "GET", "/v1/me")]
)
def test_api_samples_are_rest_proxy_events(name: str, method: str, path: str) -> None:
    raw = load(name)
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
    assert "authorizer" not in load("apigw_get_health.json")["requestContext"]
    assert "Authorization" not in load("apigw_get_health.json")["headers"]


def test_the_me_sample_carries_cognito_claims_as_strings() -> None:
    claims = load("apigw_get_me.json")["requestContext"]["authorizer"]["claims"]

    assert all(isinstance(v, str) for v in claims.values())
    assert claims["custom:tenant"] == "acme"
    assert claims["cognito:groups"] == "recruiter,auditor"
    assert claims["token_use"] == "id"
    assert claims["iss"].startswith("https://cognito-idp.")


def test_the_probe_sample_is_what_the_state_machine_passes() -> None:
    event = load("stepfunctions_health_probe.json")

    assert list(event) == ["execution"]
    assert event["execution"].startswith("arn:aws:states:")
    assert ":execution:" in event["execution"]


def test_the_schedule_sample_is_an_eventbridge_scheduled_event() -> None:
    event = EventBridgeEvent(load("eventbridge_scheduled_health.json"))

    assert (event.source, event.detail_type, event.detail) == ("aws.events", "Scheduled Event", {})
    assert event.resources[0].startswith("arn:aws:events:")
    assert ":rule/" in event.resources[0]


def test_the_cloudwatch_sample_encodes_its_decoded_twin() -> None:
    encoded = load("cloudwatch_logs_api_access_refusals.json")
    decoded = load("cloudwatch_logs_api_access_refusals.decoded.json")

    assert list(encoded) == ["awslogs"]
    assert json.loads(gzip.decompress(base64.b64decode(encoded["awslogs"]["data"]))) == decoded


def test_the_cloudwatch_sample_parses_as_a_subscription_event() -> None:
    data = CloudWatchLogsEvent(load("cloudwatch_logs_api_access_refusals.json")).parse_logs_data()

    assert data.message_type == "DATA_MESSAGE"
    assert data.owner == "123456789012"
    assert len(data.subscription_filters) == 1
    statuses = [json.loads(e.message)["status"] for e in data.log_events]
    assert statuses == ["401", "403", "200"]
    assert len({e.get_id for e in data.log_events}) == 3


def test_access_log_lines_have_exactly_the_stage_format_fields() -> None:
    fields = module_constant(ROOT / "infra" / "constructs" / "api.py", "ACCESS_LOG_FIELDS")
    decoded = load("cloudwatch_logs_api_access_refusals.decoded.json")

    for log_event in decoded["logEvents"]:
        line = json.loads(log_event["message"])
        assert list(line) == list(fields)
        assert all(isinstance(v, str) for v in line.values())


def test_only_the_refusals_match_the_subscription_filter() -> None:
    pattern = module_constant(ROOT / "infra" / "constructs" / "audit.py", "GATEWAY_REFUSALS")
    assert pattern == '{ ($.status = "401" || $.status = "403") && $.integrationStatus = "-" }'
    lines = [json.loads(e["message"]) for e in load("cloudwatch_logs_api_access_refusals.decoded.json")["logEvents"]]

    matching = [
        line["status"] for line in lines if line["status"] in ("401", "403") and line["integrationStatus"] == "-"
    ]

    assert matching == ["401", "403"]
