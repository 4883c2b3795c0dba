"""Auditor exports of the audit trail (issue 13, section 8; docs/audit-exports.md), added to the audit construct by
`add_audit_exports(audit, bucket=..., platform_table=...)`:

- the two routes (POST /v1/audit-exports, GET /v1/audit-exports/{export_id}) on the audit API function;
- the export worker, started by the API with an asynchronous invocation (no queue, rule or permission to deploy:
  only an IAM statement) and daily by a schedule that exports the previous UTC day of every tenant; its failed
  runs go to the domain's one dead-letter queue of rule targets;
- a read-only role for auditors who pull exports straight from S3;
- a Glue database and table over the exports, so Athena can query the entries (partition projection by tenant and
  export: no crawler, no partitions to register).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3

from infra import constants
from infra.constructs.auditor_grants import auditor_grant_reads
from infra.constructs.domain import DomainConstruct, TableUse, audit_appends
from infra.nag import acknowledge

API_HANDLER = "functions.audit.handlers.api.lambda_handler"
WORKER_HANDLER = "functions.audit.handlers.export_worker.lambda_handler"
ROUTES = (("POST", "/v1/audit-exports"), ("GET", "/v1/audit-exports/{export_id}"))
JOB_KEYS = "T#*#AUDITEXPORT"  # export jobs in the audit table (functions/audit/dal/exports.py)
CHAIN_KEYS = ("T#*#AUDIT#*", "AUDIT#TENANTS")  # the chains and the tenant list (functions/audit/dal/chain.py)
EXPORTS_PREFIX = "audit/exports/"
# Half an hour after midnight UTC: the digest of 23:00..24:00 is written at 00:05 (infra/constructs/audit.py).
SCHEDULE = events.Schedule.cron(minute="30", hour="0")
WORKER_TIMEOUT_SECONDS = 900  # a month of entries streamed from the table into S3
# CDK context: the IAM principals of this account allowed to assume the auditor role, as `role/<name>` or
# `user/<name>`; without it, the account's root with MFA (an administrator then delegates by IAM policy).
AUDITOR_PRINCIPALS_CONTEXT = "auditorPrincipals"
_PRINCIPAL = re.compile(r"^(role|user)/[\w+=,.@/-]{1,512}$")
TABLE_NAME = "audit_entries"


@dataclass(frozen=True)
class AuditExports:
    api: lambda_.Function
    worker: lambda_.Function
    schedule: events.Rule
    auditor_role: iam.Role
    database: glue.CfnDatabase
    table: glue.CfnTable


def add_audit_exports(audit: DomainConstruct, *, bucket: s3.IBucket, platform_table: dynamodb.ITable) -> AuditExports:
    """The exports of `audit` (the audit construct: its table, the Object Lock `bucket`); `platform_table` holds the
    auditors' grants, which the permission check reads."""
    worker = _build_worker(audit, bucket)
    api = _build_routes(audit, bucket, platform_table, worker)
    schedule = events.Rule(
        audit,
        "AuditExportSchedule",
        description="Daily export of the previous UTC day of every tenant's audit trail (internal audit)",
        schedule=SCHEDULE,
        targets=[
            targets.LambdaFunction(
                worker, dead_letter_queue=audit.rule_dead_letters, retry_attempts=constants.RULE_TARGET_RETRIES
            )
        ],
    )
    role = _build_auditor_role(audit, bucket)
    database, table = _build_catalog(audit, bucket)
    return AuditExports(api, worker, schedule, role, database, table)


def _build_worker(audit: DomainConstruct, bucket: s3.IBucket) -> lambda_.Function:
    table = audit.table
    fn = audit.function(
        "AuditExportWorker",
        WORKER_HANDLER,
        description="Writes auditor exports of the audit trail (on request and daily) to the Object Lock bucket",
        reads=[TableUse(table, ("Query",), leading_keys=(*CHAIN_KEYS, JOB_KEYS))],
        writes=[TableUse(table, ("PutItem",), leading_keys=(JOB_KEYS,)), audit_appends(table)],
        timeout_seconds=WORKER_TIMEOUT_SECONDS,
    )
    # Digests and public keys are read, exports written (multipart: AbortMultipartUpload when a run fails).
    audit.allow_bucket(
        fn,
        bucket,
        ["s3:GetObject", "s3:ListBucket"],
        prefix="audit/",
        env="EXPORT_BUCKET_NAME",
        holding="the digests and public keys an export copies (audit/digests/, audit/public-keys/)",
    )
    audit.allow_bucket(
        fn,
        bucket,
        ["s3:PutObject", "s3:AbortMultipartUpload"],
        prefix=EXPORTS_PREFIX,
        holding="auditor exports, audit/exports/<tenant>/<export id or scheduled/date>/",
    )
    # A run that fails after Lambda's two retries (asynchronous invocations: the API's, the schedule's) goes to the
    # domain's one dead-letter queue, not a queue of its own (two resources fewer: queue and alarm).
    queue = audit.rule_dead_letters
    cfn: lambda_.CfnFunction = fn.node.default_child  # type: ignore[assignment]
    cfn.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(target_arn=queue.queue_arn)
    audit.foundation.allow(fn, ["sqs:SendMessage"], [queue.queue_arn])
    audit.foundation.allow(
        fn,
        ["kms:GenerateDataKey", "kms:Decrypt"],
        [audit.foundation.data_key.key_arn],
        {"StringEquals": {"kms:ViaService": f"sqs.{Aws.REGION}.amazonaws.com"}},
    )
    return fn


