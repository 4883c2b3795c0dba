"""Integration tier: the real adapters and handlers against moto, in process. No network, no server.

Every test runs inside its own `mock_aws()` with fake credentials, the environment the CDK template gives the
functions, fresh tables with the CDK key schema (`pk`/`sk` strings) and every process-wide cache reset, so
no boto3 client or Powertools provider created for one test's mock leaks into the next. moto's DynamoDB gets the
local runtime's fixes (`_dynamodb_as_in_aws`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws
from pytest_socket import disable_socket, enable_socket

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REGION = "eu-west-1"
ACCOUNT = "123456789012"
AUDIT_TABLE = "it-audit"
PLATFORM_TABLE = "it-platform"
RETENTION_TABLE = "it-retention"
RETENTION_KEYS_TABLE = "it-retention-keys"
MESSAGES_TABLE = "it-messages"
ARCHIVE_BUCKET = "it-archive"
EXPORT_BUCKET = "it-exports"
TENANT_SECRET_PREFIX = "it-stack/tenants/"
EVENT_BUS = "it-bus"
SERVICE_VERSION = "9.9.9-it"
METRICS_NAMESPACE = "AtsComplianceIT"

# What infra/constructs/foundation.py gives every function, plus each function's own variables.
FUNCTION_ENV = {
    "POWERTOOLS_SERVICE_NAME": "ats-compliance-it",
    "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "LOG_LEVEL": "INFO",
    "STAGE": "it",
    "SERVICE_VERSION": SERVICE_VERSION,
    "AUDIT_TABLE_NAME": AUDIT_TABLE,
    "PLATFORM_TABLE_NAME": PLATFORM_TABLE,
    "RETENTION_TABLE_NAME": RETENTION_TABLE,
    "RETENTION_KEYS_TABLE_NAME": RETENTION_KEYS_TABLE,
    "MESSAGES_TABLE_NAME": MESSAGES_TABLE,
    "ARCHIVE_BUCKET_NAME": ARCHIVE_BUCKET,
    "EXPORT_BUCKET_NAME": EXPORT_BUCKET,
    "TENANT_SECRET_PREFIX": TENANT_SECRET_PREFIX,
    "EVENT_BUS_NAME": EVENT_BUS,
    "HEALTH_STALE_AFTER_SECONDS": "900",
}

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def _reset_process_caches() -> None:
    from aws_lambda_powertools.utilities import parameters

    from shared.aws import reset_clients
    from shared.settings import _load

    reset_clients()
    parameters.clear_caches()
    _load.cache_clear()


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture(autouse=True, scope="session")
def _dynamodb_as_in_aws() -> None:
    """The local runtime's fixes to moto's DynamoDB, here too (infra/local/adapters.py): transactions from several
    threads at once (the audit linker links chains side by side) without copying whole tables, streams holding
    committed writes only, and Queries reading their own partition."""
    from infra.local import adapters

    adapters.transactions_snapshot_items()
    adapters.queries_read_one_partition()


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials, the functions' environment, a fresh moto backend and clean caches for each test."""
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "_X_AMZN_TRACE_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**AWS_ENV, **FUNCTION_ENV}.items():
        monkeypatch.setenv(name, value)

    from shared import clock
    from shared.observability import metrics

    # Metrics reads its namespace once, when shared.observability is first imported (maybe by another tier).
    monkeypatch.setattr(metrics, "namespace", METRICS_NAMESPACE)
    _reset_process_caches()
    with mock_aws():
        yield
    clock.freeze(None)
    _reset_process_caches()


