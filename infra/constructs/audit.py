"""The audit domain: the hash-chained audit table, and the auditor of refusals made by the gateway itself."""

from __future__ import annotations

from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as log_destinations
from constructs import Construct

from infra.constructs.api import ApiConstruct
from infra.constructs.domain import DomainConstruct, only
from infra.constructs.foundation import FoundationConstruct
from infra.constructs.storage import StorageConstruct

# Only refusals where no function ran: functions audit their own refusals with the verified tenant.
GATEWAY_REFUSALS = '{ ($.status = "401" || $.status = "403") && $.integrationStatus = "-" }'


class AuditConstruct(DomainConstruct):
    TABLE_ID = "AuditTable"
    TABLE_KEY = "audit"

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
        self._build_refusal_auditor(api)

    def _build_refusal_auditor(self, api: ApiConstruct) -> None:
        fn = self.function(
            "GatewayRefusalAuditor",
            "functions.platform.handlers.audit_refusals.lambda_handler",
            description="Audits requests that the API gateway refused (401/403 before any function ran)",
            reads=[only(self.table, "GetItem")],
            writes=[only(self.table, "PutItem")],
            asynchronous=True,
        )
        logs.SubscriptionFilter(
            self,
            "GatewayRefusals",
            log_group=api.access_log_group,
            destination=log_destinations.LambdaDestination(fn),
            filter_pattern=logs.FilterPattern.literal(GATEWAY_REFUSALS),
        )
