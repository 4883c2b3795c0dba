"""The messages domain (seed 000): candidate communications across email, SMS, in-app, portal and Teams.

- Providers call signed webhooks (SES through SNS, Twilio, SendGrid events and Inbound Parse, Microsoft Graph);
  each verifies with the tenant's secret, checks the payload parses, and queues it durably before answering.
- SES events also arrive on the account's default event bus (`aws.ses`), routed to a queue of their own.
- The ATS records messages through the API (integration clients, `ats/messages.write`): validated and queued.
- One ingest consumer drains every queue in batches: one read of every message a batch names, one conditional
  write per changed message (functions/messages/logic/ingest.py). What it cannot write goes back to its queue,
  then to the queue's alarmed DLQ: nothing is lost while DynamoDB is throttled or down.
- People and integrations search and read messages; content needs `messages:content:read`.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from functions.messages.dal.archive import ARCHIVE_PREFIX
from functions.messages.dal.capture import CAPTURE_PREFIX
from functions.messages.dal.exports import EXPORTS_PREFIX
from functions.messages.dal.items import INDEXES
from infra import constants
from infra.constructs.api import ApiConstruct
from infra.constructs.auditor_grants import auditor_grant_reads
from infra.constructs.domain import DomainConstruct, TableUse, audit_appends, only
from infra.constructs.foundation import FoundationConstruct
from infra.constructs.messages_export import export_definition
from infra.constructs.messages_tiering import tiering_definition
from infra.constructs.storage import StorageConstruct
from infra.nag import acknowledge

_HANDLERS = "functions.messages.handlers"
_API = f"{_HANDLERS}.api.lambda_handler"
_RECORD = f"{_HANDLERS}.record_api.lambda_handler"
_INGEST = f"{_HANDLERS}.ingest.lambda_handler"
_HOLDS = f"{_HANDLERS}.holds_api.lambda_handler"
_ERASE = f"{_HANDLERS}.on_record_purged.lambda_handler"
_REPORTS = f"{_HANDLERS}.reports_api.lambda_handler"
_SYNTHETIC = f"{_HANDLERS}.synthetic.lambda_handler"
_TIERING = f"{_HANDLERS}.tiering.lambda_handler"
_EXPORT_API = f"{_HANDLERS}.export_api.lambda_handler"
_EXPORT_WORKER = f"{_HANDLERS}.export_worker.lambda_handler"
_EXPORT_STEP_TIMEOUT_SECONDS = 900  # a step writes what it can in the time it has left, then hands over
_EXPORT_WORKFLOW_HOURS = 6
_TIERING_HOUR_UTC = "3"  # after the retention sweep (02:00)
_TIERING_STEP_TIMEOUT_SECONDS = 120
# What reading an archived message back needs, and what rewriting or removing its archive object needs besides.
_ARCHIVE_READ = ["s3:GetObject"]
_ARCHIVE_WRITE = ["s3:GetObject", "s3:PutObject", "s3:ListBucketVersions", "s3:DeleteObject", "s3:DeleteObjectVersion"]
SYNTHETIC_TENANT = "synthetic-probe"  # a tenant id reserved at onboarding for the end-to-end probe
_SYNTHETIC_MINUTES = 5
_INGEST_TIMEOUT_SECONDS = 60
# provider -> (handler module, what the tenant secret `webhook/<provider>` holds)
_WEBHOOKS = {
    "ses-sns": ("ses_sns_webhook", "ARNs of the SNS topics the tenant's SES configuration sets publish to"),
    "twilio": ("twilio_webhook", "Twilio auth token (signs X-Twilio-Signature)"),
    "sendgrid": ("sendgrid_webhook", "SendGrid Event Webhook verification key (ECDSA P-256, DER)"),
    "sendgrid-inbound": ("sendgrid_inbound_webhook", "SendGrid Inbound Parse security policy public key (DER)"),
    "graph": ("graph_webhook", "clientState of the tenant's Microsoft Graph subscriptions"),
}


class MessagesConstruct(DomainConstruct):
    TABLE_ID = "MessagesTable"
    TABLE_INDEXES = INDEXES
    TABLE_TTL = "expires_at"  # webhook deduplication markers (shared.webhooks.DynamoReplayGuard)

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: FoundationConstruct,
        audit_table: dynamodb.ITable,
        storage: StorageConstruct,
        grants_table: dynamodb.ITable,
        api: ApiConstruct | None = None,
    ) -> None:
        super().__init__(scope, construct_id, foundation=foundation, api=api)
        self._archive_bucket = storage.archive
        # The audit trail: every permission check and webhook refusal inserts its entries, reading nothing of it;
        # a check of an auditor reads the auditor's grants (shared/access_grants.py).
        self._audit: tuple[list[TableUse], list[TableUse]] = (
            [auditor_grant_reads(grants_table)],
            [audit_appends(audit_table)],
        )
        queues: list[sqs.Queue] = []
        replay = only(self.table, "PutItem", "UpdateItem")  # the dedup marker: a conditional put, then confirmed
        for provider, (module, description) in _WEBHOOKS.items():
            hook = self.webhook(
                provider,
                f"{_HANDLERS}.{module}.lambda_handler",
                reads=self._audit[0],
                writes=[replay, *self._audit[1]],
                description=description,
            )
            queues.append(hook.queue)

        api_queue = foundation.durable_queue(
            self, "ApiIngestQueue", "messages recorded through the API", visibility_timeout=self._visibility()
        )
        queues.append(api_queue)
        self._api_routes(api_queue)

        ses_queue = foundation.durable_queue(
            self, "SesEventsQueue", "SES events from EventBridge", visibility_timeout=self._visibility()
        )
        events.Rule(
            self,
            "SesEventsRule",
            description="Amazon SES events (event publishing to EventBridge) to the messages ingest queue",
            event_pattern=events.EventPattern(source=["aws.ses"]),  # the account's default bus, where SES publishes
            targets=[
                targets.SqsQueue(
                    ses_queue,
                    dead_letter_queue=self.rule_dead_letters,
                    retry_attempts=constants.RULE_TARGET_RETRIES,
                )
            ],
        )
        queues.append(ses_queue)
        inbound_mail, captured_queue = self._captured_mail(storage)
        queues.append(captured_queue)
        ingest = self._ingest(queues)
        # The ingest consumer reads the raw MIME the captured-mail events name.
        self.allow_bucket(
            ingest,
            inbound_mail,
            ["s3:GetObject"],
            prefix=CAPTURE_PREFIX,
            holding="raw MIME captured by SES receiving or a relay, inbound/<tenant>/<message id>",
        )
        self._holds_and_erasure()
        self._reports(api_queue)
        self._tiering()
        self._export(storage.audit_exports)
        self._monitoring()

    def _visibility(self) -> Duration:
        return Duration.seconds(6 * _INGEST_TIMEOUT_SECONDS)

    def _api_routes(self, api_queue: sqs.Queue) -> None:
        data_key = self.foundation.data_key
        audit_reads, audit_writes = self._audit
        # No scopes on the methods: people (ID tokens) and integrations (access tokens) both call them, and the
        # use case's permission check decides (recruiters record messages too).
        for path in ("/v1/messages", "/v1/message-batches"):
            recorder = self.route("POST", path, handler=_RECORD, reads=audit_reads, writes=audit_writes)
        recorder.add_environment("API_QUEUE_URL", api_queue.queue_url)
        self.foundation.allow(recorder, ["sqs:SendMessage"], [api_queue.queue_arn])
        self._allow_key(recorder, data_key, "sqs", write=True)

        reads = [only(self.table, "GetItem", "Query", "BatchGetItem"), *audit_reads]
        for method, path in (
            ("GET", "/v1/messages"),
            ("GET", "/v1/messages/{message_id}"),
            ("GET", "/v1/threads/{thread_id}"),
            ("GET", "/v1/message-policy"),
            ("PUT", "/v1/message-policy"),
        ):
            reader = self.route(
                method,
                path,
                handler=_API,
                reads=reads,
                writes=[*audit_writes, *([only(self.table, "PutItem")] if method == "PUT" else [])],
                keys=[data_key],
                secrets=["hmac"],
                environment={"DATA_KEY_ARN": data_key.key_arn},
            )
        self._archive(reader, _ARCHIVE_READ)  # a warm or cold message read back whole

    def _captured_mail(self, storage: StorageConstruct) -> tuple[s3.Bucket, sqs.Queue]:
        """Captured SMTP: SES receiving (an S3 action) or the tenant's relay writes raw MIME under
        `inbound/<tenant>/`; the bucket publishes Object Created to the default bus, where a rule queues it for
        the ingest consumer. The raw copies go after a few days: what is kept is the parsed, sealed message."""
        stage = self.foundation.stage
        bucket = s3.Bucket(
            self,
            "InboundMail",
            # SSE-S3: SES receiving writes here itself, and a KMS key would have to let SES generate data keys.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            server_access_logs_bucket=storage.access_logs,
            server_access_logs_prefix="inbound-mail/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="parsed",
                    prefix=CAPTURE_PREFIX,
                    expiration=Duration.days(constants.CAPTURED_MAIL_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=stage.removal_policy,
        )
        # EventBridge notifications as a bucket property (CDK's `event_bridge_enabled` deploys a custom resource).
        cfn_bucket: s3.CfnBucket = bucket.node.default_child  # type: ignore[assignment]
        cfn_bucket.add_property_override("NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)
        # SES receiving's S3 action, for this account's receipt rules only (SES developer guide, "Give permissions
        # to Amazon SES for email receiving").
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("ses.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{CAPTURE_PREFIX}*")],
                conditions={"StringEquals": {"AWS:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        queue = self.foundation.durable_queue(
            self, "CapturedMailQueue", "captured SMTP messages", visibility_timeout=self._visibility()
        )
        events.Rule(
            self,
            "CapturedMailRule",
            description="Raw MIME written to the inbound-mail bucket, to the messages ingest queue",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={"bucket": {"name": [bucket.bucket_name]}, "object": {"key": [{"prefix": CAPTURE_PREFIX}]}},
            ),
            targets=[
                targets.SqsQueue(
                    queue,
                    dead_letter_queue=self.rule_dead_letters,
                    retry_attempts=constants.RULE_TARGET_RETRIES,
                )
            ],
        )
        return bucket, queue

    def _ingest(self, queues: list[sqs.Queue]) -> lambda_.Function:
        fn = self.function(
            "Ingest",
            _INGEST,
            description="Applies queued message events in batches",
            reads=[only(self.table, "GetItem", "BatchGetItem", "Query")],  # Query: the tenant's active holds
            writes=[only(self.table, "PutItem", "BatchWriteItem")],
            keys=[self.foundation.data_key],
            secrets=["hmac"],
            bus=True,
            environment={"DATA_KEY_ARN": self.foundation.data_key.key_arn},
            timeout_seconds=_INGEST_TIMEOUT_SECONDS,
        )
        self._allow_key(fn, self.foundation.data_key, "sqs", write=False)
        for index, queue in enumerate(queues):
            self.foundation.allow(
                fn,
                ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
                [queue.queue_arn],
            )
            lambda_.EventSourceMapping(
                self,
                f"IngestEvents{index}",
                target=fn,
                event_source_arn=queue.queue_arn,
                batch_size=constants.CONSUMER_BATCH_SIZE,
                max_batching_window=Duration.seconds(constants.CONSUMER_BATCH_WINDOW_SECONDS),
                report_batch_item_failures=True,
            )
        return fn

    def _holds_and_erasure(self) -> None:
        """Legal holds and disclosure redaction (routes), and the erasure of a person's message content when the
        retention domain purges them, finished when a hold that held it back is released (consumers)."""
        data_key = self.foundation.data_key
        audit_reads, audit_writes = self._audit
        reads = [only(self.table, "GetItem", "Query", "BatchGetItem"), *audit_reads]
        for method, path in (
            ("GET", "/v1/message-holds"),
            ("PUT", "/v1/message-holds/{hold_id}"),
            ("GET", "/v1/message-holds/{hold_id}"),
            ("POST", "/v1/message-holds/{hold_id}/release"),
            ("POST", "/v1/messages/{message_id}/redaction"),
        ):
            holds_api = self.route(
                method,
                path,
                handler=_HOLDS,
                reads=reads,
                writes=[only(self.table, "PutItem", "UpdateItem", "BatchWriteItem"), *audit_writes],
                keys=[data_key],
                secrets=["hmac"],
                bus=True,
                environment={"DATA_KEY_ARN": data_key.key_arn},
            )
        grants: dict[str, Any] = {
            "reads": reads,
            "writes": [only(self.table, "PutItem", "DeleteItem", "BatchWriteItem"), *audit_writes],
            "keys": [data_key],
            "secrets": ["hmac"],
            "bus": True,
            "timeout_seconds": 120,
        }
        purged = self.consumer("EraseOnPurge", _ERASE, source="ats.retention", detail_types=["RecordPurged"], **grants)
        released = self.consumer(
            "EraseOnHoldRelease", _ERASE, source="ats.messages", detail_types=["MessageHoldChanged"], **grants
        )
        purged.function.add_environment("DATA_KEY_ARN", data_key.key_arn)
        # A redaction or an erasure of an archived message rewrites its archive object without the content.
        for fn in (holds_api, purged.function, released.function):
            self._archive(fn, _ARCHIVE_WRITE)

    def _reports(self, api_queue: sqs.Queue) -> None:
        """The delivery and failure reports (routes) and the scheduled synthetic message, whose result is the
        metric `SyntheticMessageSucceeded` (alarmed in `_monitoring`)."""
        audit_reads, audit_writes = self._audit
        for path in ("/v1/message-reports/delivery", "/v1/message-reports/failures"):
            reports = self.route(
                "GET",
                path,
                handler=_REPORTS,
                reads=[only(self.table, "Query"), *audit_reads],
                writes=audit_writes,
                timeout_seconds=25,
            )
        # GetMetricData has no resource-level permissions (IAM's service authorization reference).
        self.foundation.allow(reports, ["cloudwatch:GetMetricData"], ["*"])
        acknowledge(
            reports.role,  # type: ignore[arg-type]
            "AwsSolutions-IAM5[Resource::*]",
            "cloudwatch:GetMetricData supports no resource-level permissions; it reads the capture-rate metrics",
        )
        probe = self.function(
            "SyntheticMessage",
            _SYNTHETIC,
            description="Sends a synthetic message end to end, checks it, removes it",
            reads=[only(self.table, "GetItem", "Query"), *audit_reads],
            writes=[only(self.table, "DeleteItem"), *audit_writes],
            environment={"SYNTHETIC_TENANT": SYNTHETIC_TENANT, "API_QUEUE_URL": api_queue.queue_url},
            timeout_seconds=90,
        )
        self.foundation.allow(probe, ["sqs:SendMessage"], [api_queue.queue_arn])
        self._allow_key(probe, self.foundation.data_key, "sqs", write=True)
        task = tasks.LambdaInvoke(
            self,
            "RunSyntheticMessage",
            lambda_function=probe,
            payload=sfn.TaskInput.from_object({}),
            payload_response_only=True,
        )
        self.workflow(
            "SyntheticMessageWorkflow",
            task.next(sfn.Succeed(self, "SyntheticMessageDone")),
            schedule=events.Schedule.rate(Duration.minutes(_SYNTHETIC_MINUTES)),
            description="Runs the synthetic message every 5 minutes",
        )

    def _tiering(self) -> None:
        """The daily tiering (functions/messages/handlers/tiering.py): warm, cold and deleted by each tenant's
        policy, one bounded page per task."""
        data_key = self.foundation.data_key
        audit_reads, audit_writes = self._audit
        step = self.function(
            "TieringStep",
            _TIERING,
            description="The daily message tiering: one bounded page of one phase per call",
            # Query: ByTime, the tenant registry, the active holds; BatchGetItem: the page's messages read
            # consistently, the search terms looked up; GetItem: the policy
            reads=[only(self.table, "GetItem", "Query", "BatchGetItem"), *audit_reads],
            # PutItem: stubs; DeleteItem: a deleted message's stub; BatchWriteItem: its search terms
            writes=[only(self.table, "PutItem", "DeleteItem", "BatchWriteItem"), *audit_writes],
            keys=[data_key],  # opening a deleted message's content to find its search terms
            secrets=["hmac"],
            environment={"DATA_KEY_ARN": data_key.key_arn},
            timeout_seconds=_TIERING_STEP_TIMEOUT_SECONDS,
        )
        self._archive(step, _ARCHIVE_WRITE)
        self.workflow(
            "DailyTiering",
            tiering_definition(self, step_function=step),
            schedule=events.Schedule.cron(hour=_TIERING_HOUR_UTC, minute="0"),
            description="The daily message tiering: warm, cold and deleted by each tenant's policy",
        )

    def _export(self, bucket: s3.IBucket) -> None:
        """The eDiscovery export (functions/messages/handlers/export_api.py, export_worker.py): routes that start
        one and read it back with presigned links, and the workflow that writes it to the export bucket."""
        data_key = self.foundation.data_key
        audit_reads, audit_writes = self._audit
        for method, path in (
            ("POST", "/v1/message-exports"),
            ("GET", "/v1/message-exports/{export_id}"),
            ("GET", "/v1/message-exports/{export_id}/file"),
        ):
            api = self.route(
                method,
                path,
                handler=_EXPORT_API,
                reads=[only(self.table, "GetItem"), *audit_reads],  # the job
                writes=[only(self.table, "PutItem"), *audit_writes],  # the job, created once
                keys=[data_key],  # the words of a text export, sealed in the job
                secrets=["hmac"],  # their blind-index tokens
                bus=True,  # MessageExportRequested
                environment={"DATA_KEY_ARN": data_key.key_arn},
            )
        # The presigned links carry the function's authority: the files, the listing of the export's prefix.
        self.allow_bucket(
            api,
            bucket,
            ["s3:GetObject", "s3:ListBucket"],
            prefix=EXPORTS_PREFIX,
            env="EXPORT_BUCKET_NAME",
            holding="eDiscovery exports, messages/exports/<tenant>/<export id>/<file>",
        )
        worker = self.function(
            "ExportWorker",
            _EXPORT_WORKER,
            description="Writes an eDiscovery export: natives, JSON lines, load files and the manifest",
            # GetItem: the job; Query: the search's index or its terms; BatchGetItem: a text page's messages
            reads=[only(self.table, "GetItem", "Query", "BatchGetItem"), *audit_reads],
            writes=[only(self.table, "PutItem"), *audit_writes],  # the job, conditional on its version
            keys=[data_key],  # opening content (and the job's sealed words)
            secrets=["hmac"],  # the blind index of a text export
            environment={"DATA_KEY_ARN": data_key.key_arn},
            timeout_seconds=_EXPORT_STEP_TIMEOUT_SECONDS,
        )
        self.allow_bucket(
            worker,
            bucket,
            ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],  # GetObject: the load files read back
            prefix=EXPORTS_PREFIX,
            env="EXPORT_BUCKET_NAME",
            holding="eDiscovery exports, messages/exports/<tenant>/<export id>/<file>",
        )
        self._archive(worker, _ARCHIVE_READ)  # warm and cold messages are exported whole
        self.workflow(
            "MessageExport",
            export_definition(self, step_function=worker),
            event_pattern=events.EventPattern(source=["ats.messages"], detail_type=["MessageExportRequested"]),
            timeout=Duration.hours(_EXPORT_WORKFLOW_HOURS),
            description="An eDiscovery export requested through POST /v1/message-exports",
        )

    def _archive(self, fn: lambda_.Function, actions: list[str]) -> None:
        """S3 `actions` on the archive bucket's `messages/` objects (and listing that prefix), its key through S3."""
        self.allow_bucket(
            fn,
            self._archive_bucket,
            actions,
            prefix=ARCHIVE_PREFIX,
            env="ARCHIVE_BUCKET_NAME",
            holding="archived messages, messages/<tenant>/<yyyy>/<mm>/<message id>.json",
        )

    def _metric(self, name: str, *, period_minutes: int = 5) -> cloudwatch.Metric:
        """A metric the messages functions publish through Powertools (namespace and `service` dimension)."""
        return cloudwatch.Metric(
            namespace=constants.METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": constants.SERVICE_NAME},
            statistic="Sum",
            period=Duration.minutes(period_minutes),
        )

    def _monitoring(self) -> None:
        """Alarms of the issue: repeated signature or authentication failures, malformed payloads, events that
        could not be written, and a sudden drop in volume (anomaly detection on the events stored). Every queue's
        dead-letter queue is alarmed where it is made (FoundationConstruct.dead_letter_queue)."""
        topic = cw_actions.SnsAction(self.foundation.alarm_topic)
        for construct_id, metric, threshold, description in (
            (
                "SignatureFailuresAlarm",
                "WebhookSignatureRejected",
                10,
                "10 or more provider webhooks in 5 minutes failed signature or authentication checks",
            ),
            ("MalformedPayloadsAlarm", "MessagePayloadRejected", 10, "10 or more verified payloads did not parse"),
            ("IngestFailuresAlarm", "MessageEventsFailed", 0, "message events could not be written (retried)"),
        ):
            alarm = cloudwatch.Alarm(
                self,
                construct_id,
                alarm_description=description,
                metric=self._metric(metric),
                threshold=threshold,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
                if threshold == 0
                else cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(topic)
        # The synthetic message failed (or did not run: missing data breaches) in 2 of 3 runs.
        synthetic = cloudwatch.Alarm(
            self,
            "SyntheticMessageAlarm",
            alarm_description="The synthetic message did not travel end to end",
            metric=self._metric("SyntheticMessageSucceeded").with_(statistic="Minimum"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        synthetic.add_alarm_action(topic)
        # A sudden drop in volume: the events stored per 15 minutes below the band CloudWatch learns from two weeks
        # of history (two standard deviations), for 3 of 4 periods, so a quiet night is not an alarm.
        stored = self._metric("MessageEventsStored", period_minutes=15)
        cloudwatch.CfnAlarm(
            self,
            "VolumeDropAlarm",
            alarm_description="Message volume dropped below its expected band (anomaly detection)",
            comparison_operator="LessThanLowerThreshold",
            evaluation_periods=4,
            datapoints_to_alarm=3,
            threshold_metric_id="band",
            treat_missing_data="breaching",
            alarm_actions=[self.foundation.alarm_topic.topic_arn],
            metrics=[
                cloudwatch.CfnAlarm.MetricDataQueryProperty(
                    id="stored",
                    return_data=True,
                    metric_stat=cloudwatch.CfnAlarm.MetricStatProperty(
                        metric=cloudwatch.CfnAlarm.MetricProperty(
                            namespace=constants.METRICS_NAMESPACE,
                            metric_name="MessageEventsStored",
                            dimensions=[
                                cloudwatch.CfnAlarm.DimensionProperty(name="service", value=constants.SERVICE_NAME)
                            ],
                        ),
                        period=int(stored.period.to_seconds()),
                        stat="Sum",
                    ),
                ),
                cloudwatch.CfnAlarm.MetricDataQueryProperty(
                    id="band", expression="ANOMALY_DETECTION_BAND(stored, 2)", return_data=True
                ),
            ],
        )
