"""Sizes, timeouts and names of the infrastructure, in one place."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".build"
CODE_PACKAGES = ("shared", "functions")

SERVICE_NAME = "ats-compliance"
METRICS_NAMESPACE = "AtsCompliance"
API_STAGE_NAME = "prod"  # the API Gateway stage in the URL path; the deployment stage is in the stack name

# Deployment stages (`cdk synth -c stage=dev|prod`): dev is removable, prod retains and locks.
STAGES = ("dev", "prod")
DEFAULT_STAGE = "dev"
DEV_AUDIT_OBJECT_LOCK_DAYS = 1
DEV_KEY_PENDING_WINDOW_DAYS = 7

LAMBDA_PYTHON_VERSION = "3.13"  # the layer's wheels; the runtime is lambda_.Runtime.PYTHON_3_13 (foundation.py)
LAMBDA_MEMORY_MB = 512
LAMBDA_TIMEOUT_SECONDS = 15
WORKFLOW_TASK_TIMEOUT_SECONDS = 60
WORKFLOW_TIMEOUT_MINUTES = 5

# Event consumers: EventBridge rule -> SQS -> Lambda (batch, partial failures), DLQ after a few receives.
CONSUMER_BATCH_SIZE = 10
CONSUMER_MAX_RECEIVES = 3
CONSUMER_BATCH_WINDOW_SECONDS = 1
QUEUE_RETENTION_DAYS = 4
DEAD_LETTER_RETENTION_DAYS = 14
RULE_TARGET_RETRIES = 2

API_THROTTLE_RATE = 200
API_THROTTLE_BURST = 400
WAF_RATE_LIMIT_PER_5_MIN = 2000
# Providers deliver in bursts (a batch of delivery events, a retry storm after their outage), from few addresses.
WAF_WEBHOOK_RATE_LIMIT_PER_5_MIN = 20000
WEBHOOK_PATH_PREFIX = "/v1/webhooks/"

# OAuth 2.0: the descriptions of the scopes of `shared.auth.Scope` (resource server `shared.auth.RESOURCE_SERVER`);
# the API construct refuses to synthesise if the two lists differ.
SCOPE_DESCRIPTIONS: dict[str, str] = {
    "identity.read": "Read the calling client's identity",
    "messages.read": "Read candidate message records",
    "messages.write": "Record candidate messages and delivery events",
    "retention.read": "Read retention policies and fingerprints",
    "retention.write": "Change retention policies, request erasure",
    "failures.write": "Report recruitment workflow failures",
    "assets.write": "Record assets issued to hires",
    "audit.read": "Read the audit trail and exports",
}
# Tokens of people (docs/identity.md): an ID or access token cannot be revoked where it is verified (the API's
# Cognito authorizer checks signature and expiry only), so its lifetime bounds how long a deprovisioned user keeps
# access. Refresh tokens are revocable (token revocation on every client) and bounded to a working day.
ID_TOKEN_VALIDITY_MINUTES = 15
ACCESS_TOKEN_VALIDITY_MINUTES = 15
REFRESH_TOKEN_VALIDITY_HOURS = 12

# Federation with an enterprise identity provider (infra/constructs/stage.py `IdentityProviderConfig`): the IdP's
# groups claim lands in this mutable custom attribute at every federated sign-in; the pre-token-generation trigger
# maps it to roles. Cognito's attribute values are at most 2048 characters.
IDP_GROUPS_ATTRIBUTE = "idp_groups"
IDP_GROUPS_MAX_LENGTH = 2048
# Context keys: per-stage providers in cdk.json, or one stage's providers on the command line (JSON).
IDENTITY_PROVIDERS_CONTEXT = "ats:identityProviders"
IDENTITY_PROVIDER_OVERRIDE_CONTEXT = "identity_provider"

HEALTH_WORKFLOW_SCHEDULE_MINUTES = 5
# GET /v1/health says "degraded" when the last heartbeat is older than this many schedule periods.
HEALTH_STALE_AFTER_PERIODS = 3
EVENT_ARCHIVE_DAYS = 365

ARCHIVE_TO_INFREQUENT_ACCESS_DAYS = 30
ARCHIVE_TO_GLACIER_IR_DAYS = 90
ARCHIVE_TO_DEEP_ARCHIVE_DAYS = 365
ARCHIVE_EXPIRY_DAYS = 365 * 7
AUDIT_OBJECT_LOCK_YEARS = 7
ACCESS_LOG_EXPIRY_DAYS = 400

TENANT_SECRET_PREFIX_SUFFIX = "/tenants/"
CAPTURED_MAIL_DAYS = 7  # raw MIME in the inbound-mail bucket; the parsed message is sealed in the messages table
