"""The retention domain (seed 002): policies, the records whose timeline they follow, legal holds, the applicant's
own requests, the daily sweep and application fingerprints.

- The ATS reports vacancies, applications, candidates and talent-pool registrations (integration clients, scope
  `ats/retention.write`); people read them back and manage the policy and legal holds.
- The table keeps everything of a vacancy in its partition and indexes each due kind in a sparse index
  (functions/retention/dal/items.py); a second table keeps each person's data key, without point-in-time
  recovery, so that destroying the key erases the person from every backup too (crypto-shredding).
- Applicants act for themselves through one-time signed links on three public routes (the token is the
  credential); every removal is told to the tenant's ATS by a consumer of `RecordPurged`.
- The daily sweep and the recompute after a policy change are Step Functions workflows that page through the
  due indexes, one bounded page per task.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from functions.retention.dal.items import BY_PERSON_INDEX, PEOPLE_BY_REFS_INDEX
from functions.retention.models.entities import DueKind
from infra.constructs.api import ApiConstruct
from infra.constructs.auditor_grants import auditor_grant_reads
from infra.constructs.domain import DomainConstruct, TableUse, audit_appends, only
from infra.constructs.foundation import FoundationConstruct
from infra.constructs.retention_sweep import sweep_definition
from infra.constructs.storage import StorageConstruct
from infra.constructs.tables import tenant_table
from infra.nag import acknowledge
from shared.auth import Scope

_HANDLERS = "functions.retention.handlers"
_VACANCIES = f"{_HANDLERS}.vacancies.lambda_handler"
_POLICY = f"{_HANDLERS}.policy.lambda_handler"
_RECORDS = f"{_HANDLERS}.records.lambda_handler"
_HOLDS = f"{_HANDLERS}.holds.lambda_handler"
_SUBJECTS = f"{_HANDLERS}.subjects.lambda_handler"
_NOTIFY = f"{_HANDLERS}.notify.lambda_handler"
_SWEEP = f"{_HANDLERS}.sweep.lambda_handler"
_RECOMPUTE = f"{_HANDLERS}.recompute.lambda_handler"

_TRANSACT = ("ConditionCheckItem", "PutItem", "UpdateItem", "DeleteItem")  # what TransactWriteItems needs
_STEP_TIMEOUT_SECONDS = 120
_SWEEP_HOUR_UTC = "2"


class RetentionConstruct(DomainConstruct):
    TABLE_ID = "RetentionTable"
    TABLE_INDEXES = {
        **{kind.index_name: ("tenant", kind.attribute) for kind in DueKind},
        BY_PERSON_INDEX: ("person_key", "sk"),
        PEOPLE_BY_REFS_INDEX: ("tenant", "refs:N"),
    }

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: FoundationConstruct,
        api: ApiConstruct,
        audit_table: dynamodb.ITable,
        storage: StorageConstruct,
        grants_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id, foundation=foundation, api=api)
        self._audit = audit_table
        self._grants = grants_table
        self._storage = storage
        self.keys_table = self._build_keys_table()
        self.tenant_secret("webhook/outbound", "Signs the removal notices sent to the tenant's ATS", session=True)
        self._build_vacancy_routes()
        self._build_policy()
        self._build_records()
        self._build_subjects()
        self._build_notifier()
        self._build_sweep()

    # --- tables ----------------------------------------------------------------------------------------------------

    def _build_keys_table(self) -> dynamodb.Table:
        table = tenant_table(
            self, "RetentionKeysTable", self.foundation.data_key, self.foundation.stage, point_in_time_recovery=False
        )
        acknowledge(
            table,
            "AwsSolutions-DDB3",
            "Per-person data keys must not survive their deletion in any backup: erasing a person destroys their "
            "key, and a point-in-time restore of the retention table then brings back only ciphertext",
        )
        return table

    @property
    def _audited(self) -> list[TableUse]:
        return [audit_appends(self._audit)]

    @property
    def _audit_reads(self) -> list[TableUse]:
        # Nothing of the audit trail; a check of an auditor reads the auditor's grants (shared/access_grants.py).
        return [auditor_grant_reads(self._grants)]

    def _data_key_env(self) -> dict[str, str]:
        return {"DATA_KEY_ARN": self.foundation.data_key.key_arn}

    # --- routes ----------------------------------------------------------------------------------------------------

    def _build_vacancy_routes(self) -> None:
        for method, scopes in (("PUT", [Scope.RETENTION_WRITE]), ("GET", [])):
            self.route(
                method,
                "/v1/vacancies/{vacancy_id}",
                handler=_VACANCIES,
                reads=[only(self.table, "GetItem", "Query"), *self._audit_reads],
                writes=[only(self.table, *_TRANSACT), *self._audited],
                scopes=scopes,
            )

    def _build_policy(self) -> None:
        for method in ("GET", "PUT"):
            self.route(
                method,
                "/v1/retention-policy",
                handler=_POLICY,
                reads=[only(self.table, "GetItem"), *self._audit_reads],
                writes=[only(self.table, "PutItem"), *self._audited],
                bus=True,
            )
        step = self.function(
            "PolicyRecomputeStep",
            _RECOMPUTE,
            description="Recomputes the due dates a retention policy change shortens, one page per call",
            reads=[only(self.table, "GetItem", "Query"), *self._audit_reads],
            writes=[only(self.table, "UpdateItem"), *self._audited],
            timeout_seconds=_STEP_TIMEOUT_SECONDS,
        )
        self.allow_bucket(
            step,
            self._storage.audit_exports,
            ["s3:PutObject"],
            prefix="retention/",
            env="EXPORT_BUCKET_NAME",
        )
        self.workflow(
            "PolicyRecompute",
            self._recompute_definition(step),
            event_pattern=events.EventPattern(source=["ats.retention"], detail_type=["RetentionPolicyChanged"]),
            description="A retention policy change: recompute the due dates it shortens and report them",
        )

    def _recompute_definition(self, step: lambda_.IFunction) -> sfn.IChainable:
        """The first page takes the `RetentionPolicyChanged` event itself; each page hands its state to the next."""
        page = tasks.LambdaInvoke(self, "RecomputePage", lambda_function=step, payload_response_only=True)
        page.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(2), max_attempts=3, backoff_rate=2)
        done = sfn.Succeed(self, "RecomputeDone")
        return page.next(
            sfn.Choice(self, "RecomputeMore").when(sfn.Condition.boolean_equals("$.done", True), done).otherwise(page)
        )

    def _build_records(self) -> None:
        paths = [
            "/v1/vacancies/{vacancy_id}/applications/{application_id}",
            "/v1/vacancies/{vacancy_id}/candidates/{person_id}",
            "/v1/vacancies/{vacancy_id}/registrations/{person_id}",
        ]
        for path in paths:
            for method, scopes in (("PUT", [Scope.RETENTION_WRITE]), ("GET", [])):
                self.route(
                    method,
                    path,
                    handler=_RECORDS,
                    reads=[
                        only(self.table, "GetItem", "BatchGetItem", "Query"),
                        only(self.keys_table, "GetItem"),
                        *self._audit_reads,
                    ],
                    writes=[only(self.table, *_TRANSACT), only(self.keys_table, "PutItem"), *self._audited],
                    keys=[self.foundation.data_key],
                    secrets=["hmac"],
                    bus=True,
                    scopes=scopes,
                    environment=self._data_key_env(),
                )

    def _build_subjects(self) -> None:
        holds = [
            ("PUT", "/v1/legal-holds/{hold_id}"),
            ("GET", "/v1/legal-holds/{hold_id}"),
            ("GET", "/v1/legal-holds"),
            ("POST", "/v1/legal-holds/{hold_id}/release"),
        ]
        for method, path in holds:
            self.route(
                method,
                path,
                handler=_HOLDS,
                reads=[only(self.table, "GetItem", "Query"), *self._audit_reads],
                writes=[only(self.table, "PutItem", "UpdateItem"), *self._audited],
                bus=True,
            )
        subjects: list[tuple[str, str, list[str], bool]] = [
            ("POST", "/v1/people/{person_id}/self-service-links", [Scope.RETENTION_WRITE], False),
            ("POST", "/v1/self-service/access", [], True),
            ("POST", "/v1/self-service/leave-talent-pool", [], True),
            ("POST", "/v1/self-service/erasure", [], True),
            ("GET", "/v1/subject-requests/{request_id}", [], False),
        ]
        fn: lambda_.Function | None = None
        for method, path, scopes, public in subjects:
            fn = self.route(
                method,
                path,
                handler=_SUBJECTS,
                reads=[only(self.table, "GetItem", "Query"), only(self.keys_table, "GetItem"), *self._audit_reads],
                writes=[only(self.table, *_TRANSACT), only(self.keys_table, "DeleteItem"), *self._audited],
                keys=[self.foundation.data_key],
                secrets=["hmac"],
                bus=True,
                scopes=scopes,
                public=public,
                public_reason="an applicant without an account proves itself with a one-time signed link in the body",
                environment=self._data_key_env(),
            )
        assert fn is not None
        self.allow_bucket(
            fn,
            self._storage.archive,
            ["s3:PutObject", "s3:ListBucketVersions", "s3:DeleteObject", "s3:DeleteObjectVersion"],
            prefix="subject-access/",
            env="ARCHIVE_BUCKET_NAME",
        )

    def _build_notifier(self) -> None:
        self.consumer(
            "NotifyRemovals",
            _NOTIFY,
            source="ats.retention",
            detail_types=["RecordPurged"],
            reads=[only(self.table, "GetItem")],
            secrets=["webhook/outbound"],
        )

    def _build_sweep(self) -> None:
        step = self.function(
            "SweepStep",
            _SWEEP,
            description="The daily retention sweep: one bounded page of one phase per call",
            reads=[
                only(self.table, "GetItem", "Query", "BatchGetItem"),
                only(self.keys_table, "GetItem"),
                *self._audit_reads,
            ],
            writes=[
                only(self.table, *_TRANSACT, "BatchWriteItem"),
                only(self.keys_table, "DeleteItem"),
                *self._audited,
            ],
            bus=True,
            timeout_seconds=_STEP_TIMEOUT_SECONDS,
        )
        self.allow_bucket(
            step,
            self._storage.audit_exports,
            ["s3:PutObject"],
            prefix="retention/",
            env="EXPORT_BUCKET_NAME",
        )
        self.allow_bucket(
            step,
            self._storage.archive,
            ["s3:ListBucketVersions", "s3:DeleteObject", "s3:DeleteObjectVersion"],
            prefix="subject-access/",
            env="ARCHIVE_BUCKET_NAME",
        )
        self.workflow(
            "DailySweep",
            sweep_definition(self, step_function=step),
            schedule=events.Schedule.cron(hour=_SWEEP_HOUR_UTC, minute="0"),
            payload=events.RuleTargetInput.from_object({"dry_run": False}),
            description="The daily retention sweep: archive, remove and report what each tenant's policy makes due",
        )