def _create_tenant_table(ddb: DynamoDBClient, name: str, indexes: dict[str, tuple[str, str]] | None = None) -> None:
    """The key schema of infra/constructs/tables.py: string `pk` and `sk`, on demand; `indexes` maps a global
    secondary index's name to its (partition, sort) attributes, all strings, projecting everything."""
    attributes = {"pk", "sk"} | {a for pair in (indexes or {}).values() for a in pair}
    # `name:N` is a number attribute (infra/constructs/tables.py)
    extra: dict[str, Any] = {}
    if indexes:
        extra["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": range_key.partition(":")[0], "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, (hash_key, range_key) in indexes.items()
        ]
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": a.partition(":")[0], "AttributeType": "N" if a.endswith(":N") else "S"}
            for a in sorted(attributes)
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def retention_indexes() -> dict[str, tuple[str, str]]:
    """The retention table's indexes, as infra/constructs/retention.py declares them (dal/items.py)."""
    from functions.retention.dal.items import BY_PERSON_INDEX, PEOPLE_BY_REFS_INDEX
    from functions.retention.models.entities import DueKind

    return {
        **{kind.index_name: ("tenant", kind.attribute) for kind in DueKind},
        BY_PERSON_INDEX: ("person_key", "sk"),
        PEOPLE_BY_REFS_INDEX: ("tenant", "refs:N"),
    }


def messages_indexes() -> dict[str, tuple[str, str]]:
    """The messages table's indexes (functions/messages/dal/items.py, declared by infra/constructs/messages.py)."""
    from functions.messages.dal.items import INDEXES

    return dict(INDEXES)


@pytest.fixture
def ddb(aws: None) -> DynamoDBClient:
    client: DynamoDBClient = boto3.client("dynamodb", region_name=REGION)
    return client


@pytest.fixture
def tables(ddb: DynamoDBClient) -> dict[str, str]:
    """The audit table (infra/constructs/audit.py) and the domains' tables (infra/constructs/<domain>.py)."""
    _create_tenant_table(ddb, AUDIT_TABLE)
    _create_tenant_table(ddb, PLATFORM_TABLE)
    _create_tenant_table(ddb, RETENTION_TABLE, retention_indexes())
    _create_tenant_table(ddb, RETENTION_KEYS_TABLE)
    _create_tenant_table(ddb, MESSAGES_TABLE, messages_indexes())
    return {
        "audit": AUDIT_TABLE,
        "platform": PLATFORM_TABLE,
        "retention": RETENTION_TABLE,
        "retention_keys": RETENTION_KEYS_TABLE,
        "messages": MESSAGES_TABLE,
    }


@dataclass(frozen=True)
class RetentionWorld:
    """What the retention functions need beyond the tables: the data key, the bus, the buckets, tenant secrets."""

    tables: dict[str, str]
    data_key: str
    bus: str
    archive_bucket: str
    export_bucket: str
    events_queue_url: str  # every event published on the bus lands here (rule on the bus, all sources)


@pytest.fixture
def retention_world(tables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> RetentionWorld:
    """The retention domain's resources on moto: KMS data key (DATA_KEY_ARN), the event bus with a catch-all
    queue, a versioned archive bucket, an Object Lock export bucket and both tenants' `hmac` and
    `webhook/outbound` secrets."""
    import json

    from shared.secrets import new_keyring

    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(Description="it data key")["KeyMetadata"]["Arn"]
    monkeypatch.setenv("DATA_KEY_ARN", key_id)
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name=EVENT_BUS)
    queue_url = sqs.create_queue(QueueName="it-bus-tap")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="tap", EventBusName=EVENT_BUS, EventPattern=json.dumps({"account": [ACCOUNT]}))
    events.put_targets(Rule="tap", EventBusName=EVENT_BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (ARCHIVE_BUCKET, EXPORT_BUCKET):
        s3.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": REGION},  # type: ignore[typeddict-item]
            ObjectLockEnabledForBucket=bucket == EXPORT_BUCKET,
        )
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    secrets = boto3.client("secretsmanager", region_name=REGION)
    for tenant in ("acme", "globex"):
        for kind in ("hmac", "webhook/outbound"):
            secrets.create_secret(Name=f"{TENANT_SECRET_PREFIX}{tenant}/{kind}", SecretString=new_keyring())
    return RetentionWorld(
        tables=tables,
        data_key=key_id,
        bus=EVENT_BUS,
        archive_bucket=ARCHIVE_BUCKET,
        export_bucket=EXPORT_BUCKET,
        events_queue_url=queue_url,
    )


