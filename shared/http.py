"""The HTTP edge shared by every API function: the resolver, the one error-to-HTTP mapping, the error body,
the request context (actor, request id, source ip) and the OpenAPI fragments every route reuses."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import Field

from shared.auth import Actor, actor_from_event
from shared.errors import AppError, DependencyFailure
from shared.models import Model
from shared.observability import logger

BEARER_AUTH = "bearerAuth"
SECURED: list[dict[str, list[str]]] = [{BEARER_AUTH: []}]


class ErrorDetail(Model):
    code: str = Field(description="Stable machine-readable error code")
    message: str = Field(description="What went wrong, for a person")
    request_id: str | None = Field(default=None, description="Quote it to support")
    details: list[dict[str, Any]] = Field(default_factory=list)


class ErrorBody(Model):
    error: ErrorDetail


_DESCRIPTIONS = {
    400: "Bad request",
    422: "The request does not match the documented schema; `details` names each problem",
    401: "Missing, malformed, expired or wrongly signed token",
    403: "The caller's roles or scopes do not allow this",
    404: "Not found",
    409: "Conflict with the current state",
    429: "Too many requests",
    500: "Internal error",
    503: "A dependency is unavailable; retry later",
}


def error_responses(*statuses: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI response entries for the given error statuses, all with the ErrorBody schema."""
    return {
        status: {"description": _DESCRIPTIONS[status], "content": {"application/json": {"model": ErrorBody}}}
        for status in statuses
    }


def ok_response(model: type[Model], description: str) -> dict[int, OpenAPIResponse]:
    return {200: {"description": description, "content": {"application/json": {"model": model}}}}


