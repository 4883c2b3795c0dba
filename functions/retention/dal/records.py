"""Applications, candidates, talent-pool registrations and fingerprints in the retention table (the layout is
functions/retention/dal/items.py): a port and its DynamoDB adapter.

Reads: a route's state is ONE consistent BatchGetItem (`snapshot`: the vacancy, the tenant's policy and the
records the route touches); a duplicate check is ONE more BatchGetItem of the fingerprint under every key
version still held, whatever the number of fingerprints on the vacancy (`matching_fingerprints`). Writes that
must hold together (an application, its person, its fingerprint and the candidate it turns into an applicant;
a registration and its person) are one TransactWriteItems whose conditions make a concurrent writer's change
a `StaleWrite` the use case retries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from functions.retention.dal.items import (
    application_key,
    candidate_key,
    fingerprint_key,
    from_attribute,
    from_item,
    person_key,
    person_pk,
    policy_key,
    registration_key,
    to_item,
    vacancy_key,
)
from functions.retention.dal.people import PersonWrite, StoredPerson, person_from_item, person_update
from functions.retention.models.entities import CandidateStatus, RetentionPolicy, VacancyKind, VacancyStatus
from functions.retention.models.people import Application, Candidate, Registration
from shared import clock
from shared.aws import LazyClient
from shared.errors import ConfigurationError, DependencyFailure

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_BATCH_GET_LIMIT = 100
_UNPROCESSED_ATTEMPTS = 5
_RETRYABLE_REASONS = frozenset({"ConditionalCheckFailed", "TransactionConflict"})


class StaleWrite(Exception):
    """A record changed between the read and the conditional write: read again and decide again."""


@dataclass(frozen=True)
class VacancyFacts:
    """What the records routes need to know of a vacancy (the vacancy item is written by the vacancy routes)."""

    tenant: str
    vacancy_id: str
    kind: VacancyKind
    status: VacancyStatus
    holds: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StoredApplication:
    application: Application
    matched_key_version: str | None = None  # the key version whose fingerprint matched (duplicates only)


@dataclass(frozen=True)
class Snapshot:
    """One consistent read of what a route decides on."""

    vacancy: VacancyFacts | None
    policy: RetentionPolicy
    application: StoredApplication | None = None
    person: StoredPerson | None = None
    candidate: Candidate | None = None
    registration: Registration | None = None


class RecordStore(Protocol):
    def snapshot(
        self,
        tenant: str,
        vacancy_id: str,
        *,
        application_id: str | None = None,
        person_id: str | None = None,
        candidate: bool = False,
        registration: bool = False,
    ) -> Snapshot: ...

    def matching_fingerprints(self, tenant: str, vacancy_id: str, lookups: Sequence[str]) -> set[str]: ...

    def create_application(
        self,
        stored: StoredApplication,
        *,
        person: PersonWrite,
        fingerprint: str | None,
        candidate: Candidate | None,
        candidate_was: CandidateStatus | None,
    ) -> None: ...

    def update_application(self, application: Application, *, previous_version: int) -> None: ...

    def get_application(self, tenant: str, vacancy_id: str, application_id: str) -> StoredApplication | None: ...

    def create_candidate(self, candidate: Candidate) -> None: ...

    def advance_candidate(self, candidate: Candidate, *, previous: CandidateStatus) -> None: ...

    def delete_candidate(self, tenant: str, vacancy_id: str, person_id: str, *, previous: CandidateStatus) -> None: ...

    def get_candidate(self, tenant: str, vacancy_id: str, person_id: str) -> Candidate | None: ...

    def create_registration(self, registration: Registration, *, person: PersonWrite) -> None: ...

    def update_person(self, person: PersonWrite) -> None: ...

    def get_registration(self, tenant: str, vacancy_id: str, person_id: str) -> Registration | None: ...


def _pk_sk(item_key: Mapping[str, Any]) -> tuple[str, str]:
    return item_key["pk"]["S"], item_key["sk"]["S"]


def vacancy_from_item(item: dict[str, Any]) -> VacancyFacts:
    return VacancyFacts(
        tenant=item["tenant"]["S"],
        vacancy_id=item["vacancy_id"]["S"],
        kind=VacancyKind(item.get("kind", {}).get("S", VacancyKind.STANDARD.value)),
        status=VacancyStatus(item["status"]["S"]),
        holds=frozenset(from_attribute(item["holds"])) if "holds" in item else frozenset(),
    )


def policy_from_item(tenant: str, item: dict[str, Any] | None) -> RetentionPolicy:
    """The tenant's policy item (written by the policy routes), or the defaults (the seed's maxima) if none."""
    if item is None:
        return RetentionPolicy(tenant=tenant)
    try:
        return from_item(RetentionPolicy, {**item, "tenant": {"S": tenant}})
    except ValueError:
        raise ConfigurationError(f"the retention policy of {tenant} has a shape this function cannot read") from None


def application_from_item(item: dict[str, Any]) -> StoredApplication:
    matched = item.get("matched_key_version", {}).get("S")
    return StoredApplication(application=from_item(Application, item), matched_key_version=matched)


class DynamoRecordStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    # --- reads ---------------------------------------------------------------------------------------------------

    def _batch_get(self, keys: list[dict[str, Any]], **options: Any) -> dict[tuple[str, str], dict[str, Any]]:
        """Every item of `keys` that exists, by (pk, sk): one BatchGetItem (more only for unprocessed keys)."""
        if len(keys) > _BATCH_GET_LIMIT:
            raise ValueError(f"at most {_BATCH_GET_LIMIT} keys per read")
        found: dict[tuple[str, str], dict[str, Any]] = {}
        request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True, **options}}
        for _ in range(_UNPROCESSED_ATTEMPTS):
            response = self.client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self._table, []):
                found[_pk_sk(item)] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
        raise DependencyFailure("DynamoDB left keys unprocessed after every retry")

    def snapshot(
        self,
        tenant: str,
        vacancy_id: str,
        *,
        application_id: str | None = None,
        person_id: str | None = None,
        candidate: bool = False,
        registration: bool = False,
    ) -> Snapshot:
        wanted: dict[str, dict[str, Any]] = {"vacancy": vacancy_key(tenant, vacancy_id), "policy": policy_key(tenant)}
        if application_id is not None:
            wanted["application"] = application_key(tenant, vacancy_id, application_id)
        if person_id is not None:
            wanted["person"] = person_key(tenant, person_id)
            if candidate:
                wanted["candidate"] = candidate_key(tenant, vacancy_id, person_id)
            if registration:
                wanted["registration"] = registration_key(tenant, vacancy_id, person_id)
        found = self._batch_get(list(wanted.values()))
        items = {name: found.get(_pk_sk(item_key)) for name, item_key in wanted.items()}
        vacancy, policy, application = items["vacancy"], items["policy"], items.get("application")
        person, cand, reg = items.get("person"), items.get("candidate"), items.get("registration")
        return Snapshot(
            vacancy=vacancy_from_item(vacancy) if vacancy else None,
            policy=policy_from_item(tenant, policy),
            application=application_from_item(application) if application else None,
            person=person_from_item(person) if person else None,
            candidate=from_item(Candidate, cand) if cand else None,
            registration=from_item(Registration, reg) if reg else None,
        )

    def matching_fingerprints(self, tenant: str, vacancy_id: str, lookups: Sequence[str]) -> set[str]:
        """Which of `lookups` (one fingerprint under each key version held) are stored against the vacancy: ONE
        BatchGetItem of point keys, however many fingerprints the vacancy holds (the seed's "compared against all"
        done as a keyed look-up)."""
        if not lookups:
            return set()
        by_key = {_pk_sk(fingerprint_key(tenant, vacancy_id, fp)): fp for fp in lookups}
        found = self._batch_get(
            [fingerprint_key(tenant, vacancy_id, fp) for fp in lookups],
            ProjectionExpression="#pk, #sk",
            ExpressionAttributeNames={"#pk": "pk", "#sk": "sk"},
        )
        return {by_key[k] for k in found if k in by_key}

    def get_application(self, tenant: str, vacancy_id: str, application_id: str) -> StoredApplication | None:
        item = self._get(application_key(tenant, vacancy_id, application_id))
        return application_from_item(item) if item else None

    def get_candidate(self, tenant: str, vacancy_id: str, person_id: str) -> Candidate | None:
        item = self._get(candidate_key(tenant, vacancy_id, person_id))
        return from_item(Candidate, item) if item else None

    def get_registration(self, tenant: str, vacancy_id: str, person_id: str) -> Registration | None:
        item = self._get(registration_key(tenant, vacancy_id, person_id))
        return from_item(Registration, item) if item else None

    def _get(self, item_key: dict[str, Any]) -> dict[str, Any] | None:
        return self.client.get_item(TableName=self._table, Key=item_key, ConsistentRead=True).get("Item")

    # --- writes --------------------------------------------------------------------------------------------------

    def _transact(self, operations: list[dict[str, Any]]) -> None:
        try:
            self.client.transact_write_items(TransactItems=operations)  # type: ignore[arg-type]
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = {reason.get("Code") for reason in exc.response.get("CancellationReasons", [])}
            if reasons & _RETRYABLE_REASONS:
                raise StaleWrite("a record changed while it was written") from None
            raise

    def _vacancy_still_takes_records(self, tenant: str, vacancy_id: str) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": vacancy_key(tenant, vacancy_id),
                "ConditionExpression": "attribute_exists(pk) AND #status <> :removed",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":removed": {"S": VacancyStatus.REMOVED.value}},
            }
        }

    def create_application(
        self,
        stored: StoredApplication,
        *,
        person: PersonWrite,
        fingerprint: str | None,
        candidate: Candidate | None,
        candidate_was: CandidateStatus | None,
    ) -> None:
        """The first submission: the application, its person (+1 ref), the fingerprint (only if absent: a
        fingerprint never changes once stored) and the candidate turned applicant, all or nothing."""
        application = stored.application
        tenant, vacancy_id = application.tenant, application.vacancy_id
        operations: list[dict[str, Any]] = [
            self._vacancy_still_takes_records(tenant, vacancy_id),
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(
                        application,
                        application_key(tenant, vacancy_id, application.application_id),
                        person_key=person_pk(tenant, application.person_id),
                        matched_key_version=stored.matched_key_version,
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Update": person_update(self._table, person)},
        ]
        if fingerprint is not None:
            # Nothing but the key and the tenant: no applicant, application or person id, no time.
            item = {**fingerprint_key(tenant, vacancy_id, fingerprint), "tenant": {"S": tenant}}
            operations.append(
                {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
            )
        if candidate is not None and candidate_was is not None:
            operations.append({"Update": self._candidate_applied(candidate, candidate_was)})
        self._transact(operations)

    def _candidate_applied(self, candidate: Candidate, was: CandidateStatus) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":status": {"S": candidate.status.value},
            ":was": {"S": was.value},
            ":application_id": {"S": candidate.application_id or ""},
            ":applied_at": {"S": clock.isoformat(candidate.applied_at or clock.now())},
        }
        return {
            "TableName": self._table,
            "Key": candidate_key(candidate.tenant, candidate.vacancy_id, candidate.person_id),
            "UpdateExpression": (
                "SET #status = :status, application_id = :application_id, applied_at = :applied_at REMOVE candidate_due"
            ),
            "ConditionExpression": "attribute_exists(pk) AND #status = :was",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values,
        }

    def update_application(self, application: Application, *, previous_version: int) -> None:
        """A later submission: stages and outcome only, if the stored application is still `previous_version`."""
        item_key = application_key(application.tenant, application.vacancy_id, application.application_id)
        try:
            self.client.update_item(
                TableName=self._table,
                Key=item_key,
                UpdateExpression="SET stages = :stages, outcome = :outcome, version = :version",
                ConditionExpression="version = :previous",
                ExpressionAttributeValues={
                    ":stages": {"L": [{"S": stage} for stage in application.stages]},
                    ":outcome": {"S": application.outcome.value},
                    ":version": {"N": str(application.version)},
                    ":previous": {"N": str(previous_version)},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise StaleWrite(application.application_id) from None

    def create_candidate(self, candidate: Candidate) -> None:
        item = to_item(
            candidate,
            candidate_key(candidate.tenant, candidate.vacancy_id, candidate.person_id),
            person_key=person_pk(candidate.tenant, candidate.person_id),
        )
        self._transact(
            [
                self._vacancy_still_takes_records(candidate.tenant, candidate.vacancy_id),
                {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )

    def advance_candidate(self, candidate: Candidate, *, previous: CandidateStatus) -> None:
        """suggested -> invited: the status and its time, and the limit goes (invited candidates are kept)."""
        values: dict[str, Any] = {":status": {"S": candidate.status.value}, ":previous": {"S": previous.value}}
        expression = "SET #status = :status"
        if candidate.invited_at is not None:
            expression += ", invited_at = :invited_at"
            values[":invited_at"] = {"S": clock.isoformat(candidate.invited_at)}
        if candidate.candidate_due is None:
            expression += " REMOVE candidate_due"
        try:
            self.client.update_item(
                TableName=self._table,
                Key=candidate_key(candidate.tenant, candidate.vacancy_id, candidate.person_id),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk) AND #status = :previous",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise StaleWrite(candidate.person_id) from None

    def delete_candidate(self, tenant: str, vacancy_id: str, person_id: str, *, previous: CandidateStatus) -> None:
        """Only the candidate's link to the vacancy; the talent-pool registration and the person stay."""
        try:
            self.client.delete_item(
                TableName=self._table,
                Key=candidate_key(tenant, vacancy_id, person_id),
                ConditionExpression="#status = :previous AND attribute_not_exists(holds)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":previous": {"S": previous.value}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise StaleWrite(person_id) from None

    def create_registration(self, registration: Registration, *, person: PersonWrite) -> None:
        tenant, vacancy_id = registration.tenant, registration.vacancy_id
        item = to_item(
            registration,
            registration_key(tenant, vacancy_id, registration.person_id),
            person_key=person_pk(tenant, registration.person_id),
        )
        self._transact(
            [
                self._vacancy_still_takes_records(tenant, vacancy_id),
                {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Update": person_update(self._table, person)},
            ]
        )

    def update_person(self, person: PersonWrite) -> None:
        self.client.update_item(**person_update(self._table, person))