def published(world: RetentionWorld) -> list[dict[str, Any]]:
    """The events published on the bus since the last call (EventBridge envelopes, oldest first)."""
    import json

    sqs = boto3.client("sqs", region_name=REGION)
    out: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=world.events_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return out
        for message in messages:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=world.events_queue_url, ReceiptHandle=message["ReceiptHandle"])


def claims(
    *, tenant: str | None = "acme", sub: str | None = "user-123", groups: str | None = "recruiter"
) -> dict[str, str]:
    """A person's ID-token claims as a REST API's Cognito authorizer hands them over (lists flattened)."""
    out: dict[str, str] = {"token_use": "id", "cognito:username": "jane"}
    if sub is not None:
        out["sub"] = sub
    if tenant is not None:
        out["custom:tenant"] = tenant
    if groups is not None:
        out["cognito:groups"] = groups
    return out


def access_claims(
    *, client_id: str = "client-acme-1", tenant: str | None = "acme", scope: str = "ats/identity.read"
) -> dict[str, str]:
    """A machine client's access-token claims (client credentials) as the REST authorizer hands them over."""
    out = {"sub": client_id, "client_id": client_id, "token_use": "access", "scope": scope, "version": "2"}
    if tenant is not None:
        out["custom:tenant"] = tenant
    return out


@dataclass
class RestEventFactory:
    """API Gateway REST (v1 payload) proxy events."""

    counter: list[int] = field(default_factory=lambda: [0])

    def __call__(
        self,
        path: str,
        *,
        method: str = "GET",
        claims: dict[str, str] | None = None,
        request_id: str | None = None,
        source_ip: str = "203.0.113.7",
    ) -> dict[str, Any]:
        self.counter[0] += 1
        rid = request_id or f"req-{self.counter[0]:04d}"
        context: dict[str, Any] = {
            "accountId": ACCOUNT,
            "apiId": "it0api",
            "domainName": "it0api.execute-api.eu-west-1.amazonaws.com",
            "httpMethod": method,
            "path": f"/it{path}",
            "protocol": "HTTP/1.1",
            "requestId": rid,
            "requestTime": "01/Jan/2025:00:00:00 +0000",
            "requestTimeEpoch": 1735689600000,
            "resourceId": "abc123",
            "resourcePath": path,
            "stage": "it",
            "identity": {"sourceIp": source_ip, "userAgent": "pytest"},
        }
        if claims is not None:
            context["authorizer"] = {"claims": claims}
        return {
            "resource": path,
            "path": path,
            "httpMethod": method,
            "headers": {"Accept": "application/json", "Host": "it0api.execute-api.eu-west-1.amazonaws.com"},
            "multiValueHeaders": {"Accept": ["application/json"]},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": context,
            "body": None,
            "isBase64Encoded": False,
        }


@pytest.fixture
def rest_event() -> RestEventFactory:
    return RestEventFactory()


def new_stream_records(streams: Any, stream_arn: str, iterators: dict[str, str]) -> list[dict[str, Any]]:
    """The records of `stream_arn` not read yet (every shard; `iterators` keeps each shard's place), with their
    creation times as epoch seconds, as Lambda's poller hands them to a function."""
    out: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        shard_id = shard["ShardId"]
        iterator = (
            iterators.get(shard_id)
            or streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")[
                "ShardIterator"
            ]
        )
        answer = streams.get_records(ShardIterator=iterator)
        out.extend(answer["Records"])
        iterators[shard_id] = answer["NextShardIterator"]
    for record in out:
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
    return out
