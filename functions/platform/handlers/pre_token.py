"""Cognito pre-token-generation trigger (event version 3): binds a token to its tenant.

- Machine clients (`TokenGeneration_ClientCredentials`): adds `custom:tenant`, read from the client-to-tenant
  registry, to the access token; a client with no registered tenant gets no token at all (the function raises, and
  Cognito refuses the token request).
- People signed in through an enterprise identity provider (their `identities` attribute names it): the tenant the
  provider is bound to, and roles in `cognito:groups` mapped from the IdP's groups (`IDENTITY_PROVIDERS`,
  functions/platform/logic/federation.py); a provider that is not configured gets no token.
- Other people pass unchanged: their tenant is the user's immutable `custom:tenant` attribute, their roles their
  pool groups, both already in the ID token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.platform.dal.clients import ClientRegistry, DynamoClientRegistry
from functions.platform.logic.federation import (
    FederatedProvider,
    federated_identity,
    linked_providers,
    parse_providers,
    token_overrides,
)
from functions.platform.logic.tokens import tenant_for_client
from functions.platform.models.env import PlatformTableSettings
from shared.auth import TENANT_CLAIM
from shared.errors import Unauthenticated
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings

CLIENT_CREDENTIALS = "TokenGeneration_ClientCredentials"


class FederationSettings(BaseSettings):
    """The IdPs of the stage (infra/constructs/stage.py `identity_providers_environment`); `{}` when none."""

    IDENTITY_PROVIDERS: str = Field(min_length=2)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    registry: ClientRegistry | None = None,
    providers: Mapping[str, FederatedProvider] | None = None,
) -> dict[str, Any]:
    """Input and output: Cognito's V3 pre-token-generation event, its `response` filled for machine clients and
    federated people."""
    if event.get("triggerSource") == CLIENT_CREDENTIALS:
        return _machine_token(event, registry)
    user_attributes = (event.get("request") or {}).get("userAttributes") or {}
    if linked_providers(user_attributes):
        return _federated_token(event, user_attributes, providers)
    return event


def _machine_token(event: dict[str, Any], registry: ClientRegistry | None) -> dict[str, Any]:
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


def _federated_token(
    event: dict[str, Any], user_attributes: dict[str, Any], providers: Mapping[str, FederatedProvider] | None
) -> dict[str, Any]:
    if providers is None:
        providers = parse_providers(load_settings(FederationSettings).IDENTITY_PROVIDERS)
    sub = str(user_attributes.get("sub") or "")
    try:
        identity = federated_identity(providers, user_attributes)
    except Unauthenticated as exc:
        logger.warning("federated token refused", extra={"sub": sub, "reason": exc.message})
        metrics.add_metric(name="FederatedTokensRefused", unit="Count", value=1)
        raise
    assert identity is not None  # the user has provider links
    event["response"] = token_overrides(identity)
    # Identifiers and counts only: group names and e-mail addresses stay out of the logs.
    logger.info(
        "federated token mapped",
        extra={
            "sub": sub,
            "provider": identity.provider,
            "tenant": identity.tenant,
            "roles": [role.value for role in identity.roles],
            "unmapped_groups": identity.unmapped_groups,
            "trigger": event.get("triggerSource"),
        },
    )
    metrics.add_metric(name="FederatedTokensIssued", unit="Count", value=1)
    return event
