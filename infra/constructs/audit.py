"""The audit domain (issue 13): the audit table, the single writer that links it, the signed digests, and the
auditor of refusals made by the gateway itself.

- Requests insert inbox items only (shared/audit.py; IAM: PutItem on `T#*#AUDITIN#*` keys, `audit_appends`).
- The table's stream feeds the linker (functions/audit/handlers/linker.py), the one function that writes the
  chain; it counts every change that is not an insert (`AuditItemsChanged`, alarmed).
- The linker also counts reads, exports and refusals per actor and raises `AlertRaised` past the tenant's
  thresholds (infra/constructs/audit_anomaly.py, docs/audit-alerts.md).
- Auditor exports, their schedule, the auditors' read-only role and the Glue catalogue:
  infra/constructs/audit_exports.py (added by the stack once the platform table, which holds the grants, exists).
- An hourly job signs a digest per tenant with an asymmetric KMS key and writes it, and the key's public half,
  to the Object Lock bucket (`If-None-Match`). The key policy forbids disabling, deleting or re-policying the
  audit keys.
"""

from __future__ import annotations

import jsii
from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as log_destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants
from infra.constructs.api import ApiConstruct
from infra.constructs.audit_anomaly import add_alert_policy_routes, add_anomaly_detection
from infra.constructs.domain import DomainConstruct, TableUse, audit_appends, only
from infra.constructs.foundation import FoundationConstruct
from infra.constructs.storage import StorageConstruct
from infra.nag import acknowledge

# Only refusals where no function ran: functions audit their own refusals with the verified tenant.
GATEWAY_REFUSALS = '{ ($.status = "401" || $.status = "403") && $.integrationStatus = "-" }'
_LINKER = "functions.audit.handlers.linker.lambda_handler"
_DIGEST = "functions.audit.handlers.digest.lambda_handler"
_DIGEST_MINUTE = "5"  # a few minutes after each hour, when the last period's entries are linked
# Nobody, the account's administrators included, may switch off, delete or re-policy an audit key: the locked
# exports and digests must stay readable and verifiable for as long as Object Lock keeps them.
PROTECTED_KEY_ACTIONS = ["kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"]


