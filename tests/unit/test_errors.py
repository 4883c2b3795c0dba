"""What a caller sees for each expected error: the HTTP status and error body the shared resolver answers with."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from shared import errors
from shared.errors import AppError
from shared.http import build_resolver
from tests.conftest import make_lambda_context

EVENTS = Path(__file__).resolve().parents[2] / "events"
REQUEST_ID = "5f0c1e7a-3b2d-4c8e-9a61-2d7b4e9f0a13"  # of events/apigw_get_health.json

# What a caller sees, written out: a change of status or code is a change of the API's contract.
ANSWERS: dict[str, tuple[int, str]] = {
    "AppError": (500, "internal_error"),
    "BadRequest": (400, "bad_request"),
    "Unauthenticated": (401, "unauthenticated"),
    "Forbidden": (403, "forbidden"),
    "NotFound": (404, "not_found"),
    "Conflict": (409, "conflict"),
    "TooManyRequests": (429, "too_many_requests"),
    "DependencyFailure": (503, "dependency_failure"),
    "ConfigurationError": (500, "configuration_error"),
}


def _error_classes() -> dict[str, type[AppError]]:
    found: dict[str, type[AppError]] = {"AppError": AppError}
    pending = list(AppError.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls.__module__ == errors.__name__:
            found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


ERRORS = _error_classes()


@pytest.fixture(scope="module")
def app() -> APIGatewayRestResolver:
    app = build_resolver()

    @app.get("/v1/errors/<name>")
    def raise_error(name: str) -> dict[str, str]:
        raise ERRORS[name](f"{name} was raised")

    @app.get("/v1/detailed")
    def detailed() -> dict[str, str]:
        raise errors.Conflict("already there", details=[{"field": "name", "problem": "taken"}])

    return app


def call(app: APIGatewayRestResolver, path: str) -> tuple[int, dict[str, Any]]:
    event = copy.deepcopy(json.loads((EVENTS / "apigw_get_health.json").read_text()))
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = path
    response = app.resolve(event, make_lambda_context())
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    return response["statusCode"], json.loads(response["body"])


def test_every_error_class_has_a_documented_answer() -> None:
    # A new error class in shared/errors.py must be added to ANSWERS: what callers see is decided, not inherited.
    assert set(ERRORS) == set(ANSWERS)


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_each_error_is_answered_with_its_status_and_error_body(app: APIGatewayRestResolver, name: str) -> None:
    status, body = call(app, f"/v1/errors/{name}")

    assert (status, body) == (
        ANSWERS[name][0],
        {
            "error": {
                "code": ANSWERS[name][1],
                "message": f"{name} was raised",
                "request_id": REQUEST_ID,
                "details": [],
            }
        },
    )


def test_the_codes_tell_every_error_apart() -> None:
    codes = [code for _, code in ANSWERS.values()]
    assert len(codes) == len(set(codes))


def test_details_reach_the_caller(app: APIGatewayRestResolver) -> None:
    status, body = call(app, "/v1/detailed")

    assert status == 409
    assert body["error"]["details"] == [{"field": "name", "problem": "taken"}]


def test_details_are_not_shared_between_errors() -> None:
    first, second = errors.NotFound("a"), errors.NotFound("b")
    first.details.append({"x": 1})

    assert second.details == []
