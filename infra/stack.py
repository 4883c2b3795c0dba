"""The one stack: composes one construct per domain on the foundation and applies cross-cutting concerns."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from infra import constants
from infra.constructs.api import ApiConstruct
from infra.constructs.audit import AuditConstruct
from infra.constructs.domains import AssetsConstruct, FailuresConstruct, MessagesConstruct, RetentionConstruct
from infra.constructs.foundation import FoundationConstruct
from infra.constructs.platform import PlatformConstruct
from infra.constructs.storage import StorageConstruct
from infra.nag import acknowledge_findings


class AtsComplianceStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, architecture: str, service_version: str, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("service", constants.SERVICE_NAME)
        Tags.of(self).add("data-classification", "personal")

        foundation = FoundationConstruct(self, "Foundation", architecture=architecture, service_version=service_version)
        storage = StorageConstruct(self, "Storage", data_key=foundation.data_key, audit_key=foundation.audit_key)
        api = ApiConstruct(self, "Api", foundation=foundation)
        audit = AuditConstruct(self, "Audit", foundation=foundation, api=api, storage=storage)
        PlatformConstruct(self, "Platform", foundation=foundation, api=api, audit_table=audit.table)
        domains = {
            "Messages": MessagesConstruct(self, "Messages", foundation=foundation),
            "Failures": FailuresConstruct(self, "Failures", foundation=foundation),
            "Retention": RetentionConstruct(self, "Retention", foundation=foundation),
            "Assets": AssetsConstruct(self, "Assets", foundation=foundation),
        }

        for name, value in {
            "ApiUrl": api.rest_api.url,
            "UserPoolId": api.user_pool.user_pool_id,
            "EventBusName": foundation.bus.event_bus_name,
            "AuditTableName": audit.table.table_name,
            "ArchiveBucketName": storage.archive.bucket_name,
            "AuditExportsBucketName": storage.audit_exports.bucket_name,
            "TenantSecretPrefix": foundation.tenant_secret_prefix,
            **{f"{name}TableName": domain.table.table_name for name, domain in domains.items()},
        }.items():
            CfnOutput(self, name, value=value).override_logical_id(name)

        acknowledge_findings(self)
