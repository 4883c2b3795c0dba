"""POST /v1/users/{username}/deprovision: a company, account or system admin stops a person of their tenant: the
user is disabled and their refresh tokens revoked (docs/identity.md, the deprovisioning runbook). Audited.

A route of the identity function: `functions.platform.handlers.me` includes this router, so GET /v1/me and this
route share one function (infra/constructs/platform.py; one function less in a stack near CloudFormation's 500
resources). The use case and the directory are imported by the route, so GET /v1/me does not load them.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from shared.http import SECURED, error_responses, ok_response, request_context
from shared.models import Model
from shared.observability import metrics
from shared.settings import BaseSettings, load_settings


class DeprovisionSettings(BaseSettings):
    USER_POOL_ID: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    # Which tenant a federated user belongs to (infra/constructs/stage.py `identity_providers_environment`).
    IDENTITY_PROVIDERS: str = Field(min_length=2)


class DeprovisionOutput(Model):
    user: str = Field(description="The user's `sub`")
    disabled: bool = Field(description="Always true: the user can no longer sign in or refresh tokens")
    refresh_tokens_revoked: bool = Field(description="Always true: every refresh token of the user is revoked")
    was_enabled: bool = Field(description="False when the user had already been disabled (the call is idempotent)")


router = Router()


@router.post(
    "/v1/users/<username>/deprovision",
    summary="Deprovision a user",
    description=(
        "Disables a user of the caller's tenant and revokes all their refresh tokens (Cognito AdminDisableUser and "
        "AdminUserGlobalSignOut). ID and access tokens already issued stay valid until they expire, at most 15 "
        "minutes. Company admins, account admins and system admins only (`users:deprovision`); a user of another "
        "tenant is a 404. Idempotent; audited."
    ),
    responses={
        **ok_response(DeprovisionOutput, "The user is disabled"),
        **error_responses(400, 401, 403, 404, 500, 503),
    },
    tags=["platform"],
    security=SECURED,
)
def post_deprovision(username: str) -> DeprovisionOutput:
    from functions.platform.dal.deprovision import CognitoUserDirectory
    from functions.platform.logic.deprovision import deprovision_user
    from functions.platform.logic.federation import parse_providers
    from shared.audit import DynamoAuditLog

    settings = load_settings(DeprovisionSettings)
    resolver = router.api_resolver
    assert isinstance(resolver, APIGatewayRestResolver), "served by a resolver that includes the router (me.py)"
    request = request_context(resolver)
    done = deprovision_user(
        request.actor,
        username,
        directory=CognitoUserDirectory(settings.USER_POOL_ID),
        providers=parse_providers(settings.IDENTITY_PROVIDERS),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    metrics.add_metric(name="UsersDeprovisioned", unit="Count", value=1)
    return DeprovisionOutput(user=done.user, disabled=True, refresh_tokens_revoked=True, was_enabled=done.was_enabled)
