"""Where vacancies are kept: a port and its DynamoDB adapter (one item per vacancy, tenant-first key)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from functions.retention.models.entities import Vacancy
from shared.aws import LazyClient
from shared.keys import tenant_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_SK = "VACANCY"
_DATES = ("opened_at", "closed_at", "archived_at", "reported_at")


class StaleWrite(Exception):
    """The vacancy changed between the read and the conditional write."""


class VacancyStore(Protocol):
    def get(self, tenant: str, vacancy_id: str) -> Vacancy | None: ...

    def save(self, vacancy: Vacancy, *, previous_version: int | None) -> None: ...


def _key(tenant: str, vacancy_id: str) -> dict[str, Any]:
    return {"pk": {"S": tenant_key(tenant, "VACANCY", vacancy_id)}, "sk": {"S": _SK}}


class DynamoVacancyStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def get(self, tenant: str, vacancy_id: str) -> Vacancy | None:
        item = self.client.get_item(TableName=self._table, Key=_key(tenant, vacancy_id), ConsistentRead=True).get(
            "Item"
        )
        return _from_item(item) if item else None

    def save(self, vacancy: Vacancy, *, previous_version: int | None) -> None:
        """Write `vacancy` if the stored one is still at `previous_version` (None: if there is none yet)."""
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if previous_version is None
            else {
                "ConditionExpression": "version = :previous",
                "ExpressionAttributeValues": {":previous": {"N": str(previous_version)}},
            }
        )
        try:
            self.client.put_item(TableName=self._table, Item=_to_item(vacancy), **condition)
        except self.client.exceptions.ConditionalCheckFailedException:
            raise StaleWrite(vacancy.vacancy_id) from None


def _to_item(vacancy: Vacancy) -> dict[str, Any]:
    item: dict[str, Any] = {
        **_key(vacancy.tenant, vacancy.vacancy_id),
        "tenant": {"S": vacancy.tenant},
        "vacancy_id": {"S": vacancy.vacancy_id},
        "kind": {"S": vacancy.kind.value},
        "status": {"S": vacancy.status.value},
        "version": {"N": str(vacancy.version)},
    }
    for name in _DATES:
        value: datetime | None = getattr(vacancy, name)
        if value is not None:
            item[name] = {"S": value.isoformat()}
    return item


def _from_item(item: dict[str, Any]) -> Vacancy:
    return Vacancy(
        tenant=item["tenant"]["S"],
        vacancy_id=item["vacancy_id"]["S"],
        kind=item["kind"]["S"],
        status=item["status"]["S"],
        version=int(item["version"]["N"]),
        **{name: datetime.fromisoformat(item[name]["S"]) for name in _DATES if name in item},
    )