def _build_routes(
    audit: DomainConstruct, bucket: s3.IBucket, platform_table: dynamodb.ITable, worker: lambda_.Function
) -> lambda_.Function:
    table = audit.table
    fn: lambda_.Function | None = None
    for method, path in ROUTES:
        # No scopes: people call these with their ID token; `authorize` admits compliance officers and auditors
        # holding a grant (read from the platform table).
        fn = audit.route(
            method,
            path,
            handler=API_HANDLER,
            name="AuditApi",
            reads=[TableUse(table, ("Query",), leading_keys=(JOB_KEYS,)), auditor_grant_reads(platform_table)],
            writes=[TableUse(table, ("PutItem",), leading_keys=(JOB_KEYS,)), audit_appends(table)],
            environment={"AUDIT_EXPORT_WORKER_NAME": worker.function_name},
        )
    assert fn is not None
    # Presigned links carry this role's authority: GetObject on the exports (and the manifest it reads).
    audit.allow_bucket(
        fn,
        bucket,
        ["s3:GetObject"],
        prefix=EXPORTS_PREFIX,
        env="EXPORT_BUCKET_NAME",
        holding="auditor exports, read to list their files and signed into 15-minute links",
    )
    audit.foundation.allow(fn, ["lambda:InvokeFunction"], [worker.function_arn])
    return fn


def _auditor_principal(audit: DomainConstruct) -> iam.IPrincipal:
    named = audit.node.try_get_context(AUDITOR_PRINCIPALS_CONTEXT)
    if not named:
        return iam.AccountRootPrincipal().with_conditions({"Bool": {"aws:MultiFactorAuthPresent": "true"}})
    names = [named] if isinstance(named, str) else list(named)
    bad = [n for n in names if not _PRINCIPAL.match(str(n))]
    if bad:
        raise ValueError(f"context {AUDITOR_PRINCIPALS_CONTEXT}: {bad} are not role/<name> or user/<name>")
    # Built from names, in this account: a principal of another account cannot be named.
    return iam.CompositePrincipal(
        *(iam.ArnPrincipal(f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:{name}") for name in names)
    )


def _build_auditor_role(audit: DomainConstruct, bucket: s3.IBucket) -> iam.Role:
    """Read-only: the audit prefix of the Object Lock bucket (objects and listing) and its key through S3."""
    assert bucket.encryption_key is not None
    role = iam.Role(
        audit,
        "AuditorExportReader",
        description="Auditors pull audit exports, digests and public keys from the Object Lock bucket (read only)",
        assumed_by=_auditor_principal(audit),
        max_session_duration=Duration.hours(1),
        inline_policies={
            "ReadAuditExports": iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects("audit/*")]),
                    iam.PolicyStatement(
                        actions=["s3:ListBucket"],
                        resources=[bucket.bucket_arn],
                        conditions={"StringLike": {"s3:prefix": ["audit/*"]}},
                    ),
                    iam.PolicyStatement(
                        actions=["kms:Decrypt"],
                        resources=[bucket.encryption_key.key_arn],
                        conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}},
                    ),
                ]
            )
        },
    )
    logical_id = Stack.of(audit).get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/audit/*]",
        "Read only, and only the audit/ prefix of the Object Lock bucket: exports, digests and public keys, "
        "named by tenant and time",
    )
    return role


def _build_catalog(audit: DomainConstruct, bucket: s3.IBucket) -> tuple[glue.CfnDatabase, glue.CfnTable]:
    """Entries of the exports for Athena: each line `<chain hash>\\t<canonical entry JSON>` read as two columns,
    partitioned (by projection, nothing to register) by tenant and export, both given in the query."""
    # No name: CloudFormation names the database (Ref), as every other resource here (no hard-coded names); the
    # stack's output `AuditCatalogDatabase` gives it to Athena users.
    database = glue.CfnDatabase(
        audit,
        "AuditExportsDatabase",
        catalog_id=Aws.ACCOUNT_ID,
        database_input=glue.CfnDatabase.DatabaseInputProperty(
            description="Auditor exports of the audit trail (docs/audit-exports.md)"
        ),
    )
    location = f"s3://{bucket.bucket_name}/{EXPORTS_PREFIX}"
    table = glue.CfnTable(
        audit,
        "AuditExportsTable",
        catalog_id=Aws.ACCOUNT_ID,
        database_name=database.ref,
        table_input=glue.CfnTable.TableInputProperty(
            name=TABLE_NAME,
            description="One row per exported audit entry: its chain hash and its canonical JSON",
            table_type="EXTERNAL_TABLE",
            parameters={
                "classification": "csv",
                "projection.enabled": "true",
                "projection.tenant.type": "injected",
                "projection.export.type": "injected",
                "storage.location.template": f"{location}${{tenant}}/${{export}}/entries/",
            },
            partition_keys=[
                glue.CfnTable.ColumnProperty(name="tenant", type="string", comment="The tenant (query: tenant = ...)"),
                glue.CfnTable.ColumnProperty(
                    name="export",
                    type="string",
                    comment="The export id, or scheduled/<yyyy-mm-dd> (query: export = ...)",
                ),
            ],
            storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                location=location,
                input_format="org.apache.hadoop.mapred.TextInputFormat",
                output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                serde_info=glue.CfnTable.SerdeInfoProperty(
                    serialization_library="org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                    parameters={"field.delim": "\t", "serialization.format": "\t"},
                ),
                columns=[
                    glue.CfnTable.ColumnProperty(
                        name="chain_hash", type="string", comment="Hex SHA-256 chain hash (an index, not evidence)"
                    ),
                    glue.CfnTable.ColumnProperty(
                        name="entry",
                        type="string",
                        comment="The canonical entry (RFC 8785 JSON): json_extract_scalar(entry, '$.actor') etc.",
                    ),
                ],
            ),
        ),
    )
    table.add_resource_dependency(database)
    return database, table
