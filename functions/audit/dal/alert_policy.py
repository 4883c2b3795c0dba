"""Tenants' anomalous-access thresholds in the audit table, one insert per change (never an overwrite):

    Version   pk T#<tenant>#AUDIT#ALERTPOLICY   sk V#<version, 12 digits>   policy (JSON), updated_at, updated_by

The current policy is the highest version (one Query). Written by the audit API (`PutItem` on these keys only,
conditioned on the version not existing: infra/constructs/audit_anomaly.py), read by it and by the linker.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from functions.audit.dal.items import latest_item
from functions.audit.models.alert_policy import AlertPolicy, StoredAlertPolicy, VersionTaken
from shared import clock
from shared.aws import LazyClient
from shared.keys import sequence_key, tenant_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ALERT_POLICY = "ALERTPOLICY"


def policy_pk(tenant: str) -> str:
    return tenant_key(tenant, "AUDIT", ALERT_POLICY)


class DynamoAlertPolicyStore:
    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    def current(self, tenant: str) -> StoredAlertPolicy | None:
        item = latest_item(self.client, self._table, policy_pk(tenant), sk_prefix="V#")
        if item is None:
            return None
        return StoredAlertPolicy(
            tenant=tenant,
            policy=AlertPolicy.model_validate(json.loads(item["policy"]["S"])),
            version=int(item["sk"]["S"].split("#", 1)[1]),
            updated_at=datetime.fromisoformat(item["updated_at"]["S"].replace("Z", "+00:00")),
            updated_by=item["updated_by"]["S"],
        )

    def insert(self, stored: StoredAlertPolicy) -> None:
        """The version as a new item; VersionTaken when it exists."""
        updated_at = stored.updated_at or clock.now()
        try:
            self.client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": policy_pk(stored.tenant)},
                    "sk": {"S": sequence_key("V", stored.version)},
                    "policy": {"S": stored.policy.model_dump_json()},
                    "updated_at": {"S": clock.isoformat(updated_at)},
                    "updated_by": {"S": stored.updated_by or "-"},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise VersionTaken(f"{stored.tenant} v{stored.version}") from None
