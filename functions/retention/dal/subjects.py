"""The applicant's self-service on the retention table: links, subject requests, and the person's records found
through the ByPerson index (applications, candidates, registrations and the person item itself).

Records are read as raw items: the subject-access export shows what is stored, and erasure removes what is
there, whatever optional attributes the writers put on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from functions.retention.dal.items import (
    BY_PERSON_INDEX,
    from_item,
    link_key,
    person_key,
    person_pk,
    request_key,
    to_attribute,
    to_item,
    vacancy_key,
)
from functions.retention.models.subjects_io import SelfServiceLink, SubjectRequest
from shared.aws import LazyClient
from shared.errors import DependencyFailure

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]


class SubjectStore(Protocol):
    def person(self, tenant: str, person_id: str) -> Item | None: ...

    def records(self, tenant: str, person_id: str) -> list[Item]: ...

    def vacancy(self, tenant: str, vacancy_id: str) -> Item | None: ...

    def put_link(self, link: SelfServiceLink) -> None: ...

    def get_link(self, tenant: str, link_id: str) -> SelfServiceLink | None: ...

    def consume_link(self, tenant: str, link_id: str, *, used_at: datetime, used_for: str, request_id: str) -> bool: ...

    def save_request(self, request: SubjectRequest) -> None: ...

    def get_request(self, tenant: str, request_id: str) -> SubjectRequest | None: ...

    def delete_record(self, item_key: Item) -> bool: ...

    def anonymise(self, application_key: Item, copy: Item) -> bool: ...

    def add_refs(self, tenant: str, person_id: str, delta: int) -> int | None: ...

    def delete_person(self, tenant: str, person_id: str) -> None: ...

    def mark_exports(self, tenant: str, person_id: str) -> None: ...


class DynamoSubjectStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def _get(self, item_key: Item) -> Item | None:
        item: Item | None = self.client.get_item(TableName=self._table, Key=item_key, ConsistentRead=True).get("Item")
        return item

    def person(self, tenant: str, person_id: str) -> Item | None:
        return self._get(person_key(tenant, person_id))

    def vacancy(self, tenant: str, vacancy_id: str) -> Item | None:
        return self._get(vacancy_key(tenant, vacancy_id))

    def records(self, tenant: str, person_id: str) -> list[Item]:
        """The person's applications, candidates and registrations (not the person item)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_PERSON_INDEX,
            "KeyConditionExpression": "person_key = :p",
            "ExpressionAttributeValues": {":p": {"S": person_pk(tenant, person_id)}},
        }
        items: list[Item] = []
        while True:
            page = self.client.query(**kwargs)
            items.extend(i for i in page.get("Items", []) if i["sk"]["S"] != "PERSON")
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put_link(self, link: SelfServiceLink) -> None:
        self.client.put_item(
            TableName=self._table,
            Item=to_item(link, link_key(link.tenant, link.link_id)),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_link(self, tenant: str, link_id: str) -> SelfServiceLink | None:
        item = self._get(link_key(tenant, link_id))
        return from_item(SelfServiceLink, item) if item else None

    def consume_link(self, tenant: str, link_id: str, *, used_at: datetime, used_for: str, request_id: str) -> bool:
        """Mark the link used, once: False when it is unknown or was used before."""
        try:
            self.client.update_item(
                TableName=self._table,
                Key=link_key(tenant, link_id),
                UpdateExpression="SET used_at = :at, used_for = :for, request_id = :rid",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(used_at)",
                ExpressionAttributeValues={
                    ":at": _attr(used_at),
                    ":for": {"S": used_for},
                    ":rid": {"S": request_id},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def save_request(self, request: SubjectRequest) -> None:
        # `seconds_taken` is fractional: stored as a number outside the integer-only item mapping.
        item = to_item(
            request.model_copy(update={"seconds_taken": None}), request_key(request.tenant, request.request_id)
        )
        if request.seconds_taken is not None:
            item["seconds_taken"] = {"N": f"{request.seconds_taken:.6f}"}
        self.client.put_item(TableName=self._table, Item=item)

    def get_request(self, tenant: str, request_id: str) -> SubjectRequest | None:
        item = self._get(request_key(tenant, request_id))
        if item is None:
            return None
        seconds = item.pop("seconds_taken", None)
        request = from_item(SubjectRequest, item)
        return request.model_copy(update={"seconds_taken": float(seconds["N"])}) if seconds else request

    def delete_record(self, item_key: Item) -> bool:
        """Delete one record; False when it was gone already."""
        try:
            self.client.delete_item(TableName=self._table, Key=item_key, ConditionExpression="attribute_exists(pk)")
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def anonymise(self, application_key: Item, copy: Item) -> bool:
        """Put the anonymised copy and delete the application in one transaction (the copy exists exactly when
        the application is gone); False when the application was gone already."""
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": copy,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": application_key,
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons") or []
            if len(reasons) == 2 and reasons[1].get("Code") == "ConditionalCheckFailed":
                return False
            raise DependencyFailure("could not anonymise an application") from None
        return True

    def add_refs(self, tenant: str, person_id: str, delta: int) -> int | None:
        """Add `delta` to the person's `refs`; the new value, or None when the person item is gone."""
        try:
            answer = self.client.update_item(
                TableName=self._table,
                Key=person_key(tenant, person_id),
                UpdateExpression="ADD refs :d",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":d": {"N": str(delta)}},
                ReturnValues="UPDATED_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return int(answer["Attributes"]["refs"]["N"])

    def delete_person(self, tenant: str, person_id: str) -> None:
        self.client.delete_item(TableName=self._table, Key=person_key(tenant, person_id))

    def mark_exports(self, tenant: str, person_id: str) -> None:
        """Note on the person item that a subject-access export exists (helper E: the sweep purges exports only
        for people so marked). Written before the export; it creates the item when the person has none yet (the
        identity attributes only, no refs), so a later person item keeps the marker."""
        self.client.update_item(
            TableName=self._table,
            Key=person_key(tenant, person_id),
            UpdateExpression=(
                "SET has_exports = :true, tenant = if_not_exists(tenant, :t),"
                " person_id = if_not_exists(person_id, :p), person_key = if_not_exists(person_key, :pk)"
            ),
            ExpressionAttributeValues={
                ":true": {"BOOL": True},
                ":t": {"S": tenant},
                ":p": {"S": person_id},
                ":pk": {"S": person_pk(tenant, person_id)},
            },
        )


def _attr(value: Any) -> dict[str, Any]:
    attr = to_attribute(value)
    assert attr is not None
    return attr
