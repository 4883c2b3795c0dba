"""Cognito pre-token-generation trigger (event version 3): binds a machine client's access token to its tenant.

For the client-credentials grant (`TokenGeneration_ClientCredentials`) it adds `custom:tenant`, read from the
client-to-tenant registry, to the access token; a client with no registered tenant gets no token at all (the
function raises, and Cognito refuses the token request). Tokens of people pass unchanged: their tenant is the
user's immutable `custom:tenant` attribute, already in the ID token.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.platform.dal.clients import ClientRegistry, DynamoClientRegistry
from functions.platform.logic.tokens import tenant_for_client
from functions.platform.models.env import PlatformTableSettings
from shared.auth import TENANT_CLAIM
from shared.errors import Unauthenticated
from shared.observability import logger, metrics, tracer
from shared.settings import load_settings

CLIENT_CREDENTIALS = "TokenGeneration_ClientCredentials"


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, registry: ClientRegistry | None = None
) -> dict[str, Any]:
    """Input and output: Cognito's V3 pre-token-generation event, its `response` filled for machine clients."""
    if event.get("triggerSource") != CLIENT_CREDENTIALS:
        return event
    if registry is None:
        registry = DynamoClientRegistry(load_settings(PlatformTableSettings).PLATFORM_TABLE_NAME)
    client_id = str((event.get("callerContext") or {}).get("clientId") or "")
    try:
        tenant = tenant_for_client(registry, client_id)
    except Unauthenticated as exc:
        logger.warning("machine token refused", extra={"client_id": client_id, "reason": exc.message})
        metrics.add_metric(name="IntegrationTokensRefused", unit="Count", value=1)
        raise
    event["response"] = {
        "claimsAndScopeOverrideDetails": {"accessTokenGeneration": {"claimsToAddOrOverride": {TENANT_CLAIM: tenant}}}
    }
    logger.info("machine token bound to its tenant", extra={"client_id": client_id, "tenant": tenant})
    metrics.add_metric(name="IntegrationTokensIssued", unit="Count", value=1)
    return event
