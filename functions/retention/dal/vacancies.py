"""Where vacancies are kept: a port and its DynamoDB adapter on the item layout of dal/items.py.

A vacancy's item carries the due date of its current phase only (`archive_due`, `removal_due` or
`applicants_due`, each the sort key of its sparse index), so a sweep reads only what is due. Its `holds` are
owned by the legal-hold use cases: an update never writes them, so a hold placed meanwhile is never lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from functions.retention.dal.items import (
    from_item,
    tenant_registry_item,
    to_attributes,
    to_item,
    vacancy_key,
)
from functions.retention.models.entities import DueKind, HoldSubject, Vacancy, VacancyStatus
from shared.aws import LazyClient
from shared.keys import tenant_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_VACANCY_DUES = (DueKind.ARCHIVE, DueKind.REMOVAL, DueKind.APPLICANTS)
_NOT_WRITTEN_BY_UPDATE = frozenset({"holds", "pk", "sk"})


class StaleWrite(Exception):
    """The vacancy changed between the read and the conditional write."""


class VacancyStore(Protocol):
    def get(self, tenant: str, vacancy_id: str) -> Vacancy | None: ...

    def active_holds(self, tenant: str, vacancy_id: str) -> frozenset[str]:
        """The ids of the active legal holds placed on the vacancy (before it was first reported)."""
        ...

    def save(self, vacancy: Vacancy, *, previous: Vacancy | None) -> None:
        """Write `vacancy` if the stored one is still `previous` (None: if there is none yet); StaleWrite if not."""
        ...


class DynamoVacancyStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def get(self, tenant: str, vacancy_id: str) -> Vacancy | None:
        item = self.client.get_item(
            TableName=self._table, Key=vacancy_key(tenant, vacancy_id), ConsistentRead=True
        ).get("Item")
        return from_item(Vacancy, item) if item else None

    def active_holds(self, tenant: str, vacancy_id: str) -> frozenset[str]:
        """One Query of the tenant's holds partition (a few items), filtered to this vacancy's active ones."""
        found: set[str] = set()
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": "subject_kind = :kind AND subject_id = :vid AND attribute_not_exists(released_at)",
            "ExpressionAttributeValues": {
                ":pk": {"S": tenant_key(tenant, "HOLDS")},
                ":kind": {"S": HoldSubject.VACANCY.value},
                ":vid": {"S": vacancy_id},
            },
            "ProjectionExpression": "sk",
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**request)
            found.update(item["sk"]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return frozenset(found)
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save(self, vacancy: Vacancy, *, previous: Vacancy | None) -> None:
        if previous is None:
            self._create(vacancy)
        else:
            self._update(vacancy, previous)

    def _create(self, vacancy: Vacancy) -> None:
        """The vacancy and its tenant's registry entry (idempotent) in one transaction."""
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_item(vacancy, vacancy_key(vacancy.tenant, vacancy.vacancy_id)),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Put": {"TableName": self._table, "Item": tenant_registry_item(vacancy.tenant)}},
                ]
            )
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                raise StaleWrite(vacancy.vacancy_id) from None
            raise

    def _update(self, vacancy: Vacancy, previous: Vacancy) -> None:
        """Every attribute but `holds`; the due attributes of other phases removed. Conditioned on the version
        read and on a status no later than the new one, so a phase the sweep moved to meanwhile is never undone."""
        attributes = {k: v for k, v in to_attributes(vacancy).items() if k not in _NOT_WRITTEN_BY_UPDATE}
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets: list[str] = []
        for i, (name, value) in enumerate(sorted(attributes.items())):
            names[f"#a{i}"] = name
            values[f":a{i}"] = value
            sets.append(f"#a{i} = :a{i}")
        removes: list[str] = []
        for i, kind in enumerate(_VACANCY_DUES):
            if kind.attribute not in attributes:
                names[f"#r{i}"] = kind.attribute
                removes.append(f"#r{i}")
        allowed = [s for s in VacancyStatus if s.rank <= vacancy.status.rank]
        for i, status in enumerate(allowed):
            values[f":s{i}"] = {"S": status.value}
        names["#status"] = "status"
        names["#version"] = "version"
        values[":previous"] = {"N": str(previous.version)}
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            self.client.update_item(
                TableName=self._table,
                Key=vacancy_key(vacancy.tenant, vacancy.vacancy_id),
                UpdateExpression=expression,
                ConditionExpression=(
                    "#version = :previous AND #status IN (" + ", ".join(f":s{i}" for i in range(len(allowed))) + ")"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise StaleWrite(vacancy.vacancy_id) from None
