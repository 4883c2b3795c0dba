"""The daily sweep's data access: due indexes read a page at a time, each page written in one transaction.

Cost per page of at most 100 records (the issue's bench: <= 0.3 requests and <= 1.1 items read per removed
record): one Query of the due index (Limit 100, key condition `tenant = :t AND <kind>_due <= :now`, never a
scan), one Query of a vacancy's partition where the phase needs its children, one TransactWriteItems (the page
marker, the run record's counters and at most 98 record actions) and the policy's GetItem. The people phase reads
`PeopleByRefs` (`tenant = :t AND refs <= :zero`) and forgets up to 49 people in one TransactWriteItems across both
tables (each person item deleted on condition it is still at 0 and not held, with its data key item: shredding).
Events (10 per PutEvents) and the audit entry are the caller's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from functions.retention.dal.items import (
    PEOPLE_BY_REFS_INDEX,
    TENANTS_PK,
    key,
    person_key,
    sweep_key,
    sweep_page_key,
    sweep_refs_key,
    sweep_refs_prefix,
    tenant_key,
    vacancy_key,
    vacancy_pk,
)
from functions.retention.dal.policy import DynamoPolicyStore
from functions.retention.dal.vault import data_key_item_key
from functions.retention.models.entities import DueKind, RetentionPolicy
from shared.aws import LazyClient
from shared.errors import DependencyFailure

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_VACANCY_SK = "VACANCY"
_FINGERPRINT_PREFIX = "FP#"
_BATCH_GET_LIMIT = 100


class RecordKind(StrEnum):
    VACANCY = "vacancy"
    APPLICATION = "application"
    CANDIDATE = "candidate"
    REGISTRATION = "registration"
    FINGERPRINT = "fingerprint"
    ANONYMISED = "anonymised"
    PERSON = "person"
    OTHER = "other"


@dataclass(frozen=True)
class Record:
    """A stored record as the sweep sees it: ids, its due date as read, its holds. `position` is where a read
    of its due index resumes after it (opaque, the store's); `sk` its sort key within the vacancy's partition.
    `after` and `blocked` carry a vacancy's progress through its partition across pages. A person (the people
    phase) has `record_id` = `person_id`, no vacancy, and `exports` when a subject-access export was written."""

    kind: RecordKind
    vacancy_id: str
    record_id: str  # the vacancy id, the application id, the person id (candidate, registration) or the sort key
    sk: str
    person_id: str | None = None
    due: str | None = None
    holds: tuple[str, ...] = ()
    position: dict[str, Any] | None = None
    after: str | None = None
    blocked: bool = False
    exports: bool = False

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value, "holds": list(self.holds)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Record:
        return cls(**{**raw, "kind": RecordKind(raw["kind"]), "holds": tuple(raw.get("holds") or ())})


# --- the writes a page plans (the store turns each into one transaction action) -------------------------------


@dataclass(frozen=True)
class Archive:
    """The vacancy is archived as of `due`; condition: still due then and not held."""

    vacancy_id: str
    due: str
    removal_due: str


@dataclass(frozen=True)
class Remove:
    """The vacancy is removed as of `due`; condition: still due then and not held."""

    vacancy_id: str
    due: str
    applicants_due: str


@dataclass(frozen=True)
class Delete:
    """The record goes; condition: not held and, with `due_kind`, its `<kind>_due` still the one read."""

    record: Record
    due_kind: DueKind | None = None


@dataclass(frozen=True)
class Guard:
    """A condition check on the vacancy: not held and its `<kind>_due` still `due` (children of a vacancy that
    fill more than one page go only while the vacancy itself is still due)."""

    vacancy_id: str
    due_kind: DueKind
    due: str


@dataclass(frozen=True)
class Decrement:
    """The person's `refs` drop by `by` (the person item must exist)."""

    person_id: str
    by: int


@dataclass(frozen=True)
class DryDecrement:
    """A dry run's stand-in for a Decrement: adds `by` to the execution's own count for the person (no condition,
    the person item is not touched)."""

    run_id: str
    execution: str
    person_id: str
    by: int


@dataclass(frozen=True)
class ForgetPerson:
    """The person item goes; condition: still at 0 refs (or less) and not held. Paired with ShredKey in the same
    transaction, so the key goes exactly when the person does."""

    person_id: str


@dataclass(frozen=True)
class ShredKey:
    """The person's data key item goes from the keys table (crypto-shredding)."""

    person_id: str


Write = Archive | Remove | Delete | Guard | Decrement | DryDecrement | ForgetPerson | ShredKey


@dataclass(frozen=True)
class Committed:
    pass


@dataclass(frozen=True)
class AlreadyCommitted:
    """The page's marker exists: an earlier attempt committed it; `result` is what it recorded."""

    result: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    """Nothing was written: the writes at these indexes met a concurrent change (their condition failed)."""

    failed: frozenset[int]


