"""Typed domain events and the port that publishes them (its EventBridge adapter: shared/publisher.py).

Each event is a `DomainEvent` subclass with its own `detail_type` and typed payload fields:

    class MessageRecorded(DomainEvent):
        detail_type: ClassVar[str] = "MessageRecorded"
        message_id: Identifier
        recipient: Fingerprint
        channel: Channel          # a StrEnum
        attempts: int

The bus archive keeps events for a year and cannot be erased, so a payload field may only be an `Identifier`,
a `Fingerprint` (`h<version>:<hex>`, see shared.crypto), an enum, an int, a bool or a datetime (or an optional
or a list of those). Anything else, a plain `str` above all, is refused when the class is defined, and a field
whose name says personal data (`email`, `phone`, `name`, ...) must be a Fingerprint. The detail on the bus is

    {"metadata": {"event_id", "tenant", "occurred_at", "correlation_id", "version"}, "data": {<payload>}}

and `Subclass.model_validate(detail)` reads it back (the consumer path, shared.consumers).
"""

from __future__ import annotations

import json
import re
import typing
import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from types import NoneType, UnionType
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared import clock
from shared.errors import DependencyFailure
from shared.keys import SYSTEM_TENANTS, TENANT_PATTERN
from shared.models import Model

_DETAIL_TYPE = re.compile(r"^[A-Z][A-Za-z]+$")


class _PayloadKind:
    """Marks an Annotated str type as allowed in an event payload."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


IDENTIFIER = _PayloadKind("Identifier")
FINGERPRINT = _PayloadKind("Fingerprint")

# An opaque id: letters, digits and `_ . : -`, no spaces, no `@`, at most 128 characters.
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"), IDENTIFIER]
# A keyed digest made by shared.crypto.TenantKeys: `h<key version>:<64 hex>`.
Fingerprint = Annotated[str, StringConstraints(pattern=r"^h[0-9A-Za-z._-]{1,32}:[0-9a-f]{64}$"), FINGERPRINT]

_ATOMS: tuple[type, ...] = (int, bool, datetime)
_PERSONAL = frozenset(
    {
        "email",
        "mail",
        "phone",
        "mobile",
        "name",
        "firstname",
        "lastname",
        "surname",
        "address",
        "street",
        "birthday",
        "birthdate",
        "dob",
        "ssn",
        "passport",
        "body",
        "subject",
        "content",
        "text",
    }
)
EVENT_TENANT_PATTERN = "^(?:" + "|".join(sorted(SYSTEM_TENANTS)) + "|" + TENANT_PATTERN[1:-1] + ")$"
_METADATA = ("event_id", "tenant", "occurred_at", "correlation_id", "version")


class EventSchemaError(TypeError):
    """A DomainEvent subclass declares a field that could carry personal data, or no detail_type."""


def _marks(annotation: Any, metadata: Sequence[Any] = ()) -> set[_PayloadKind]:
    found = {m for m in metadata if isinstance(m, _PayloadKind)}
    if typing.get_origin(annotation) is Annotated:
        found |= {m for m in typing.get_args(annotation)[1:] if isinstance(m, _PayloadKind)}
    return found


def _allowed(annotation: Any, metadata: Sequence[Any] = ()) -> bool:
    """Whether a payload field of this type can hold only identifiers, fingerprints, enums, counts and times."""
    if _marks(annotation, metadata):
        return True
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _allowed(typing.get_args(annotation)[0])
    if origin in (typing.Union, UnionType):
        return all(arg is NoneType or _allowed(arg) for arg in typing.get_args(annotation))
    if origin in (list, tuple, frozenset):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return bool(args) and all(_allowed(arg) for arg in args)
    if isinstance(annotation, type):
        return issubclass(annotation, Enum) or annotation in _ATOMS
    return False


def _is_fingerprint(annotation: Any, metadata: Sequence[Any]) -> bool:
    if FINGERPRINT in _marks(annotation, metadata):
        return True
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not NoneType and a is not Ellipsis]
    if origin in (typing.Union, UnionType, list, tuple, frozenset):
        return bool(args) and all(_is_fingerprint(a, ()) for a in args)
    return False


class DomainEvent(Model):
    """An event other domains may react to: metadata here, payload fields on the subclass."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True, hide_input_in_errors=True)

    detail_type: ClassVar[str]
    version: ClassVar[str] = "1"
    # An event names a customer's tenant. Only a class that says so may name a system tenant instead (AlertRaised,
    # for refusals at the gateway, before any tenant was known); every other consumer refuses one.
    system_tenants: ClassVar[bool] = False

    tenant: str = Field(pattern=EVENT_TENANT_PATTERN)
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()), pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    occurred_at: datetime = Field(default_factory=clock.now)
    correlation_id: str | None = Field(default=None, max_length=128)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        check_event_class(cls)

    @model_validator(mode="before")
    @classmethod
    def _from_detail(cls, value: Any) -> Any:
        """Accept the detail shape on the bus, `{"metadata": {...}, "data": {...}}`, as well as flat fields."""
        if isinstance(value, dict) and set(value) == {"metadata", "data"}:
            metadata, data = value["metadata"], value["data"]
            if not isinstance(metadata, dict) or not isinstance(data, dict):
                raise ValueError("metadata and data must be objects")
            if str(metadata.get("version", cls.version)) != cls.version:
                raise ValueError(f"{cls.__name__} reads version {cls.version} only")
            if set(data) & set(_METADATA):
                raise ValueError("data may not repeat metadata fields")
            return {**{k: v for k, v in metadata.items() if k != "version"}, **data}
        return value

    @field_validator("tenant")
    @classmethod
    def _customer_tenant(cls, tenant: str) -> str:
        if tenant in SYSTEM_TENANTS and not cls.system_tenants:
            raise ValueError(f"{cls.__name__} names a customer's tenant, not the system tenant {tenant!r}")
        return tenant

    def payload(self) -> dict[str, Any]:
        """The payload fields as JSON values: enums by value, datetimes as clock.isoformat."""
        return {name: _json_value(getattr(self, name)) for name in type(self).model_fields if name not in _METADATA}

    def detail(self) -> str:
        return json.dumps(
            {
                "metadata": {
                    "event_id": self.event_id,
                    "tenant": self.tenant,
                    "occurred_at": clock.isoformat(self.occurred_at),
                    "correlation_id": self.correlation_id,
                    "version": self.version,
                },
                "data": self.payload(),
            },
            separators=(",", ":"),
        )


