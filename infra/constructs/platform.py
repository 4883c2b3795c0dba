"""The platform domain: health and identity routes (who am I, deprovisioning a user), the auditor grants, the
pre-token-generation trigger that binds a machine client or a federated person to its tenant, and the scheduled
health workflow (a state machine whose Lambda task records the
heartbeat that GET /v1/health reports)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra import constants
from infra.constructs.api import ApiConstruct
from infra.constructs.auditor_grants import HANDLER as AUDITOR_GRANTS_HANDLER
from infra.constructs.auditor_grants import add_auditor_grant_routes
from infra.constructs.domain import DomainConstruct, audit_appends, only
from infra.constructs.foundation import FoundationConstruct

IDENTITY_HANDLER = "functions.platform.handlers.me.lambda_handler"
# POST /v1/users/{username}/deprovision: served by the access-administration function of the auditor grants (its
# module includes the deprovision router).
ACCESS_HANDLER = AUDITOR_GRANTS_HANDLER


class PlatformConstruct(DomainConstruct):
    TABLE_ID = "PlatformTable"

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: FoundationConstruct,
        api: ApiConstruct,
        audit_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id, foundation=foundation, api=api)
        self.tenant_secret("hmac", "Per-tenant HMAC key: fingerprints and blind search indexes")
        self._build_routes(audit_table)
        self._build_deprovision_route(api, audit_table)
        self._build_pre_token_trigger(api)
        self.health_workflow = self._build_health_workflow()

    def _build_routes(self, audit_table: dynamodb.ITable) -> None:
        self.route(
            "GET",
            "/v1/health",
            handler="functions.platform.handlers.health.lambda_handler",
            reads=[only(self.table, "GetItem")],
            public=True,
            environment={
                "HEALTH_STALE_AFTER_SECONDS": str(
                    constants.HEALTH_STALE_AFTER_PERIODS * constants.HEALTH_WORKFLOW_SCHEDULE_MINUTES * 60
                )
            },
        )
        # A person (ID token) or a machine (access token): `authorize` decides, so no gateway scopes here.
        self.route(
            "GET",
            "/v1/me",
            handler=IDENTITY_HANDLER,
            writes=[audit_appends(audit_table)],
        )
        add_auditor_grant_routes(self, audit_table=audit_table)

    def _build_deprovision_route(self, api: ApiConstruct, audit_table: dynamodb.ITable) -> None:
        """POST /v1/users/{username}/deprovision: disable a person of the caller's tenant and revoke their refresh
        tokens (docs/identity.md). Served by the access-administration function of the auditor grants (its module
        includes the route's router), which adds the directory's three actions on this pool only, the pool's id and
        the providers' tenants: no function, role or log group of its own."""
        fn = self.route(
            "POST",
            "/v1/users/{username}/deprovision",
            handler=ACCESS_HANDLER,
            writes=[audit_appends(audit_table)],
            environment={"USER_POOL_ID": api.user_pool.user_pool_id, **api.identity_environment},
        )
        self.foundation.allow(
            fn,
            ["cognito-idp:AdminGetUser", "cognito-idp:AdminDisableUser", "cognito-idp:AdminUserGlobalSignOut"],
            [api.user_pool.user_pool_arn],
        )

    def _build_pre_token_trigger(self, api: ApiConstruct) -> None:
        """Access tokens of client-credentials clients get `custom:tenant` from the client-to-tenant registry; tokens
        of federated people get their provider's tenant and the roles mapped from their IdP groups (the providers
        are a JSON setting, `{}` without any: no reference to the pool, so no cycle)."""
        fn = self.function(
            "PreTokenGeneration",
            "functions.platform.handlers.pre_token.lambda_handler",
            description="Cognito pre-token-generation (V3): tenant of machine clients, roles of federated people",
            reads=[only(self.table, "GetItem")],
            environment=api.identity_environment,
        )
        api.user_pool.add_trigger(cognito.UserPoolOperation.PRE_TOKEN_GENERATION_CONFIG, fn, cognito.LambdaVersion.V3_0)

    def _build_health_workflow(self) -> sfn.StateMachine:
        probe = self.function(
            "HealthProbe",
            "functions.platform.handlers.health_probe.lambda_handler",
            description="Health workflow task: records a heartbeat",
            writes=[only(self.table, "PutItem")],
            timeout_seconds=constants.WORKFLOW_TASK_TIMEOUT_SECONDS,
        )
        record = tasks.LambdaInvoke(
            self,
            "RecordHeartbeat",
            lambda_function=probe,
            payload=sfn.TaskInput.from_object({"execution": sfn.JsonPath.string_at("$$.Execution.Id")}),
            payload_response_only=True,
            retry_on_service_exceptions=True,
        )
        workflow = self.workflow(
            "HealthWorkflow",
            record.next(sfn.Succeed(self, "Healthy")),
            schedule=events.Schedule.rate(Duration.minutes(constants.HEALTH_WORKFLOW_SCHEDULE_MINUTES)),
            description="Runs the health workflow",
        )
        return workflow.state_machine
