"""The REST API: Cognito JWT authorizer, request validation, access logs, WAF, and one place to add routes."""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Annotations, Aws, Duration, SecretValue
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra import constants
from infra.constructs.foundation import FoundationConstruct
from infra.constructs.stage import IdentityProviderConfig, identity_providers_environment
from shared.auth import RESOURCE_SERVER, Role, Scope, full_scope

# The access-log line: JSON, one per request. `integrationStatus` is "-" when no function ran (the gateway
# refused the request itself), which is how the refusal auditor tells gateway refusals from function ones.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "integrationStatus": "$context.integration.status",
    "errorMessage": "$context.error.message",
    "sub": "$context.authorizer.claims.sub",
    "tenant": "$context.authorizer.claims.custom:tenant",
}

# Refusals by the gateway get the same error body as the functions' (shared.http.ErrorBody).
_GATEWAY_ERRORS = {
    apigw.ResponseType.UNAUTHORIZED: "unauthenticated",
    apigw.ResponseType.EXPIRED_TOKEN: "unauthenticated",
    apigw.ResponseType.INVALID_SIGNATURE: "unauthenticated",
    apigw.ResponseType.ACCESS_DENIED: "forbidden",
    apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN: "not_found",
    apigw.ResponseType.BAD_REQUEST_BODY: "bad_request",
    apigw.ResponseType.BAD_REQUEST_PARAMETERS: "bad_request",
    apigw.ResponseType.THROTTLED: "too_many_requests",
    apigw.ResponseType.WAF_FILTERED: "forbidden",
    apigw.ResponseType.DEFAULT_4_XX: "bad_request",
    apigw.ResponseType.DEFAULT_5_XX: "internal_error",
}
_ERROR_TEMPLATE = json.dumps(
    {"error": {"code": "%s", "message": "$context.error.messageString", "request_id": "$context.requestId"}}
).replace('"$context.error.messageString"', "$context.error.messageString")


# Every app client of people: short ID and access tokens (they stay valid until they expire, even after their
# user is deprovisioned), refresh tokens for a working day, revocable (AdminUserGlobalSignOut, RevokeToken).
_PEOPLE_TOKENS: dict = {
    "id_token_validity": Duration.minutes(constants.ID_TOKEN_VALIDITY_MINUTES),
    "access_token_validity": Duration.minutes(constants.ACCESS_TOKEN_VALIDITY_MINUTES),
    "refresh_token_validity": Duration.hours(constants.REFRESH_TOKEN_VALIDITY_HOURS),
    "enable_token_revocation": True,
}


WEBHOOK_BODY_RULES = ("SizeRestrictions_BODY", "CrossSiteScripting_BODY")
# The labels the CommonRuleSet adds when those rules match (also when their action is overridden to count).
_CORE_RULE_SET_LABEL = "awswaf:managed:aws:core-rule-set:"
WEBHOOK_BODY_LABELS = tuple(f"{_CORE_RULE_SET_LABEL}{rule.replace('_BODY', '_Body')}" for rule in WEBHOOK_BODY_RULES)