class AuditConstruct(DomainConstruct):
    TABLE_ID = "AuditTable"
    TABLE_KEY = "audit"
    TABLE_STREAM = dynamodb.StreamViewType.NEW_AND_OLD_IMAGES
    TABLE_TTL = "expires_at"  # the anomaly detector's counters only (functions/audit/dal/anomaly.py)

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: FoundationConstruct,
        api: ApiConstruct,
        storage: StorageConstruct,
    ) -> None:
        super().__init__(scope, construct_id, foundation=foundation, api=api)
        self.exports_bucket = storage.audit_exports
        protect_key(foundation.audit_key, prod=foundation.stage.is_prod)
        self.signing_key = self._build_signing_key()
        self._build_refusal_auditor(api)
        add_anomaly_detection(self, self._build_linker())
        add_alert_policy_routes(self)
        self._build_digests()

    def _build_signing_key(self) -> kms.Key:
        key = kms.Key(
            self,
            "DigestSigningKey",
            description="Signs the audit trail's hourly digests (ECDSA P-256)",
            key_spec=kms.KeySpec.ECC_NIST_P256,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=self.foundation.stage.removal_policy,
            pending_window=self.foundation.stage.key_pending_window,
        )
        protect_key(key, prod=self.foundation.stage.is_prod)
        return key

    def _build_refusal_auditor(self, api: ApiConstruct) -> None:
        fn = self.function(
            "GatewayRefusalAuditor",
            "functions.platform.handlers.audit_refusals.lambda_handler",
            description="Audits requests that the API gateway refused (401/403 before any function ran)",
            writes=[audit_appends(self.table)],
            asynchronous=True,
        )
        logs.SubscriptionFilter(
            self,
            "GatewayRefusals",
            log_group=api.access_log_group,
            destination=log_destinations.LambdaDestination(fn),
            filter_pattern=logs.FilterPattern.literal(GATEWAY_REFUSALS),
        )

    def _chain_writes(self) -> TableUse:
        """The linker's inserts: chain entries and markers (`T#<tenant>#AUDIT#<shard>`), the tenant list."""
        return TableUse(self.table, ("PutItem",), leading_keys=("T#*#AUDIT#*", "AUDIT#TENANTS"))

    def _build_linker(self) -> lambda_.Function:
        fn = self.function(
            "Linker",
            _LINKER,
            description="Links the audit entries requests inserted into each tenant's hash chains (table stream)",
            reads=[only(self.table, "Query")],  # a chain's head
            writes=[self._chain_writes()],  # TransactWriteItems of Puts is authorised as PutItem
        )
        dead_letters = self.foundation.dead_letter_queue(self, "LinkerDeadLetters", "audit stream batches")
        # The mapping and its grants written out: CDK's DynamoEventSource and SqsDlq would also grant the keys for
        # encryption (kms:GenerateDataKey*, kms:ReEncrypt*), which reading a stream does not need.
        stream_arn = self.table.table_stream_arn
        assert stream_arn is not None
        lambda_.EventSourceMapping(
            self,
            "LinkerStream",
            target=fn,
            event_source_arn=stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=100,
            max_batching_window=Duration.seconds(1),
            bisect_batch_on_error=True,
            retry_attempts=10,
            on_failure=_QueueOnFailure(dead_letters),
        )
        # What the failure destination needs, and no more: SqsDlq would grant the queue key's encryption wildcards.
        self.foundation.allow(fn, ["sqs:SendMessage"], [dead_letters.queue_arn])
        self._allow_key(fn, self.foundation.data_key, "sqs", write=True)
        self.foundation.allow(fn, ["dynamodb:ListStreams"], ["*"])
        self.foundation.allow(
            fn, ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"], [stream_arn]
        )
        self._allow_key(fn, self.foundation.audit_key, "dynamodb", write=False)
        acknowledge(
            fn.role,  # type: ignore[arg-type]
            "AwsSolutions-IAM5[Resource::*]",
            "dynamodb:ListStreams supports no resource-level permissions; the stream itself is named",
        )
        self.foundation.alarm(
            self,
            "AuditItemsChangedAlarm",
            "An audit item was modified or deleted: nothing in the system does that (tampering, or a restore)",
            cloudwatch.Metric(
                namespace=constants.METRICS_NAMESPACE,
                metric_name="AuditItemsChanged",
                dimensions_map={"service": constants.SERVICE_NAME},
                statistic="Sum",
                period=Duration.minutes(5),
            ),
        )
        return fn

    def _build_digests(self) -> None:
        fn = self.function(
            "DigestJob",
            _DIGEST,
            description="Writes each tenant's signed hourly digest of the audit chain to the Object Lock bucket",
            reads=[only(self.table, "Query")],  # tenants, heads, lines, the last digest
            writes=[TableUse(self.table, ("PutItem",), leading_keys=("T#*#AUDIT#DIGEST",))],
            environment={"AUDIT_SIGNING_KEY_ARN": self.signing_key.key_arn},
            timeout_seconds=300,
            asynchronous=True,  # started by the schedule: a failed run's event is kept in its DLQ
        )
        self.allow_bucket(
            fn,
            self.exports_bucket,
            ["s3:PutObject", "s3:GetObject"],
            prefix="audit/",
            env="EXPORT_BUCKET_NAME",
            holding="audit digests and the signing key's public half, audit/digests/<tenant>/..., audit/public-keys/",
        )
        self.foundation.allow(fn, ["kms:Sign", "kms:GetPublicKey"], [self.signing_key.key_arn])
        events.Rule(
            self,
            "DigestSchedule",
            description="Hourly signed digests of the audit trail",
            schedule=events.Schedule.cron(minute=_DIGEST_MINUTE),
            targets=[
                targets.LambdaFunction(
                    fn,
                    dead_letter_queue=self.rule_dead_letters,
                    retry_attempts=constants.RULE_TARGET_RETRIES,
                )
            ],
        )


@jsii.implements(lambda_.IEventSourceDlq)
class _QueueOnFailure:
    """An event source mapping's on-failure queue, bound without granting anything (the caller grants)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(self, _target: lambda_.IEventSourceMapping, _handler: lambda_.IFunction) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self._queue.queue_arn)


def protect_key(key: kms.Key, *, prod: bool) -> None:
    """Deny disabling, re-policying and (in prod) deleting `key` to every principal (docs/decisions.md). A dev
    stack's keys may still be scheduled for deletion, so a trial stack can go. KMS refuses a policy that locks its
    author out of PutKeyPolicy unless the safety check is bypassed: that lock-out is the point here."""
    actions = PROTECTED_KEY_ACTIONS if prod else [a for a in PROTECTED_KEY_ACTIONS if a != "kms:ScheduleKeyDeletion"]
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AuditKeysAreNeverDisabledDeletedOrRepolicied",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=actions,
            resources=["*"],
        )
    )
    cfn_key: kms.CfnKey = key.node.default_child  # type: ignore[assignment]
    cfn_key.bypass_policy_lockout_safety_check = True
