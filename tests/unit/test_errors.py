"""The error hierarchy: every expected error carries a fixed HTTP status and a stable machine-readable code."""

from __future__ import annotations

import pytest

from shared.errors import (
    AppError,
    BadRequest,
    ConfigurationError,
    Conflict,
    DependencyFailure,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthenticated,
)

EXPECTED: list[tuple[type[AppError], int, str]] = [
    (AppError, 500, "internal_error"),
    (BadRequest, 400, "bad_request"),
    (Unauthenticated, 401, "unauthenticated"),
    (Forbidden, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (TooManyRequests, 429, "too_many_requests"),
    (DependencyFailure, 503, "dependency_failure"),
    (ConfigurationError, 500, "configuration_error"),
]


@pytest.mark.parametrize(("error", "status", "code"), EXPECTED, ids=[e[0].__name__ for e in EXPECTED])
def test_each_error_has_its_status_and_code(error: type[AppError], status: int, code: str) -> None:
    exc = error("something happened")

    assert (exc.status, exc.code) == (status, code)
    assert exc.message == "something happened"
    assert str(exc) == "something happened"
    assert exc.details == []
    assert isinstance(exc, AppError)


def test_every_app_error_subclass_is_covered() -> None:
    assert set(AppError.__subclasses__()) == {e[0] for e in EXPECTED} - {AppError}


def test_codes_are_unique() -> None:
    codes = [code for _, _, code in EXPECTED]
    assert len(codes) == len(set(codes))


def test_details_are_kept() -> None:
    exc = BadRequest("bad", details=[{"field": "email", "problem": "missing"}])

    assert exc.details == [{"field": "email", "problem": "missing"}]


def test_details_are_not_shared_between_instances() -> None:
    first, second = NotFound("a"), NotFound("b")
    first.details.append({"x": 1})

    assert second.details == []
