"""The platform domain: health and identity routes, and the scheduled health workflow (a Step Functions
state machine whose Lambda task records the heartbeat that GET /v1/health reports)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra import constants
from infra.constructs.api import ApiConstruct
from infra.constructs.foundation import FoundationConstruct, FunctionSpec
from infra.constructs.tables import tenant_table

_READ = ["dynamodb:GetItem", "dynamodb:Query"]
_WRITE = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]


class PlatformConstruct(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: FoundationConstruct,
        api: ApiConstruct,
        audit_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        self._foundation = foundation
        self.table = tenant_table(self, "PlatformTable", foundation.data_key)
        self._build_routes(api, audit_table)
        self.health_workflow = self._build_health_workflow()

    def _allow_table(self, fn, table: dynamodb.ITable, actions: list[str], key) -> None:
        self._foundation.allow(fn, actions, [table.table_arn])
        self._foundation.allow(fn, ["kms:Decrypt", "kms:GenerateDataKey"], [key.key_arn])

    def _build_routes(self, api: ApiConstruct, audit_table: dynamodb.ITable) -> None:
        health = self._foundation.function(
            self,
            FunctionSpec(
                name="HealthApi",
                handler="functions.platform.handlers.health.lambda_handler",
                description="GET /v1/health",
                environment={"PLATFORM_TABLE_NAME": self.table.table_name},
            ),
        )
        self._allow_table(health, self.table, ["dynamodb:GetItem"], self._foundation.data_key)
        api.add_route("GET", "/v1/health", health, authenticated=False)

        me = self._foundation.function(
            self,
            FunctionSpec(
                name="MeApi",
                handler="functions.platform.handlers.me.lambda_handler",
                description="GET /v1/me",
                environment={"AUDIT_TABLE_NAME": audit_table.table_name},
            ),
        )
        self._foundation.allow(me, ["dynamodb:GetItem", "dynamodb:PutItem"], [audit_table.table_arn])
        self._foundation.allow(me, ["kms:Decrypt", "kms:GenerateDataKey"], [self._foundation.audit_key.key_arn])
        api.add_route("GET", "/v1/me", me)

    def _build_health_workflow(self) -> sfn.StateMachine:
        probe = self._foundation.function(
            self,
            FunctionSpec(
                name="HealthProbe",
                handler="functions.platform.handlers.health_probe.lambda_handler",
                description="Health workflow task: records a heartbeat",
                environment={"PLATFORM_TABLE_NAME": self.table.table_name},
                timeout_seconds=constants.WORKFLOW_TASK_TIMEOUT_SECONDS,
            ),
        )
        self._allow_table(probe, self.table, _READ + _WRITE, self._foundation.data_key)
        record = tasks.LambdaInvoke(
            self,
            "RecordHeartbeat",
            lambda_function=probe,
            payload=sfn.TaskInput.from_object({"execution": sfn.JsonPath.string_at("$$.Execution.Id")}),
            payload_response_only=True,
            retry_on_service_exceptions=True,
        )
        machine = sfn.StateMachine(
            self,
            "HealthWorkflow",
            definition_body=sfn.DefinitionBody.from_chainable(record.next(sfn.Succeed(self, "Healthy"))),
            timeout=Duration.minutes(5),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=logs.LogGroup(
                    self,
                    "HealthWorkflowLogs",
                    retention=logs.RetentionDays.THREE_MONTHS,
                    removal_policy=RemovalPolicy.DESTROY,
                ),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
        )
        self._foundation.alarm(
            self,
            "HealthWorkflowFailedAlarm",
            "A health workflow execution failed, timed out or was aborted",
            machine.metric_failed(period=Duration.minutes(5)),
        )
        events.Rule(
            self,
            "HealthSchedule",
            description="Runs the health workflow",
            schedule=events.Schedule.rate(Duration.minutes(constants.HEALTH_WORKFLOW_SCHEDULE_MINUTES)),
            targets=[
                targets.SfnStateMachine(
                    machine,
                    dead_letter_queue=self._foundation.dead_letter_queue(
                        self, "HealthScheduleDeadLetters", "the health schedule"
                    ),
                    retry_attempts=2,
                )
            ],
        )
        return machine
