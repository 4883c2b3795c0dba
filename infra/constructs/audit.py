"""The audit domain: the hash-chained audit table, and the auditor of refusals made by the gateway itself."""

from __future__ import annotations

from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as log_destinations
from constructs import Construct

from infra.constructs.api import ApiConstruct
from infra.constructs.foundation import FoundationConstruct, FunctionSpec
from infra.constructs.storage import StorageConstruct
from infra.constructs.tables import tenant_table

# Only refusals where no function ran: functions audit their own refusals with the verified tenant.
GATEWAY_REFUSALS = '{ ($.status = "401" || $.status = "403") && $.integrationStatus = "-" }'


class AuditConstruct(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: FoundationConstruct,
        api: ApiConstruct,
        storage: StorageConstruct,
    ) -> None:
        super().__init__(scope, construct_id)
        self._foundation = foundation
        self.table = tenant_table(self, "AuditTable", foundation.audit_key)
        self.exports_bucket = storage.audit_exports
        self._build_refusal_auditor(api)

    def _build_refusal_auditor(self, api: ApiConstruct) -> None:
        fn = self._foundation.function(
            self,
            FunctionSpec(
                name="GatewayRefusalAuditor",
                handler="functions.platform.handlers.audit_refusals.lambda_handler",
                description="Audits requests that the API gateway refused (401/403 before any function ran)",
                environment={"AUDIT_TABLE_NAME": self.table.table_name},
                asynchronous=True,
            ),
        )
        self._foundation.allow(fn, ["dynamodb:GetItem", "dynamodb:PutItem"], [self.table.table_arn])
        self._foundation.allow(fn, ["kms:Decrypt", "kms:GenerateDataKey"], [self._foundation.audit_key.key_arn])
        logs.SubscriptionFilter(
            self,
            "GatewayRefusals",
            log_group=api.access_log_group,
            destination=log_destinations.LambdaDestination(fn),
            filter_pattern=logs.FilterPattern.literal(GATEWAY_REFUSALS),
        )
