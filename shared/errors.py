"""The error hierarchy. Domain code raises these; `shared.http` maps them to HTTP in one place."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every expected error. `status` is the HTTP status, `code` a stable machine-readable name."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class BadRequest(AppError):
    status, code = 400, "bad_request"


class Unauthenticated(AppError):
    status, code = 401, "unauthenticated"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class TooManyRequests(AppError):
    status, code = 429, "too_many_requests"


class DependencyFailure(AppError):
    """A downstream service (AWS or a provider) failed; the caller may retry."""

    status, code = 503, "dependency_failure"


class ConfigurationError(AppError):
    """The function is deployed without a setting it needs: a deployment bug, never the caller's fault."""

    status, code = 500, "configuration_error"
