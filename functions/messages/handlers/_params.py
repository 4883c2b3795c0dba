"""Query-string parameters of the messages routes, read the same way everywhere: an empty value is no value, a
time must carry its offset, an enum names its choices; a wrong one is a 400 naming the parameter."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from shared.errors import BadRequest

E = TypeVar("E", bound=StrEnum)


def text(app: APIGatewayRestResolver, name: str) -> str | None:
    value = app.current_event.get_query_string_value(name)
    return value if value not in (None, "") else None


def time(app: APIGatewayRestResolver, name: str) -> datetime | None:
    value = text(app, name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date-time with its offset") from None
    if parsed.tzinfo is None:
        raise BadRequest(f"{name} must carry its UTC offset")
    return parsed


def choice(app: APIGatewayRestResolver, name: str, kind: type[E]) -> E | None:
    value = text(app, name)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise BadRequest(f"{name} must be one of {', '.join(k.value for k in kind)}") from None
