"""The one stack per stage: composes one construct per domain on the foundation and applies cross-cutting concerns."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from infra import constants
from infra.constructs.api import ApiConstruct
from infra.constructs.assets import AssetsConstruct
from infra.constructs.audit import AuditConstruct
from infra.constructs.audit_exports import add_audit_exports
from infra.constructs.failures import FailuresConstruct
from infra.constructs.foundation import FoundationConstruct
from infra.constructs.messages import MessagesConstruct
from infra.constructs.platform import PlatformConstruct
from infra.constructs.retention import RetentionConstruct
from infra.constructs.stage import StageConfig
from infra.constructs.storage import StorageConstruct
from infra.nag import acknowledge_findings


class AtsComplianceStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        architecture: str,
        service_version: str,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("service", constants.SERVICE_NAME)
        Tags.of(self).add("stage", stage.name)
        Tags.of(self).add("data-classification", "personal")

        foundation = FoundationConstruct(
            self, "Foundation", stage=stage, architecture=architecture, service_version=service_version
        )
        storage = StorageConstruct(
            self, "Storage", stage=stage, data_key=foundation.data_key, audit_key=foundation.audit_key
        )
        api = ApiConstruct(self, "Api", foundation=foundation)
        audit = AuditConstruct(self, "Audit", foundation=foundation, api=api, storage=storage)
        platform = PlatformConstruct(self, "Platform", foundation=foundation, api=api, audit_table=audit.table)
        audit_exports = add_audit_exports(audit, bucket=storage.audit_exports, platform_table=platform.table)
        domains = {
            "Messages": MessagesConstruct(
                self,
                "Messages",
                foundation=foundation,
                api=api,
                audit_table=audit.table,
                storage=storage,
                grants_table=platform.table,
            ),
            "Failures": FailuresConstruct(self, "Failures", foundation=foundation, api=api),
            "Retention": RetentionConstruct(
                self,
                "Retention",
                foundation=foundation,
                api=api,
                audit_table=audit.table,
                storage=storage,
                grants_table=platform.table,
            ),
            "Assets": AssetsConstruct(self, "Assets", foundation=foundation, api=api),
        }

        for name, value in {
            "Stage": stage.name,
            "ApiUrl": api.rest_api.url,
            "UserPoolId": api.user_pool.user_pool_id,
            "EventBusName": foundation.bus.event_bus_name,
            "DataKeyArn": foundation.data_key.key_arn,
            "AuditTableName": audit.table.table_name,
            "PlatformTableName": platform.table.table_name,
            "ArchiveBucketName": storage.archive.bucket_name,
            "AuditExportsBucketName": storage.audit_exports.bucket_name,
            "AuditCatalogDatabase": audit_exports.database.ref,
            "AuditorExportRoleArn": audit_exports.auditor_role.role_arn,
            "TenantSecretPrefix": foundation.tenant_secret_prefix,
            **{f"{name}TableName": domain.table.table_name for name, domain in domains.items()},
        }.items():
            CfnOutput(self, name, value=value).override_logical_id(name)

        acknowledge_findings(self)
