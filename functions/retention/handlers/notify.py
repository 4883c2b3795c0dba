"""Consumer of `RecordPurged` (source `ats.retention`): tells the tenant's ATS of each removal with a signed
Standard Webhooks POST to the policy's `notification_url` (logic/notify.py). Failures return the message to the
queue; its DLQ keeps what keeps failing."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.retention.dal.items import from_item, policy_key
from functions.retention.logic.notify import DeliveryFailed, HttpSender, notify_removal
from functions.retention.models.entities import RetentionPolicy
from functions.retention.models.events import SOURCE, RecordPurged
from shared.auth import Actor
from shared.aws import LazyClient
from shared.consumers import EventConsumer
from shared.observability import logger, metrics, tracer
from shared.secrets import TenantSecrets
from shared.settings import BaseSettings, load_settings


class NotifySettings(BaseSettings):
    """The consumer that tells the tenant's ATS of every removal (signed outbound webhook)."""

    RETENTION_TABLE_NAME: str = Field(min_length=3)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)


SAMPLE_EVENT = "sqs_eventbridge_record_purged.json"  # events/: what this entry point receives (benchmarks, tests)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

JOB = "retention-notify"
TIMEOUT_SECONDS = 5


class DynamoPolicyReader:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def policy(self, tenant: str) -> RetentionPolicy | None:
        item = self.client.get_item(TableName=self._table, Key=policy_key(tenant)).get("Item")
        return from_item(RetentionPolicy, item) if item else None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could point the signed request anywhere (an internal address): it counts as a failure.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class UrllibSender:
    """POSTs with the standard library, 5 s timeout, no redirects, https only (plain http only to the hosts
    named in `allow_http_hosts`, e.g. a loopback endpoint in tests or on the local runtime)."""

    def __init__(self, *, allow_http_hosts: frozenset[str] = frozenset(), timeout: float = TIMEOUT_SECONDS) -> None:
        self._http_hosts = allow_http_hosts
        self._timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        parts = urlsplit(url)
        if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in self._http_hosts)):
            raise DeliveryFailed("the notification URL must be https")
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - scheme checked
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise DeliveryFailed(f"the tenant's endpoint is unreachable: {type(exc).__name__}") from None


# The policy accepts plain http only to the loopback (local runs, logic/policy.py); in AWS the loopback is the
# function's own sandbox, so allowing it there opens nothing.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# Built on first use; tests replace `sender`.
sender: HttpSender | None = None


def _sender() -> HttpSender:
    global sender
    if sender is None:
        sender = UrllibSender(allow_http_hosts=LOOPBACK_HOSTS)
    return sender


def _handle(event: RecordPurged, actor: Actor) -> None:
    settings = load_settings(NotifySettings)
    delivered = notify_removal(
        event,
        policies=DynamoPolicyReader(settings.RETENTION_TABLE_NAME),
        keys=TenantSecrets(settings.TENANT_SECRET_PREFIX),
        sender=_sender(),
    )
    if delivered:
        metrics.add_metric(name="RemovalNotificationsDelivered", unit="Count", value=1)


consumer = EventConsumer(RecordPurged, _handle, job=JOB, sources={SOURCE})


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer(event, context)