class ApiConstruct(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, foundation: FoundationConstruct) -> None:
        super().__init__(scope, construct_id)
        self._stage = foundation.stage
        self._invokable: set[str] = set()  # functions this API may invoke (one permission each)
        self.user_pool = self._build_user_pool()
        self.resource_server = self._build_resource_server()
        # Enterprise identity providers, only when the stage's context configures them (docs/identity.md).
        self.identity_providers = self._stage.identity_providers(self)
        self.federated_clients = [self._build_federation(provider) for provider in self.identity_providers]
        # For the pre-token-generation trigger and the deprovisioning route: provider -> tenant and group mapping.
        self.identity_environment = identity_providers_environment(self.identity_providers)
        self.access_log_group = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.THIRTEEN_MONTHS,
            removal_policy=self._stage.removal_policy,
        )
        self.rest_api = self._build_rest_api()
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(
            self,
            "JwtAuthorizer",
            cognito_user_pools=[self.user_pool],
            identity_source="method.request.header.Authorization",
        )
        self.validator = apigw.RequestValidator(
            self, "Validator", rest_api=self.rest_api, validate_request_body=True, validate_request_parameters=True
        )
        self._add_gateway_responses()
        self.web_acl = self._build_waf()
        # Functions answer their own unexpected errors with a 500 (and so do not count as Lambda errors):
        # the API's 5xx count is where those show.
        foundation.alarm(
            self,
            "ServerErrorsAlarm",
            "The API answered with a 5xx status",
            self.rest_api.metric_server_error(period=Duration.minutes(5)),
        )

    def _build_user_pool(self) -> cognito.UserPool:
        pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True, username=True),
            custom_attributes={
                "tenant": cognito.StringAttribute(min_len=2, max_len=63, mutable=False),
                # The IdP's groups of a federated user, rewritten at each federated sign-in (a mapped attribute must
                # be mutable). Declared whether or not an IdP is configured: Cognito never removes an attribute, so
                # dropping it with the IdP would fail the update. No app client of people may write it.
                constants.IDP_GROUPS_ATTRIBUTE: cognito.StringAttribute(
                    max_len=constants.IDP_GROUPS_MAX_LENGTH, mutable=True
                ),
            },
            password_policy=cognito.PasswordPolicy(
                min_length=14, require_digits=True, require_lowercase=True, require_uppercase=True, require_symbols=True
            ),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            # PLUS: threat protection, and access-token customisation (the tenant claim) for client credentials.
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            deletion_protection=self._stage.deletion_protection,
            removal_policy=self._stage.removal_policy,
        )
        for role in Role:
            cognito.CfnUserPoolGroup(
                self,
                f"Group{role.value.title().replace('_', '')}",
                user_pool_id=pool.user_pool_id,
                group_name=role.value,
                description=f"ATS role {role.value}",
            )
        # People's apps sign in with SRP and MFA and call the API with ID tokens.
        pool.add_client(
            "IntegrationClient",
            auth_flows=cognito.AuthFlow(user_srp=True),
            **_PEOPLE_TOKENS,
            prevent_user_existence_errors=True,
            disable_o_auth=True,  # no hosted-UI flows (and no placeholder callback URL) on the token domain
        )
        # Machine clients (one per tenant integration, created at onboarding: docs/recipe.md) get access tokens
        # from this domain's /oauth2/token endpoint with the client-credentials grant.
        pool.add_domain(
            "TokenDomain",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=f"ats-{self._stage.name}-{Aws.ACCOUNT_ID}-{Aws.REGION}"
            ),
        )
        return pool

    def _build_federation(self, provider: IdentityProviderConfig) -> cognito.UserPoolClient:
        """The provider in the user pool, its attribute mapping (groups into `custom:idp_groups`, e-mail), and an
        app client that signs its people in through the hosted UI's authorization-code flow, nothing else.

        The client's OAuth scopes leave out `aws.cognito.signin.user.admin`, so a federated user's access token
        cannot call UpdateUserAttributes and write their own groups: only the IdP writes them, at sign-in.
        """
        groups_attribute = f"custom:{constants.IDP_GROUPS_ATTRIBUTE}"
        mapping = cognito.AttributeMapping(
            email=cognito.ProviderAttribute.other(provider.email_attribute),
            custom={groups_attribute: cognito.ProviderAttribute.other(provider.groups_claim)},
        )
        idp: cognito.UserPoolIdentityProviderSaml | cognito.UserPoolIdentityProviderOidc
        if provider.type == "saml":
            assert provider.metadata_url is not None  # checked by IdentityProviderConfig
            idp = cognito.UserPoolIdentityProviderSaml(
                self,
                f"Idp{provider.name}",
                user_pool=self.user_pool,
                name=provider.name,
                metadata=cognito.UserPoolIdentityProviderSamlMetadata.url(provider.metadata_url),
                attribute_mapping=mapping,
            )
        else:
            assert provider.issuer and provider.client_id and provider.client_secret_name
            idp = cognito.UserPoolIdentityProviderOidc(
                self,
                f"Idp{provider.name}",
                user_pool=self.user_pool,
                name=provider.name,
                issuer_url=provider.issuer,
                client_id=provider.client_id,
                # A dynamic reference: CloudFormation resolves the secret at deploy time, the template never holds it.
                client_secret=SecretValue.secrets_manager(provider.client_secret_name).unsafe_unwrap(),
                scopes=list(provider.scopes),
                attribute_request_method=cognito.OidcAttributeRequestMethod.GET,
                attribute_mapping=mapping,
            )
        if provider.grants_system_admin:
            Annotations.of(idp).add_warning_v2(
                "ats:idp-system-admin",
                f"identity provider {provider.name} maps a group to system_admin: whoever manages that group in the "
                "IdP administers this platform (docs/identity.md)",
            )
        client = self.user_pool.add_client(
            f"Federated{provider.name}Client",
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.custom(provider.name)],
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=list(provider.callback_urls),
                logout_urls=list(provider.logout_urls) or None,
            ),
            **_PEOPLE_TOKENS,
            prevent_user_existence_errors=True,
            # Cognito writes mapped attributes through the client: it needs write access to exactly those.
            write_attributes=cognito.ClientAttributes()
            .with_standard_attributes(email=True)
            .with_custom_attributes(constants.IDP_GROUPS_ATTRIBUTE),
        )
        # Only the hosted UI signs people in here; refresh stays possible (and revocable).
        cfn_client = client.node.default_child
        assert isinstance(cfn_client, cognito.CfnUserPoolClient)
        cfn_client.explicit_auth_flows = ["ALLOW_REFRESH_TOKEN_AUTH"]
        client.node.add_dependency(idp)  # the client names the provider, which must exist first
        return client

    def _build_resource_server(self) -> cognito.UserPoolResourceServer:
        """The API as an OAuth 2.0 resource server: `ats/<scope>` for every scope of contracts section 1."""
        if set(constants.SCOPE_DESCRIPTIONS) != {s.value for s in Scope}:
            raise ValueError("infra.constants.SCOPE_DESCRIPTIONS must describe exactly the scopes of shared.auth.Scope")
        self.scopes = {
            scope: cognito.ResourceServerScope(
                scope_name=scope.value, scope_description=constants.SCOPE_DESCRIPTIONS[scope.value]
            )
            for scope in Scope
        }
        return self.user_pool.add_resource_server(
            "ResourceServer",
            identifier=RESOURCE_SERVER,
            user_pool_resource_server_name=f"{Aws.STACK_NAME}-api",  # named after its stack, as every resource is
            scopes=list(self.scopes.values()),
        )

    def _build_rest_api(self) -> apigw.RestApi:
        return apigw.RestApi(
            self,
            "RestApi",
            description="ATS tracking and compliance API",
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=self._stage.removal_policy,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            deploy_options=apigw.StageOptions(
                stage_name=constants.API_STAGE_NAME,
                access_log_destination=apigw.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                tracing_enabled=True,
                metrics_enabled=True,
                throttling_rate_limit=constants.API_THROTTLE_RATE,
                throttling_burst_limit=constants.API_THROTTLE_BURST,
            ),
        )

    def _add_gateway_responses(self) -> None:
        for response_type, code in _GATEWAY_ERRORS.items():
            self.rest_api.add_gateway_response(
                f"Gateway{code.title().replace('_', '')}{response_type.response_type}",
                type=response_type,
                # An unknown path or method is a 404, not API Gateway's default 403 "Missing Authentication Token".
                status_code="404" if response_type == apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN else None,
                templates={"application/json": _ERROR_TEMPLATE % code},
            )

    def _build_waf(self) -> wafv2.CfnWebACL:
        """CommonRuleSet and KnownBadInputs everywhere, except that webhook bodies may be large and HTML-like.

        The CommonRuleSet's two body rules are overridden to count (they still label the request); a rule of our
        own blocks on those labels outside the webhook paths. One rule group evaluation, so the ACL stays well
        under 1,500 WCU. Webhook paths have their own, higher per-IP rate limit, so a provider's burst is not
        starved by, nor starves, the API's callers.
        """
        webhook_path = _webhook_path_statement()
        not_webhook_path = wafv2.CfnWebACL.StatementProperty(
            not_statement=wafv2.CfnWebACL.NotStatementProperty(statement=webhook_path)
        )

        def managed(name: str, priority: int, counted: tuple[str, ...] = ()) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=name,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                            )
                            for rule in counted
                        ]
                        or None,
                    )
                ),
                visibility_config=_visibility(name),
            )

        def rate_limit(name: str, priority: int, limit: int, scope: wafv2.CfnWebACL.StatementProperty):
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=limit, aggregate_key_type="IP", scope_down_statement=scope
                    )
                ),
                visibility_config=_visibility(name),
            )

        body_rules_outside_webhooks = wafv2.CfnWebACL.RuleProperty(
            name="CommonRuleSetBodyRulesOutsideWebhooks",
            priority=2,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                and_statement=wafv2.CfnWebACL.AndStatementProperty(
                    statements=[
                        wafv2.CfnWebACL.StatementProperty(
                            or_statement=wafv2.CfnWebACL.OrStatementProperty(
                                statements=[
                                    wafv2.CfnWebACL.StatementProperty(
                                        label_match_statement=wafv2.CfnWebACL.LabelMatchStatementProperty(
                                            key=label, scope="LABEL"
                                        )
                                    )
                                    for label in WEBHOOK_BODY_LABELS
                                ]
                            )
                        ),
                        not_webhook_path,
                    ]
                )
            ),
            visibility_config=_visibility("CommonRuleSetBodyRulesOutsideWebhooks"),
        )
        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility("ats-api"),
            rules=[
                managed("AWSManagedRulesCommonRuleSet", 1, counted=WEBHOOK_BODY_RULES),
                body_rules_outside_webhooks,
                managed("AWSManagedRulesKnownBadInputsRuleSet", 3),
                rate_limit("RateLimitPerIp", 4, constants.WAF_RATE_LIMIT_PER_5_MIN, not_webhook_path),
                rate_limit("RateLimitWebhooksPerIp", 5, constants.WAF_WEBHOOK_RATE_LIMIT_PER_5_MIN, webhook_path),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation", resource_arn=self.rest_api.deployment_stage.stage_arn, web_acl_arn=acl.attr_arn
        )
        return acl

    def add_route(
        self,
        method: str,
        path: str,
        fn: lambda_.IFunction,
        *,
        authenticated: bool = True,
        scopes: Sequence[str] = (),
    ) -> apigw.Method:
        """Route `method path` to `fn` (Lambda proxy). Authenticated routes go through the Cognito authorizer;
        with `scopes` (`Scope` members or their values) the route is scope-only: access tokens carrying one of them.
        """
        resource = self.rest_api.root.resource_for_path(path)
        options: dict = {"request_validator": self.validator}
        if authenticated:
            options.update(authorizer=self.authorizer, authorization_type=apigw.AuthorizationType.COGNITO)
            if scopes:
                known = {s.value for s in Scope}
                unknown = sorted(set(scopes) - known)
                if unknown:
                    raise ValueError(f"{method} {path}: unknown scopes {unknown}; known: {sorted(known)}")
                options["authorization_scopes"] = [full_scope(Scope(s)) for s in scopes]
        else:
            if scopes:
                raise ValueError(f"{method} {path}: a public route cannot require scopes")
            options.update(authorization_type=apigw.AuthorizationType.NONE)
        return resource.add_method(method, self._proxy_to(fn), **options)

    def _proxy_to(self, fn: lambda_.IFunction) -> apigw.Integration:
        """A Lambda proxy integration, and ONE permission per function for this API to invoke it (CDK's
        LambdaIntegration adds two per method, for the stage and the console's test-invoke: 86 of the stack's
        500 resources with every domain's routes, docs/decisions.md)."""
        if fn.node.path not in self._invokable:
            fn.add_permission(
                "ApiGatewayInvoke",
                principal=iam.ServicePrincipal("apigateway.amazonaws.com"),
                source_arn=self.rest_api.arn_for_execute_api(),  # any stage, method and path of this API only
            )
            self._invokable.add(fn.node.path)
        return apigw.Integration(
            type=apigw.IntegrationType.AWS_PROXY,
            integration_http_method="POST",
            uri=f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}:lambda:path/2015-03-31/functions/"
            f"{fn.function_arn}/invocations",
        )


def _webhook_path_statement() -> wafv2.CfnWebACL.StatementProperty:
    # CONTAINS, not STARTS_WITH: on the execute-api host the path begins with the API stage (/prod/v1/webhooks/).
    return wafv2.CfnWebACL.StatementProperty(
        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
            positional_constraint="CONTAINS",
            search_string=constants.WEBHOOK_PATH_PREFIX,
            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
        )
    )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )
