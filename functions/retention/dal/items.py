"""The retention table's item layout: one place for every key and every entity <-> item mapping.

    Tenant registry   pk T#_platform#RETENTION_TENANTS   sk <tenant>
    Policy            pk T#<t>#POLICY                    sk POLICY
    Vacancy           pk T#<t>#VACANCY#<vid>             sk VACANCY
    Application       pk T#<t>#VACANCY#<vid>             sk APPLICATION#<aid>     person_key
    Candidate         pk T#<t>#VACANCY#<vid>             sk CANDIDATE#<pid>       person_key
    Registration      pk T#<t>#VACANCY#<vid>             sk REGISTRATION#<pid>    person_key
    Fingerprint       pk T#<t>#VACANCY#<vid>             sk FP#<key version>#<hex>  (nothing else)
    Anonymised copy   pk T#<t>#VACANCY#<vid>             sk ANON#<random id>
    Person            pk T#<t>#PERSON#<pid>              sk PERSON                person_key (= pk)
    Legal hold        pk T#<t>#HOLDS                     sk <hold id>
    Self-service link pk T#<t>#LINK#<link id>            sk LINK
    Subject request   pk T#<t>#DSR#<request id>          sk DSR
    Sweep run         pk T#<t>#SWEEP#<run id>            sk RUN

Everything of a vacancy lives in its partition, so the end of its timeline is one Query. Due dates are
attributes named `<kind>_due` (`clock.isoformat`, sortable), each the sort key of its own sparse index whose
partition key is `tenant`. `ByPerson` (`person_key`, `sk`) finds a person's records for access and erasure;
`PeopleByRefs` (`tenant`, `refs` a number) finds the people no application or registration needs any more.
Records under a legal hold carry the hold ids in `holds` (a string set), so a sweep sees a hold on the item it
already read.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from functions.retention.models.entities import DueKind
from shared import clock
from shared.keys import PLATFORM_TENANT, tenant_key
from shared.models import Model

BY_PERSON_INDEX = "ByPerson"
# People by how many applications and registrations still need their data (`refs`, a number): the sweep's last
# phase reads only the people at 0, whose data then goes (the seed: shared data lives until the last one ends).
PEOPLE_BY_REFS_INDEX = "PeopleByRefs"
TENANTS_PK = tenant_key(PLATFORM_TENANT, "RETENTION_TENANTS")
DUE_INDEXES = {kind: kind.index_name for kind in DueKind}

M = TypeVar("M", bound=Model)


def vacancy_pk(tenant: str, vacancy_id: str) -> str:
    return tenant_key(tenant, "VACANCY", vacancy_id)


def person_pk(tenant: str, person_id: str) -> str:
    return tenant_key(tenant, "PERSON", person_id)


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def policy_key(tenant: str) -> dict[str, Any]:
    return key(tenant_key(tenant, "POLICY"), "POLICY")


def vacancy_key(tenant: str, vacancy_id: str) -> dict[str, Any]:
    return key(vacancy_pk(tenant, vacancy_id), "VACANCY")


def application_key(tenant: str, vacancy_id: str, application_id: str) -> dict[str, Any]:
    return key(vacancy_pk(tenant, vacancy_id), f"APPLICATION#{application_id}")


def candidate_key(tenant: str, vacancy_id: str, person_id: str) -> dict[str, Any]:
    return key(vacancy_pk(tenant, vacancy_id), f"CANDIDATE#{person_id}")


def registration_key(tenant: str, vacancy_id: str, person_id: str) -> dict[str, Any]:
    return key(vacancy_pk(tenant, vacancy_id), f"REGISTRATION#{person_id}")


def fingerprint_key(tenant: str, vacancy_id: str, fingerprint: str) -> dict[str, Any]:
    """`fingerprint` is `h<version>:<hex>` (shared.crypto.TenantKeys)."""
    version, _, digest = fingerprint.partition(":")
    return key(vacancy_pk(tenant, vacancy_id), f"FP#{version}#{digest}")


def anonymised_key(tenant: str, vacancy_id: str, copy_id: str) -> dict[str, Any]:
    return key(vacancy_pk(tenant, vacancy_id), f"ANON#{copy_id}")


def person_key(tenant: str, person_id: str) -> dict[str, Any]:
    return key(person_pk(tenant, person_id), "PERSON")


def hold_key(tenant: str, hold_id: str) -> dict[str, Any]:
    return key(tenant_key(tenant, "HOLDS"), hold_id)


def link_key(tenant: str, link_id: str) -> dict[str, Any]:
    return key(tenant_key(tenant, "LINK", link_id), "LINK")


def request_key(tenant: str, request_id: str) -> dict[str, Any]:
    return key(tenant_key(tenant, "DSR", request_id), "DSR")


def sweep_key(tenant: str, run_id: str) -> dict[str, Any]:
    return key(tenant_key(tenant, "SWEEP", run_id), "RUN")


def tenant_registry_item(tenant: str) -> dict[str, Any]:
    return {**key(TENANTS_PK, tenant), "tenant": {"S": tenant}}


# --- values --------------------------------------------------------------------------------------------------------


def to_attribute(value: Any) -> dict[str, Any] | None:
    """One DynamoDB attribute value; None for what is not stored (None, empty sets)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, Enum):
        return {"S": str(value.value)}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, datetime):
        return {"S": clock.isoformat(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, frozenset | set):
        return {"SS": sorted(value)} if value else None
    if isinstance(value, tuple | list):
        return {"L": [attr for v in value if (attr := to_attribute(v)) is not None]}
    if isinstance(value, Model):
        return {"M": to_attributes(value)}
    raise TypeError(f"cannot store a {type(value).__name__}")


def from_attribute(attr: dict[str, Any]) -> Any:
    (kind, value), *_ = attr.items()
    if kind == "N":
        return int(value)
    if kind == "SS":
        return frozenset(value)
    if kind == "L":
        return [from_attribute(v) for v in value]
    if kind == "M":
        return {k: from_attribute(v) for k, v in value.items()}
    return value  # S, BOOL


def to_attributes(model: Model) -> dict[str, Any]:
    """A model's fields as DynamoDB attributes (None and empty sets left out)."""
    return {name: attr for name in type(model).model_fields if (attr := to_attribute(getattr(model, name))) is not None}


def to_item(model: Model, item_key: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """`model` stored under `item_key`, with extra attributes (index keys such as `person_key`)."""
    item = {**to_attributes(model), **item_key}
    for name, value in extra.items():
        attr = to_attribute(value)
        if attr is not None:
            item[name] = attr
    return item


def from_item(cls: type[M], item: dict[str, Any]) -> M:
    """The model stored in `item`; attributes the model does not declare (keys, index keys) are ignored."""
    fields = cls.model_fields
    return cls.model_validate({k: from_attribute(v) for k, v in item.items() if k in fields})


# --- helper D (the daily sweep) --------------------------------------------------------------------------------------


def sweep_page_key(tenant: str, run_id: str, page: int) -> dict[str, Any]:
    """A committed sweep page's marker, beside its run record (`sweep_key`): makes a retried page a no-op."""
    return key(tenant_key(tenant, "SWEEP", run_id), f"PAGE#{page:06d}")


# --- helper E (the sweep's people phase) -----------------------------------------------------------------------------


def sweep_refs_key(tenant: str, run_id: str, execution: str, person_id: str) -> dict[str, Any]:
    """A dry run's stand-in for a person's refs decrement (beside its run record, per execution): the people
    phase of the same dry run finds the people whose refs would have reached 0."""
    return key(tenant_key(tenant, "SWEEP", run_id), f"REFS#{execution}#{person_id}")


def sweep_refs_prefix(execution: str) -> str:
    return f"REFS#{execution}#"
