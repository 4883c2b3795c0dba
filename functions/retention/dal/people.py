"""The person item: the only item that holds personal data, and only sealed (functions/retention/dal/vault.py).

    pk T#<t>#PERSON#<pid>  sk PERSON  tenant  person_id  person_key (= pk)  data (M of sealed strings)
    refs (N: applications + registrations that still need the data)  created_at  updated_at  holds (SS)

`refs` only ever moves by `ADD` (here +1 per new application or registration, the sweep -1 per record it
removes), so concurrent writers never lose a count. Legal holds (`holds`) are written by the holds routes only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from functions.retention.dal.items import from_attribute, person_key, person_pk
from shared import clock


@dataclass(frozen=True)
class StoredPerson:
    """A person as stored: their data still sealed."""

    tenant: str
    person_id: str
    sealed: Mapping[str, str] = field(repr=False)
    refs: int = 0
    holds: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PersonWrite:
    """What a new record writes on its person: the (merged) sealed data, and +1 ref when the record counts."""

    tenant: str
    person_id: str
    sealed: Mapping[str, str] = field(repr=False)
    new_ref: bool


def person_from_item(item: dict[str, Any]) -> StoredPerson:
    data = item.get("data", {}).get("M", {})
    return StoredPerson(
        tenant=item["tenant"]["S"],
        person_id=item["person_id"]["S"],
        sealed={name: value["S"] for name, value in data.items()},
        refs=int(item.get("refs", {}).get("N", "0")),
        holds=frozenset(from_attribute(item["holds"])) if "holds" in item else frozenset(),
    )


def person_update(table: str, write: PersonWrite, now: datetime | None = None) -> dict[str, Any]:
    """The `Update` of a TransactWriteItems (or the arguments of UpdateItem) that creates the person or replaces
    their sealed data, adding one ref when `write.new_ref`. Holds and the creation time are left as they are."""
    moment = clock.isoformat(now or clock.now())
    pk = person_pk(write.tenant, write.person_id)
    expression = (
        "SET #data = :data, #tenant = :tenant, #person_id = :person_id, #person_key = :person_key,"
        " #updated_at = :now, #created_at = if_not_exists(#created_at, :now)"
    )
    names = {
        "#data": "data",
        "#tenant": "tenant",
        "#person_id": "person_id",
        "#person_key": "person_key",
        "#updated_at": "updated_at",
        "#created_at": "created_at",
    }
    values: dict[str, Any] = {
        ":data": {"M": {name: {"S": value} for name, value in write.sealed.items()}},
        ":tenant": {"S": write.tenant},
        ":person_id": {"S": write.person_id},
        ":person_key": {"S": pk},
        ":now": {"S": moment},
    }
    if write.new_ref:
        expression += " ADD #refs :one"
        names["#refs"] = "refs"
        values[":one"] = {"N": "1"}
    return {
        "TableName": table,
        "Key": person_key(write.tenant, write.person_id),
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