def check_event_class(cls: type[DomainEvent]) -> None:
    """Refuse an event class whose payload could carry personal data (EventSchemaError naming the field)."""
    detail_type = cls.__dict__.get("detail_type")
    # A class without its own detail_type is an abstract intermediate: its fields are checked, it cannot be
    # published (see _checked).
    if detail_type is not None and not (isinstance(detail_type, str) and _DETAIL_TYPE.match(detail_type)):
        raise EventSchemaError(f"{cls.__name__}.detail_type must be a PascalCase name, got {detail_type!r}")
    for name, info in cls.model_fields.items():
        if name in _METADATA:
            if name in cls.__dict__.get("__annotations__", {}):
                raise EventSchemaError(f"{cls.__name__}.{name} redefines an event metadata field")
            continue
        if not _allowed(info.annotation, info.metadata):
            raise EventSchemaError(
                f"{cls.__name__}.{name}: an event payload field may only be an Identifier, a Fingerprint, an enum,"
                f" an int, a bool or a datetime (the bus archive cannot be erased); got {info.annotation!r}"
            )
        if set(name.lower().split("_")) & _PERSONAL and not _is_fingerprint(info.annotation, info.metadata):
            raise EventSchemaError(f"{cls.__name__}.{name} names personal data: it must be a Fingerprint")


def _json_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return clock.isoformat(value)
    if isinstance(value, list | tuple | frozenset):
        return [_json_value(v) for v in value]
    return value


def _checked(event: DomainEvent) -> DomainEvent:
    """Publishing re-validates: an instance made with model_construct (no validation) is caught here."""
    cls = type(event)
    if cls is DomainEvent or "detail_type" not in vars(cls):
        raise EventSchemaError(f"{cls.__name__} is not a publishable event: it declares no detail_type")
    check_event_class(cls)
    fields = {name: getattr(event, name) for name in cls.model_fields}
    if event.model_extra:
        raise EventSchemaError(f"{cls.__name__} carries undeclared fields")
    return cls.model_validate(fields)


class EventPublisher(Protocol):
    def publish(self, events: Sequence[DomainEvent]) -> None: ...


class PublishFailure(DependencyFailure):
    """Some events were not accepted by EventBridge after every retry; `events` are those, to publish again."""

    def __init__(self, message: str, events: Sequence[DomainEvent]) -> None:
        super().__init__(message)
        self.events = list(events)


def bus_publisher(bus: str, source: str) -> EventPublisher:
    """The EventBridge publisher for `bus`, its module imported on first use: a function whose request publishes
    nothing (a read, a refused call) never loads the bus client (shared/publisher.py)."""
    from shared.publisher import EventBridgePublisher

    return EventBridgePublisher(bus, source)