def _error_response(
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    details: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> Response:
    error = ErrorDetail(code=code, message=message, request_id=request_id, details=details or [])
    body = ErrorBody(error=error).model_dump(mode="json")
    body.update(extra)
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


RouteT = TypeVar("RouteT", bound=Callable[..., Any])
_ROUTE = inspect.signature(APIGatewayRestResolver.route)


class ApiResolver(APIGatewayRestResolver):
    """Powertools' REST resolver, validating each route that takes input.

    A route function with parameters (body, query, path or header values) is validated by Powertools, and its
    422 is documented with the project's error body. A route without parameters has nothing to validate: it
    returns a pydantic model, valid by construction, so it is served without Powertools' validation machinery,
    which would otherwise be imported on every cold start (~50 ms, see docs/decisions.md). A route may still
    say `enable_validation=` itself.
    """

    def route(self, *args: Any, **kwargs: Any) -> Callable[[RouteT], RouteT]:
        bound = _ROUTE.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = {k: v for k, v in bound.arguments.items() if k != "self"}
        register = super().route

        def decorate(func: RouteT) -> RouteT:
            options = dict(arguments)
            if options["enable_validation"] is None:
                options["enable_validation"] = bool(inspect.signature(func).parameters)
            if options["enable_validation"]:
                options["responses"] = {**error_responses(422), **(options["responses"] or {})}
            return register(**options)(func)

        return decorate

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Answer the request with every audit entry it made written in one insert (shared/audit.py `batched`),
        before the answer leaves: when the trail cannot be written, the answer is a 503 instead, so nothing is
        disclosed unaudited."""
        from shared.audit import batched

        try:
            with batched():
                answer: dict[str, Any] = super().resolve(event, context)
                audit_unaudited(event, answer)
        except DependencyFailure as failed:
            logger.exception("the audit trail could not be written", extra={"error_code": failed.code})
            request_id = (event.get("requestContext") or {}).get("requestId")
            response = _error_response(503, failed.code, failed.message, request_id)
            return {
                "statusCode": 503,
                "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON]},
                "body": json.dumps(response.body),
                "isBase64Encoded": False,
            }
        return answer


def audit_unaudited(event: Mapping[str, Any], answer: Mapping[str, Any]) -> None:
    """The entry of a request by a verified caller that its route did not audit itself (a 422 from validation, a
    404 for an unknown path, a route written without an `authorize`): `http:<METHOD> <route>` on the path, with
    the outcome the status says. Every route is covered, those added later included, without an edit; routes
    audit what they do in their own words (`authorize`), and this entry only stands in when they did not.

    Only for verified callers: an anonymous request names no tenant the trail could trust (a webhook's tenant is
    in its path, chosen by whoever calls), and public routes audit what they accept themselves. Not for a function
    without an audit table (none of the stack's API functions, tests/infra/test_audit_coverage.py). The entry
    holds the path (identifiers), never the query string (a search's words may name a person)."""
    import os

    from shared.audit import AuditEntry, DynamoAuditLog, Outcome, collected

    table = os.environ.get("AUDIT_TABLE_NAME")
    if collected() or not table:
        return
    try:
        actor = actor_from_event(dict(event))
    except AppError:
        return
    context = event.get("requestContext") or {}
    status = int(answer.get("statusCode") or 500)
    outcome = Outcome.ALLOWED if status < 400 else Outcome.DENIED if status in (401, 403) else Outcome.FAILED
    reason = None
    if status >= 400:
        try:
            code = json.loads(answer.get("body") or "{}").get("error", {}).get("code")
        except (ValueError, AttributeError):
            code = None
        reason = f"HTTP {status}" + (f" {code}" if isinstance(code, str) else "")
    DynamoAuditLog(table).append(
        AuditEntry(
            tenant=actor.tenant,
            actor=actor.label,
            action=f"http:{event.get('httpMethod', '?')} {event.get('resource') or '?'}"[:128],
            resource=str(event.get("path") or "/")[:512],
            outcome=outcome,
            request_id=str(context.get("requestId") or "-"),
            reason=reason,
            source_ip=(context.get("identity") or {}).get("sourceIp"),
        )
    )


def build_resolver() -> APIGatewayRestResolver:
    """The REST resolver every API function uses, with the one mapping of errors to HTTP responses."""
    app = ApiResolver()

    def request_id() -> str | None:
        return app.current_event.request_context.request_id

    @app.exception_handler(AppError)
    def handle_app_error(exc: AppError) -> Response:
        if exc.status >= 500:
            logger.exception("request failed", extra={"error_code": exc.code})
        else:
            logger.info("request refused", extra={"error_code": exc.code, "status": exc.status})
        return _error_response(exc.status, exc.code, exc.message, request_id(), exc.details)

    @app.exception_handler(RequestValidationError)
    def handle_validation_error(exc: RequestValidationError) -> Response:
        problems = [
            {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{'.'.join(str(p) for p in p_['loc'])}: {p_['msg']}" for p_ in problems)
        logger.info("request rejected by validation", extra={"problems": len(problems)})
        # `detail` repeats the problems at the top level, in the shape Powertools documents for 422 responses.
        return _error_response(
            422, "validation_failed", summary or "invalid request", request_id(), problems, detail=problems
        )

    @app.exception_handler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        # A bug, not the caller's fault: logged with its stack trace, answered without leaking its message.
        # The API's 5xx alarm notices it, since the function itself returns normally.
        logger.exception("unexpected error", extra={"error_type": type(exc).__name__})
        return _error_response(500, "internal_error", "internal error", request_id())

    @app.not_found
    def handle_not_found(_: Exception) -> Response:
        return _error_response(404, "not_found", f"no route for {app.current_event.path}", request_id())

    return app


@dataclass(frozen=True)
class RequestContext:
    """What a route hands its use case: the verified actor, the request id and the caller's address."""

    actor: Actor
    request_id: str
    source_ip: str | None


def request_context(app: APIGatewayRestResolver) -> RequestContext:
    """The verified caller of the current request (raises Unauthenticated when there is none)."""
    event = app.current_event
    return RequestContext(
        actor=actor_from_event(event.raw_event),
        request_id=event.request_context.request_id,
        source_ip=event.request_context.identity.source_ip,
    )
