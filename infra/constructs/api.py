"""The REST API: Cognito JWT authorizer, request validation, access logs, WAF, and one place to add routes."""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra import constants
from infra.constructs.foundation import FoundationConstruct
from shared.auth import Role

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


class ApiConstruct(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, foundation: FoundationConstruct) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = self._build_user_pool()
        self.access_log_group = logs.LogGroup(
            self, "AccessLogs", retention=logs.RetentionDays.THIRTEEN_MONTHS, removal_policy=RemovalPolicy.RETAIN
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
        self._build_waf()
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
            custom_attributes={"tenant": cognito.StringAttribute(min_len=2, max_len=63, mutable=False)},
            password_policy=cognito.PasswordPolicy(
                min_length=14, require_digits=True, require_lowercase=True, require_uppercase=True, require_symbols=True
            ),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for role in Role:
            cognito.CfnUserPoolGroup(
                self,
                f"Group{role.value.title().replace('_', '')}",
                user_pool_id=pool.user_pool_id,
                group_name=role.value,
                description=f"ATS role {role.value}",
            )
        pool.add_client(
            "IntegrationClient",
            auth_flows=cognito.AuthFlow(user_srp=True),
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            prevent_user_existence_errors=True,
        )
        return pool

    def _build_rest_api(self) -> apigw.RestApi:
        return apigw.RestApi(
            self,
            "RestApi",
            description="ATS tracking and compliance API",
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.DESTROY,
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

    def _build_waf(self) -> None:
        def managed(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=name
                    )
                ),
                visibility_config=_visibility(name),
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility("ats-api"),
            rules=[
                managed("AWSManagedRulesCommonRuleSet", 1),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 2),
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp",
                    priority=3,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=constants.WAF_RATE_LIMIT_PER_5_MIN, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=_visibility("RateLimitPerIp"),
                ),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation", resource_arn=self.rest_api.deployment_stage.stage_arn, web_acl_arn=acl.attr_arn
        )

    def add_route(self, method: str, path: str, fn: lambda_.IFunction, *, authenticated: bool = True) -> None:
        """Route `method path` to `fn` (Lambda proxy); authenticated routes go through the JWT authorizer."""
        resource = self.rest_api.root.resource_for_path(path)
        options: dict = {"request_validator": self.validator}
        if authenticated:
            options.update(authorizer=self.authorizer, authorization_type=apigw.AuthorizationType.COGNITO)
        else:
            options.update(authorization_type=apigw.AuthorizationType.NONE)
        resource.add_method(method, apigw.LambdaIntegration(fn), **options)


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )
