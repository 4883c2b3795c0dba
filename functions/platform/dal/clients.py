"""The client-to-tenant registry: which tenant each machine client (a Cognito app client) acts for.

One item per client in the platform table: pk `T#_platform#CLIENTS`, sk the app client id, attribute `tenant`.
The pre-token-generation trigger reads it to bind a client-credentials access token to its tenant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from shared.aws import LazyClient
from shared.keys import PLATFORM_TENANT, tenant_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CLIENTS_PK = tenant_key(PLATFORM_TENANT, "CLIENTS")


class ClientRegistry(Protocol):
    def tenant_of(self, client_id: str) -> str | None: ...


class DynamoClientRegistry:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def tenant_of(self, client_id: str) -> str | None:
        """The tenant registered for `client_id`, or None. Read consistently: a revoked client stops at once."""
        item = self.client.get_item(
            TableName=self._table,
            Key={"pk": {"S": CLIENTS_PK}, "sk": {"S": client_id}},
            ConsistentRead=True,
        ).get("Item")
        tenant = (item or {}).get("tenant", {}).get("S")
        return tenant or None

    def register(self, client_id: str, tenant: str) -> None:
        """Bind `client_id` to `tenant` (for provisioning and the local runtime's seed)."""
        self.client.put_item(
            TableName=self._table,
            Item={"pk": {"S": CLIENTS_PK}, "sk": {"S": client_id}, "tenant": {"S": tenant}},
        )
