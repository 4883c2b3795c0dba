"""shared.http: one resolver, one error-to-HTTP mapping and one error body for every API function."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from pydantic import BaseModel, Field

from shared.auth import Role
from shared.errors import Conflict, Forbidden
from shared.http import ErrorBody, ErrorDetail, build_resolver, error_responses, ok_response, request_context
from shared.models import Model
from shared.observability import logger
from tests.conftest import make_lambda_context, sample_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
HEALTH_REQUEST_ID = "5f0c1e7a-3b2d-4c8e-9a61-2d7b4e9f0a13"
ME_REQUEST_ID = "9d4b2a61-7e3f-4c05-b8a9-1f6e0d2c3b47"


class ThingIn(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    count: int = Field(ge=0)


class CandidateIn(Model):
    """A request model on the project's base: its validation errors must not repeat what they rejected."""

    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
    phone: int


SECRET_EMAIL = "jane.secret-candidate@example"  # invalid (no top-level domain), so it is rejected
SECRET_PHONE = "call-me-on-0044-7700-900123"


def api_event(method: str, path: str, body: Any = None, *, sample: str = "apigw_get_health.json") -> dict[str, Any]:
    """The sample API Gateway event, re-aimed at `method path`."""
    event = copy.deepcopy(sample_event(sample))
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = path
    event["requestContext"]["path"] = f"/prod{path}"
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
        event["headers"]["Content-Type"] = "application/json"
    return event


@pytest.fixture(scope="module")
def app() -> APIGatewayRestResolver:
    app = build_resolver()

    @app.get("/v1/forbidden")
    def forbidden() -> dict[str, str]:
        raise Forbidden("not for you")

    @app.post("/v1/candidates")
    def create_candidate(body: CandidateIn) -> dict[str, Any]:
        return body.model_dump()

    @app.post("/v1/imports")
    def import_candidate() -> dict[str, Any]:
        # A use case validating data itself: a ValidationError it does not expect is a 500, logged with its trace.
        return CandidateIn.model_validate(app.current_event.json_body).model_dump()

    @app.get("/v1/conflict")
    def conflict() -> dict[str, str]:
        raise Conflict("already there", details=[{"field": "name", "value": "laptop"}])

    @app.get("/v1/bug")
    def bug() -> dict[str, str]:
        raise RuntimeError("secret connection string")

    @app.post("/v1/things")
    def create_thing(body: ThingIn) -> dict[str, Any]:
        return {"name": body.name, "count": body.count}

    @app.get("/v1/whoami")
    def whoami() -> dict[str, Any]:
        ctx = request_context(app)
        return {
            "tenant": ctx.actor.tenant,
            "kind": ctx.actor.kind,
            "roles": sorted(ctx.actor.roles),
            "request_id": ctx.request_id,
            "source_ip": ctx.source_ip,
        }

    return app


def resolve(app: APIGatewayRestResolver, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = app.resolve(event, make_lambda_context())
    return response["statusCode"], json.loads(response["body"])


def test_error_details_travel_inside_the_error_body(app: APIGatewayRestResolver) -> None:
    status, body = resolve(app, api_event("GET", "/v1/conflict"))

    assert status == 409
    assert body == {
        "error": {
            "code": "conflict",
            "message": "already there",
            "request_id": HEALTH_REQUEST_ID,
            "details": [{"field": "name", "value": "laptop"}],
        }
    }


def test_an_unexpected_exception_is_a_500_that_does_not_leak_its_message(app: APIGatewayRestResolver) -> None:
    status, body = resolve(app, api_event("GET", "/v1/bug"))

    assert status == 500
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["request_id"] == HEALTH_REQUEST_ID
    assert "secret" not in json.dumps(body)


def test_error_responses_are_json(app: APIGatewayRestResolver) -> None:
    response = app.resolve(api_event("GET", "/v1/forbidden"), make_lambda_context())

    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]


def test_a_valid_body_reaches_the_route(app: APIGatewayRestResolver) -> None:
    status, body = resolve(app, api_event("POST", "/v1/things", {"name": "laptop", "count": 2}))

    assert (status, body) == (200, {"name": "laptop", "count": 2})


@pytest.mark.parametrize(
    ("payload", "field", "problem_type"),
    [
        ({"name": "", "count": 1}, "name", "string_too_short"),
        ({"name": "laptop", "count": -1}, "count", "greater_than_equal"),
        ({"name": "laptop", "count": "many"}, "count", "int_parsing"),
        ({"count": 1}, "name", "missing"),
    ],
)
def test_an_invalid_body_is_a_422_naming_the_field(
    app: APIGatewayRestResolver, payload: dict[str, Any], field: str, problem_type: str
) -> None:
    status, body = resolve(app, api_event("POST", "/v1/things", payload))

    assert status == 422
    assert body["error"]["code"] == "validation_failed"
    assert body["error"]["request_id"] == HEALTH_REQUEST_ID
    assert f"body.{field}:" in body["error"]["message"]
    assert [(p["loc"], p["type"]) for p in body["detail"]] == [(["body", field], problem_type)]
    assert all(p["msg"] for p in body["detail"])