CommitOutcome = Committed | AlreadyCommitted | Rejected


@dataclass(frozen=True)
class RunTotals:
    """The run record: counts added by every committed page of every execution of the run."""

    counts: dict[str, dict[str, int]]
    pages: int = 0
    started_at: str | None = None
    policy_version: int | None = None


class SweepStore(Protocol):
    def tenants(self) -> list[str]: ...

    def policy(self, tenant: str) -> RetentionPolicy: ...

    def due(
        self, tenant: str, kind: DueKind, now: str, *, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[Record], dict[str, Any] | None]:
        """One page of the due index, oldest first, and where the next page starts (None: the index is done)."""
        ...

    def children(
        self, tenant: str, vacancy_id: str, *, fingerprints_only: bool, after: str | None, limit: int
    ) -> tuple[list[Record], bool]:
        """Records of the vacancy's partition before the vacancy item (or its fingerprints only), in sort-key
        order after `after`; and whether there may be more."""
        ...

    def commit(self, tenant: str, page: PageMarker, writes: Sequence[Write]) -> CommitOutcome:
        """One transaction: the page marker (only if absent), the run record's counters, then `writes`."""
        ...

    def marker(self, tenant: str, run_id: str, page: int) -> dict[str, Any] | None:
        """The body a committed page recorded (None: no such page yet)."""
        ...

    def people(
        self, tenant: str, *, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[Record], dict[str, Any] | None]:
        """One page of the people at 0 refs (or less), and where the next page starts (None: done)."""
        ...

    def dry_people(
        self, tenant: str, run_id: str, execution: str, *, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[Record], dict[str, Any] | None]:
        """Dry run: of the people this execution's DryDecrements touched (a page of them), those now above 0
        whose refs the decrements would bring to 0 (or less); and where the next page starts."""
        ...

    def totals(self, tenant: str, run_id: str) -> RunTotals | None: ...


class ReportStore(Protocol):
    def put_once(self, key: str, body: bytes) -> bool:
        """Store `body` at `key` unless an object is there already; whether this call wrote it."""
        ...


@dataclass(frozen=True)
class PageMarker:
    """A page as its transaction records it: the marker's body (the caller's JSON) and the run record's counters."""

    run_id: str
    page: int
    phase: str
    dry_run: bool
    counts: dict[str, int]
    started_at: str
    policy_version: int
    body: str


_PREFIXES = {
    "APPLICATION#": RecordKind.APPLICATION,
    "CANDIDATE#": RecordKind.CANDIDATE,
    "REGISTRATION#": RecordKind.REGISTRATION,
    "FP#": RecordKind.FINGERPRINT,
    "ANON#": RecordKind.ANONYMISED,
}
_NOT_HELD = "attribute_not_exists(holds)"


def record_from_item(item: dict[str, Any], due_kind: DueKind | None = None) -> Record:
    """The sweep's view of a stored item of a vacancy's partition (see items.py for the layout)."""
    pk, sk = item["pk"]["S"], item["sk"]["S"]
    vacancy_id = pk.split("#", 3)[3]
    kind, record_id = RecordKind.OTHER, sk
    if sk == _VACANCY_SK:
        kind, record_id = RecordKind.VACANCY, vacancy_id
    else:
        for prefix, prefix_kind in _PREFIXES.items():
            if sk.startswith(prefix):
                kind = prefix_kind
                if kind in (RecordKind.APPLICATION, RecordKind.CANDIDATE, RecordKind.REGISTRATION):
                    record_id = sk[len(prefix) :]
                break
    person = item.get("person_id", {}).get("S")
    due = item.get(due_kind.attribute, {}).get("S") if due_kind else None
    position = None
    if due_kind is not None:
        position = {
            "tenant": item["tenant"],
            due_kind.attribute: item[due_kind.attribute],
            "pk": item["pk"],
            "sk": item["sk"],
        }
    return Record(
        kind=kind,
        vacancy_id=vacancy_id,
        record_id=record_id,
        sk=sk,
        person_id=person,
        due=due,
        holds=tuple(sorted(item.get("holds", {}).get("SS", []))),
        position=position,
    )


def _person_record(item: dict[str, Any]) -> Record:
    person_id = item["person_id"]["S"]
    return Record(
        kind=RecordKind.PERSON,
        vacancy_id="",
        record_id=person_id,
        sk="PERSON",
        person_id=person_id,
        holds=tuple(sorted(item.get("holds", {}).get("SS", []))),
        exports=bool(item.get("has_exports", {}).get("BOOL")),
    )


