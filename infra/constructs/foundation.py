"""What every domain stands on: the stage, keys, the event bus, the alarm topic, the code and dependency layer,
and factories for functions (each with its own role, log group and error alarm) and queues (each with a DLQ)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants
from infra.bundling import build_layer, stage_code
from infra.constructs.stage import StageConfig
from infra.nag import acknowledge


@dataclass
class FunctionSpec:
    """One Lambda entry point. `handler` is the dotted path of its `lambda_handler`."""

    name: str
    handler: str
    description: str
    environment: dict[str, str] = field(default_factory=dict)
    timeout_seconds: int = constants.LAMBDA_TIMEOUT_SECONDS
    asynchronous: bool = False
    # Powertools' Tracer (boto3 subsegments) costs ~150 ms of cold start: opt in where the detail is worth it.
    xray_subsegments: bool = False


class FoundationConstruct(Construct):
    """Stack-wide resources and the factories that domain constructs use."""

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: StageConfig, architecture: str, service_version: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.stage = stage
        self.service_version = service_version
        self._function_logs: dict[str, logs.LogGroup] = {}
        self.architecture = lambda_.Architecture.ARM_64 if architecture == "arm64" else lambda_.Architecture.X86_64
        self.data_key = self._build_key("DataKey", "Encrypts candidate data: tables, archives, queues, events")
        self.audit_key = self._build_key("AuditKey", "Encrypts the audit trail and auditor exports")
        self.alarm_topic = self._build_alarm_topic()
        # Encrypted with the data key: the archive keeps events for a year and cannot be erased. CDK adds the key
        # policy statement EventBridge needs (Decrypt/GenerateDataKey for this bus's ARN only).
        self.bus = events.EventBus(
            self,
            "DomainEventBus",
            event_bus_name=f"{Aws.STACK_NAME}-domain-events",
            description="Domain events",
            kms_key=self.data_key,
        )
        # Every domain event is archived for a year, so a consumer that failed can be replayed.
        self.bus.archive(
            "DomainEventArchive",
            description="All domain events, for replay",
            event_pattern=events.EventPattern(account=[Aws.ACCOUNT_ID]),
            retention=Duration.days(constants.EVENT_ARCHIVE_DAYS),
        )
        self.code = lambda_.Code.from_asset(str(stage_code()))
        self.layer = lambda_.LayerVersion(
            self,
            "DependenciesLayer",
            code=lambda_.Code.from_asset(str(build_layer(architecture))),
            compatible_runtimes=[self.runtime],
            compatible_architectures=[self.architecture],
            description="Runtime dependencies, pinned by uv.lock",
            removal_policy=stage.removal_policy,
        )
        self.tenant_secret_prefix = f"{Aws.STACK_NAME}{constants.TENANT_SECRET_PREFIX_SUFFIX}"

    @property
    def runtime(self) -> lambda_.Runtime:
        # The newest Python the test suite runs on (requires-python >=3.11,<3.14): we deploy what we test.
        return lambda_.Runtime.PYTHON_3_13

    def _build_key(self, construct_id: str, description: str) -> kms.Key:
        return kms.Key(
            self,
            construct_id,
            description=description,
            enable_key_rotation=True,
            removal_policy=self.stage.removal_policy,
            pending_window=self.stage.key_pending_window,
        )

    def _build_alarm_topic(self) -> sns.Topic:
        topic = sns.Topic(
            self, "AlarmTopic", display_name="ATS compliance alarms", master_key=self.data_key, enforce_ssl=True
        )
        # CloudWatch publishes alarm notifications to the encrypted topic.
        self.data_key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        return topic

    def log_group(self, scope: Construct, construct_id: str) -> logs.LogGroup:
        return logs.LogGroup(
            scope, construct_id, retention=logs.RetentionDays.THREE_MONTHS, removal_policy=self.stage.removal_policy
        )

    def dead_letter_queue(self, scope: Construct, construct_id: str, what: str) -> sqs.Queue:
        """A KMS-encrypted DLQ with an alarm as soon as one message lands in it."""
        queue = sqs.Queue(
            scope,
            construct_id,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.data_key,
            enforce_ssl=True,
            retention_period=Duration.days(constants.DEAD_LETTER_RETENTION_DAYS),
        )
        acknowledge(
            queue, "AwsSolutions-SQS3", "This queue is itself a dead-letter queue (of a rule target or function)"
        )
        self.alarm(
            scope,
            f"{construct_id}Alarm",
            f"Messages are waiting in the dead-letter queue of {what}",
            queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)),
        )
        return queue

    def durable_queue(
        self, scope: Construct, construct_id: str, what: str, *, visibility_timeout: Duration
    ) -> sqs.Queue:
        """A KMS-encrypted work queue whose messages move to an alarmed DLQ after a few failed receives."""
        dlq = self.dead_letter_queue(scope, f"{construct_id}DeadLetters", what)
        return sqs.Queue(
            scope,
            construct_id,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.data_key,
            enforce_ssl=True,
            retention_period=Duration.days(constants.QUEUE_RETENTION_DAYS),
            visibility_timeout=visibility_timeout,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=constants.CONSUMER_MAX_RECEIVES, queue=dlq),
        )

    def alarm(self, scope: Construct, construct_id: str, description: str, metric: cloudwatch.IMetric) -> None:
        """Notify the alarm topic as soon as `metric` is above zero."""
        alarm = cloudwatch.Alarm(
            scope,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))

    def function_logs(self, scope: Construct) -> logs.LogGroup:
        """The one log group of the functions of a domain (Lambda's advanced logging: every function of the domain
        writes its own streams to it, its JSON lines carry `function_name`): one resource per domain, not one per
        function, in a stack that CloudFormation caps at 500 resources (docs/decisions.md)."""
        found = self._function_logs.get(scope.node.path)
        if found is None:
            found = self._function_logs[scope.node.path] = self.log_group(scope, "FunctionLogs")
        return found

    def function(self, scope: Construct, spec: FunctionSpec) -> lambda_.Function:
        """A function with its own role (logs only, until the domain adds statements) and error alarm, writing to
        its domain's log group."""
        log_group = self.function_logs(scope)
        role = iam.Role(
            scope,
            f"{spec.name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs {spec.handler}",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        dlq = self.dead_letter_queue(scope, f"{spec.name}DeadLetters", spec.name) if spec.asynchronous else None
        fn = lambda_.Function(
            scope,
            spec.name,
            description=spec.description,
            runtime=self.runtime,
            architecture=self.architecture,
            handler=spec.handler,
            code=self.code,
            layers=[self.layer],
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
            memory_size=constants.LAMBDA_MEMORY_MB,
            timeout=Duration.seconds(spec.timeout_seconds),
            dead_letter_queue=dlq,
            retry_attempts=2 if spec.asynchronous else None,
            environment={
                "POWERTOOLS_SERVICE_NAME": constants.SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": constants.METRICS_NAMESPACE,
                "LOG_LEVEL": "INFO",
                "STAGE": self.stage.name,
                "SERVICE_VERSION": self.service_version,
                "POWERTOOLS_TRACE_DISABLED": "false" if spec.xray_subsegments else "true",
                # pydantic looks for plugins in the entry points of every installed distribution the first time it
                # builds a model (a cold start's first settings or request model); we use none.
                "PYDANTIC_DISABLE_PLUGINS": "__all__",
                **spec.environment,
            },
        )
        acknowledge(
            fn,
            "AwsSolutions-L1",
            "Python 3.13 is the newest version the test suite runs on (3.11 to 3.13): we deploy what we test",
        )
        self.alarm(
            scope, f"{spec.name}ErrorsAlarm", f"{spec.name} raised errors", fn.metric_errors(period=Duration.minutes(5))
        )
        return fn

    @staticmethod
    def allow(fn: lambda_.Function, actions: list[str], resources: list[str], conditions: dict | None = None) -> None:
        """Add one least-privilege statement to the function's own role."""
        assert fn.role is not None
        fn.role.add_to_principal_policy(
            iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions)
        )