def test_every_invalid_field_is_reported(app: APIGatewayRestResolver) -> None:
    status, body = resolve(app, api_event("POST", "/v1/things", {"name": "", "count": "x"}))

    assert status == 422
    assert {tuple(p["loc"]) for p in body["detail"]} == {("body", "name"), ("body", "count")}
    assert "body.name" in body["error"]["message"]
    assert "body.count" in body["error"]["message"]


def test_a_body_that_is_not_json_is_a_422(app: APIGatewayRestResolver) -> None:
    status, body = resolve(app, api_event("POST", "/v1/things", "not json"))

    assert status == 422
    assert body["error"]["code"] == "validation_failed"
    assert body["detail"][0]["type"] == "json_invalid"


def test_an_unknown_route_is_a_404_error_body(app: APIGatewayRestResolver) -> None:
    status, body = resolve(app, api_event("GET", "/v1/nowhere"))

    assert status == 404
    assert body == {
        "error": {
            "code": "not_found",
            "message": "no route for /v1/nowhere",
            "request_id": HEALTH_REQUEST_ID,
            "details": [],
        }
    }


def test_request_context_reads_the_verified_actor(app: APIGatewayRestResolver) -> None:
    status, body = resolve(app, api_event("GET", "/v1/whoami", sample="apigw_get_me.json"))

    assert status == 200
    assert body == {
        "tenant": "acme",
        "kind": "user",
        "roles": [Role.AUDITOR.value, Role.RECRUITER.value],
        "request_id": ME_REQUEST_ID,
        "source_ip": "198.51.100.7",
    }


def test_request_context_without_claims_is_a_401(app: APIGatewayRestResolver) -> None:
    status, body = resolve(app, api_event("GET", "/v1/whoami"))

    assert status == 401
    assert body["error"]["code"] == "unauthenticated"
    assert body["error"]["request_id"] == HEALTH_REQUEST_ID


def test_error_responses_document_the_error_body() -> None:
    responses = error_responses(401, 403, 503)

    assert set(responses) == {401, 403, 503}
    for entry in responses.values():
        assert entry["content"]["application/json"]["model"] is ErrorBody  # type: ignore[typeddict-item]
    assert responses[403]["description"] == "The caller's roles or scopes do not allow this"


def test_ok_response_documents_the_model() -> None:
    assert ok_response(ErrorDetail, "A thing") == {
        200: {"description": "A thing", "content": {"application/json": {"model": ErrorDetail}}}
    }


def test_routes_that_take_input_document_their_422_and_others_do_not(app: APIGatewayRestResolver) -> None:
    paths = app.get_openapi_schema().paths or {}

    things = paths["/v1/things"].post
    whoami = paths["/v1/whoami"].get
    assert things is not None and whoami is not None
    assert 422 in (things.responses or {})
    assert 422 not in (whoami.responses or {})


_COLD_ROUTE = """
import json, sys
from shared.http import build_resolver
app = build_resolver()

@app.get("/v1/plain")
def plain() -> dict:
    return {"ok": True}

event = json.load(open(sys.argv[1]))
event["path"] = event["resource"] = "/v1/plain"
class Context:
    function_name = "t"; memory_limit_in_mb = 128; aws_request_id = "r"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:t"
response = app.resolve(event, Context())
loaded = "aws_lambda_powertools.event_handler.middlewares.openapi_validation" in sys.modules
print(json.dumps([response["statusCode"], json.loads(response["body"]), loaded]))
"""


def test_a_route_without_input_is_served_without_loading_powertools_validation() -> None:
    # A fresh interpreter, as a cold start: the validation machinery (~50 ms) is never imported for it.
    result = subprocess.run(
        [sys.executable, "-c", _COLD_ROUTE, str(EVENTS / "apigw_get_health.json")],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_SERVICE_NAME": "unit"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert json.loads(result.stdout.strip().splitlines()[-1]) == [200, {"ok": True}, False]


# ---- no request body in the logs -----------------------------------------------------------------------


@pytest.fixture
def log_output(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Everything the project's Powertools logger writes during the test, as it would reach CloudWatch."""
    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    return stream


@pytest.mark.parametrize(
    ("path", "status"),
    [("/v1/candidates", 422), ("/v1/imports", 500)],
    ids=["request-validation", "use-case-validation"],
)
def test_no_log_line_of_a_rejected_request_holds_its_body(
    app: APIGatewayRestResolver, log_output: io.StringIO, path: str, status: int
) -> None:
    answered, body = resolve(app, api_event("POST", path, {"email": SECRET_EMAIL, "phone": SECRET_PHONE}))

    assert answered == status
    lines = log_output.getvalue().splitlines()
    assert lines, "the rejection was logged"
    for line in lines:
        assert SECRET_EMAIL not in line
        assert SECRET_PHONE not in line
    assert SECRET_EMAIL not in json.dumps(body)
    assert SECRET_PHONE not in json.dumps(body)


def test_a_validation_error_of_a_project_model_does_not_repeat_its_input() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as raised:
        CandidateIn.model_validate({"email": SECRET_EMAIL, "phone": SECRET_PHONE})

    assert SECRET_EMAIL not in str(raised.value)
    assert SECRET_PHONE not in str(raised.value)
    assert {e["loc"][0] for e in raised.value.errors()} == {"email", "phone"}