class DynamoSweepStore:
    """The SweepStore port on the retention table (and the keys table, whose data key items the people phase
    deletes)."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None, *, keys_table: str = "") -> None:
        self._table = table_name
        self._keys_table = keys_table
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def tenants(self) -> list[str]:
        out: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": TENANTS_PK}},
            "ProjectionExpression": "sk",
        }
        while True:
            page = self.client.query(**kwargs)
            out.extend(item["sk"]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def policy(self, tenant: str) -> RetentionPolicy:
        stored = DynamoPolicyStore(self._table, self.client).load(tenant)
        return stored.policy if stored else RetentionPolicy(tenant=tenant)

    def due(
        self, tenant: str, kind: DueKind, now: str, *, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[Record], dict[str, Any] | None]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": kind.index_name,
            "KeyConditionExpression": "tenant = :t AND #due <= :now",
            "ExpressionAttributeNames": {"#due": kind.attribute},
            "ExpressionAttributeValues": {":t": {"S": tenant}, ":now": {"S": now}},
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = cursor
        page = self.client.query(**kwargs)
        records = [record_from_item(item, kind) for item in page.get("Items", [])]
        return records, page.get("LastEvaluatedKey")

    def children(
        self, tenant: str, vacancy_id: str, *, fingerprints_only: bool, after: str | None, limit: int
    ) -> tuple[list[Record], bool]:
        pk = vacancy_pk(tenant, vacancy_id)
        kwargs: dict[str, Any] = {"TableName": self._table, "Limit": max(1, limit), "ConsistentRead": True}
        if fingerprints_only:
            kwargs["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :prefix)"
            kwargs["ExpressionAttributeValues"] = {":pk": {"S": pk}, ":prefix": {"S": _FINGERPRINT_PREFIX}}
        else:
            kwargs["KeyConditionExpression"] = "pk = :pk AND sk < :vacancy"
            kwargs["ExpressionAttributeValues"] = {":pk": {"S": pk}, ":vacancy": {"S": _VACANCY_SK}}
        if after:
            kwargs["ExclusiveStartKey"] = key(pk, after)
        page = self.client.query(**kwargs)
        return [record_from_item(item) for item in page.get("Items", [])], "LastEvaluatedKey" in page

    def commit(self, tenant: str, page: PageMarker, writes: Sequence[Write]) -> CommitOutcome:
        marker = sweep_page_key(tenant, page.run_id, page.page)
        actions: list[Any] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {**marker, "result": {"S": page.body}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Update": self._run_update(tenant, page)},
            *(self._action(tenant, write) for write in writes),
        ]
        try:
            self.client.transact_write_items(TransactItems=actions)
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                recorded = self.marker(tenant, page.run_id, page.page)
                if recorded is not None:
                    return AlreadyCommitted(recorded)
            failed = frozenset(i - 2 for i, code in enumerate(reasons) if i >= 2 and code == "ConditionalCheckFailed")
            if failed:
                return Rejected(failed)
            raise DependencyFailure(f"sweep page {page.page} of {tenant} was cancelled: {reasons}") from None
        return Committed()

    def marker(self, tenant: str, run_id: str, page: int) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self._table, Key=sweep_page_key(tenant, run_id, page), ConsistentRead=True
        ).get("Item")
        return json.loads(item["result"]["S"]) if item else None

    def _run_update(self, tenant: str, page: PageMarker) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {
            ":run": {"S": page.run_id},
            ":dry": {"BOOL": page.dry_run},
            ":started": {"S": page.started_at},
            ":pv": {"N": str(page.policy_version)},
            ":one": {"N": "1"},
        }
        adds = ["pages :one"]
        for index, (name, value) in enumerate(sorted(page.counts.items())):
            names[f"#c{index}"] = f"n_{page.phase}_{name}"
            values[f":c{index}"] = {"N": str(value)}
            adds.append(f"#c{index} :c{index}")
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": sweep_key(tenant, page.run_id),
            "UpdateExpression": (
                "SET run_id = :run, dry_run = :dry, started_at = if_not_exists(started_at, :started),"
                " policy_version = :pv ADD " + ", ".join(adds)
            ),
            "ExpressionAttributeValues": values,
        }
        if names:
            update["ExpressionAttributeNames"] = names
        return update

    def _action(self, tenant: str, write: Write) -> dict[str, Any]:
        table = self._table
        if isinstance(write, Archive | Remove):
            archive = isinstance(write, Archive)
            due_attr, next_attr, status, at = (
                ("archive_due", "removal_due", "archived", "archived_at")
                if archive
                else ("removal_due", "applicants_due", "removed", "removed_at")
            )
            next_due = write.removal_due if isinstance(write, Archive) else write.applicants_due
            return {
                "Update": {
                    "TableName": table,
                    "Key": vacancy_key(tenant, write.vacancy_id),
                    "UpdateExpression": (
                        f"SET #status = :status, {at} = :due, {next_attr} = :next REMOVE {due_attr} ADD version :one"
                    ),
                    "ConditionExpression": f"{due_attr} = :due AND {_NOT_HELD}",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {
                        ":status": {"S": status},
                        ":due": {"S": write.due},
                        ":next": {"S": next_due},
                        ":one": {"N": "1"},
                    },
                }
            }
        if isinstance(write, Delete):
            record = write.record
            delete: dict[str, Any] = {
                "TableName": table,
                "Key": key(vacancy_pk(tenant, record.vacancy_id), record.sk),
                "ConditionExpression": _NOT_HELD,
            }
            if write.due_kind is not None and record.due is not None:
                delete["ConditionExpression"] = f"#due = :due AND {_NOT_HELD}"
                delete["ExpressionAttributeNames"] = {"#due": write.due_kind.attribute}
                delete["ExpressionAttributeValues"] = {":due": {"S": record.due}}
            return {"Delete": delete}
        if isinstance(write, ForgetPerson):
            return {
                "Delete": {
                    "TableName": table,
                    "Key": person_key(tenant, write.person_id),
                    "ConditionExpression": f"refs <= :zero AND {_NOT_HELD}",
                    "ExpressionAttributeValues": {":zero": {"N": "0"}},
                }
            }
        if isinstance(write, ShredKey):
            if not self._keys_table:
                raise DependencyFailure("the sweep store was built without the keys table")
            return {"Delete": {"TableName": self._keys_table, "Key": data_key_item_key(tenant, write.person_id)}}
        if isinstance(write, DryDecrement):
            return {
                "Update": {
                    "TableName": table,
                    "Key": sweep_refs_key(tenant, write.run_id, write.execution, write.person_id),
                    "UpdateExpression": "SET person_id = :p ADD decrements :by",
                    "ExpressionAttributeValues": {":p": {"S": write.person_id}, ":by": {"N": str(write.by)}},
                }
            }
        if isinstance(write, Guard):
            return {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": vacancy_key(tenant, write.vacancy_id),
                    "ConditionExpression": f"#due = :due AND {_NOT_HELD}",
                    "ExpressionAttributeNames": {"#due": write.due_kind.attribute},
                    "ExpressionAttributeValues": {":due": {"S": write.due}},
                }
            }
        assert isinstance(write, Decrement)
        return {
            "Update": {
                "TableName": table,
                "Key": person_key(tenant, write.person_id),
                "UpdateExpression": "ADD refs :minus",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":minus": {"N": str(-write.by)}},
            }
        }

    def people(
        self, tenant: str, *, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[Record], dict[str, Any] | None]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": PEOPLE_BY_REFS_INDEX,
            "KeyConditionExpression": "tenant = :t AND refs <= :zero",
            "ExpressionAttributeValues": {":t": {"S": tenant}, ":zero": {"N": "0"}},
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = cursor
        page = self.client.query(**kwargs)
        return [_person_record(item) for item in page.get("Items", [])], page.get("LastEvaluatedKey")

    def dry_people(
        self, tenant: str, run_id: str, execution: str, *, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[Record], dict[str, Any] | None]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": tenant_key(tenant, "SWEEP", run_id)},
                ":prefix": {"S": sweep_refs_prefix(execution)},
            },
            "Limit": min(limit, _BATCH_GET_LIMIT),
            "ConsistentRead": True,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = cursor
        page = self.client.query(**kwargs)
        decrements = {i["person_id"]["S"]: int(i["decrements"]["N"]) for i in page.get("Items", [])}
        people: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = (
            {self._table: {"Keys": [person_key(tenant, pid) for pid in sorted(decrements)], "ConsistentRead": True}}
            if decrements
            else {}
        )
        while request:
            answer = self.client.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(self._table, []):
                people[item["person_id"]["S"]] = item
            request = dict(answer.get("UnprocessedKeys") or {})
        out = []
        for pid in sorted(people):
            refs = int(people[pid].get("refs", {}).get("N", "0"))
            # Those at 0 already are the index's (read first); only the ones this run would bring to 0 are new.
            if refs > 0 and refs - decrements[pid] <= 0:
                out.append(_person_record(people[pid]))
        return out, page.get("LastEvaluatedKey")

    def totals(self, tenant: str, run_id: str) -> RunTotals | None:
        item = self.client.get_item(TableName=self._table, Key=sweep_key(tenant, run_id), ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return None
        counts: dict[str, dict[str, int]] = {}
        for name, value in item.items():
            if name.startswith("n_"):
                phase, _, counter = name[2:].partition("_")
                counts.setdefault(phase, {})[counter] = int(value["N"])
        return RunTotals(
            counts=counts,
            pages=int(item.get("pages", {}).get("N", "0")),
            started_at=item.get("started_at", {}).get("S"),
            policy_version=int(item["policy_version"]["N"]) if "policy_version" in item else None,
        )
