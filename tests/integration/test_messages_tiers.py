"""The storage tiers of messages end to end in process, on moto: messages recorded through the ATS's API and
applied by the ingest consumer, then the daily tiering's workflow steps (functions/messages/handlers/tiering.py)
run as Step Functions would, with the frozen clock moved on: warm after 90 days (still found by candidate and by
text, content read back from the archive), cold after 365, deleted after 730 with its archive object and its
search terms, except the one a legal hold covers. And the policy route's periods.

Reuses the ingest tier's world and helpers (test_messages_ingest.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import pytest

from shared import clock
from shared.audit import DynamoAuditLog
from tests.conftest import make_lambda_context
from tests.integration import test_messages_ingest
from tests.integration.conftest import (
    ARCHIVE_BUCKET,
    AUDIT_TABLE,
    MESSAGES_TABLE,
    REGION,
    RestEventFactory,
    claims,
)
from tests.integration.test_messages_ingest import NOW, MessagesWorld, api, drain, record, recorded

world = test_messages_ingest.world  # the ingest tier's fixture: KMS key, queues, bus tap, tenant secrets
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def archive(world: MessagesWorld) -> str:
    """The archive bucket as infra/constructs/storage.py makes it: versioned."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARCHIVE_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]
    s3.put_bucket_versioning(Bucket=ARCHIVE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return ARCHIVE_BUCKET


def policy_call(rest_event: RestEventFactory, method: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    from functions.messages.handlers import api as messages_api

    event = rest_event("/v1/message-policy", method=method, claims=claims(tenant="acme", groups="compliance_officer"))
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["Content-Type"] = "application/json"
    response = messages_api.lambda_handler(event, make_lambda_context())
    return response["statusCode"], json.loads(response["body"])


def run_tiering() -> dict[str, dict[str, dict[str, int]]]:
    """One execution of the daily workflow: the start task, then per tenant page tasks until it is done."""
    from functions.messages.handlers import tiering

    started = tiering.lambda_handler({"step": "start", "execution": "it-exec"}, make_lambda_context("TieringStep"))
    finished = {}
    for state in started["tenants"]:
        while not state["done"]:
            state = tiering.lambda_handler({"step": "page", "state": state}, make_lambda_context("TieringStep"))
        finished[state["tenant"]] = state["counts"]
    return finished


def item(message_id: str) -> dict[str, Any] | None:
    from functions.messages.dal.items import message_key

    found = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=MESSAGES_TABLE, Key=message_key("acme", message_id)
    )
    return found.get("Item")


def versions(key: str) -> list[Any]:
    listed = boto3.client("s3", region_name=REGION).list_object_versions(Bucket=ARCHIVE_BUCKET, Prefix=key)
    return [v for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])] if v["Key"] == key]


def term_items(message_id: str) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=MESSAGES_TABLE)["Items"]
    return [i for i in items if "#TERM#" in i["pk"]["S"] and i["message_id"]["S"] == message_id]


def capture_puts() -> dict[str, str]:
    """The `x-amz-checksum-sha256` header of every PutObject the functions send from now on, by object key."""
    from shared.aws import client

    sent: dict[str, str] = {}

    def record_header(request: Any, **_: Any) -> None:
        path = unquote(urlsplit(request.url).path).lstrip("/")
        key = path.removeprefix(f"{ARCHIVE_BUCKET}/")  # path-style or virtual-hosted
        header = request.headers.get("x-amz-checksum-sha256", b"")
        sent[key] = header.decode() if isinstance(header, bytes) else str(header)

    client("s3").meta.events.register("before-send.s3.PutObject", record_header)
    return sent


def read(rest_event: RestEventFactory, message_id: str, groups: str = "recruiter") -> tuple[int, Any]:
    response, body = api(rest_event, f"/v1/messages/{message_id}", groups=groups)
    return response["statusCode"], body


def place_hold(rest_event: RestEventFactory, candidate_id: str) -> None:
    from functions.messages.handlers import holds_api

    event = rest_event("/v1/message-holds/H-9", method="PUT", claims=claims(groups="compliance_officer"))
    event["body"] = json.dumps(
        {
            "subject_kind": "candidate",
            "subject_id": candidate_id,
            "reason": "claim 2029-3",
            "owner": "legal",
            "review_at": (clock.now() + timedelta(days=180)).isoformat(),
        }
    )
    event["headers"]["Content-Type"] = "application/json"
    response = holds_api.lambda_handler(event, make_lambda_context("MessageHoldsApi"))
    assert response["statusCode"] == 201, response


def test_a_message_goes_warm_then_cold_then_is_deleted_and_a_held_one_is_kept(
    world: MessagesWorld, archive: str, rest_event: RestEventFactory
) -> None:
    status, policy = policy_call(rest_event, "PUT", {"content": "full", "version": 0})
    assert status == 200 and (policy["warm_after_days"], policy["cold_after_days"], policy["delete_after_days"]) == (
        90,
        365,
        730,
    )
    ids = []
    for body in (recorded("ats-1"), recorded("ats-2", candidate_id="cand-held")):
        response, receipt = record(rest_event, body)
        assert response["statusCode"] == 202, receipt
        ids.extend(receipt["message_ids"])
    assert drain(world.api_queue_url) == {"batchItemFailures": []}
    first, held = ids
    hot_item = item(first)
    assert hot_item is not None and "sealed_body" in hot_item and "tier" not in hot_item
    assert run_tiering() == {"acme": {"delete": {}, "cold": {}, "warm": {}}}  # nothing is 90 days old yet

    # --- day 100: warm --------------------------------------------------------------------------------------------
    clock.freeze(NOW + timedelta(days=100))
    puts = capture_puts()
    counts = run_tiering()
    assert counts["acme"]["warm"] == {"warm": 2}

    stub = item(first)
    assert stub is not None and stub["tier"]["S"] == "warm"
    assert "sealed_subject" not in stub and "sealed_body" not in stub
    assert stub["history"] == hot_item["history"] and stub["content_hash"] == hot_item["content_hash"]
    key = stub["archive_key"]["S"]
    assert key == f"messages/acme/{NOW:%Y}/{NOW:%m}/{first}.json"
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.head_object(Bucket=archive, Key=key)["StorageClass"] == "STANDARD_IA"
    raw = s3.get_object(Bucket=archive, Key=key)["Body"].read()
    # S3 checks the SHA-256 the put sends against the body it receives (moto neither keeps nor checks it)
    assert puts[key] == base64.b64encode(hashlib.sha256(raw).digest()).decode()
    archived = json.loads(raw)
    assert archived["item"]["sealed_body"]["S"] == hot_item["sealed_body"]["S"]  # as sealed, never opened
    assert "Zürich" not in json.dumps(archived, ensure_ascii=False)

    # found by every metadata search and by its words, as before
    _, page = api(rest_event, "/v1/messages?candidate_id=cand-9")
    assert [(m["message_id"], m["tier"], m["content_kept"]) for m in page["messages"]] == [(first, "warm", True)]
    _, page = api(rest_event, "/v1/messages?q=zurich&candidate_id=cand-9")
    assert [m["message_id"] for m in page["messages"]] == [first]
    # read by id: whole again, the content read back from the archive for a content reader only
    status, whole = read(rest_event, first)
    assert status == 200 and whole["tier"] == "warm" and whole["content"]["subject"] == "Entretien à Zürich"
    assert [h["status"] for h in whole["history"]] == ["delivered"] and whole["candidate_id"] == "cand-9"
    status, metadata = read(rest_event, first, groups="hiring_manager")
    assert status == 200 and metadata["content"] is None and metadata["content_kept"]

    # --- day 400: cold ---------------------------------------------------------------------------------------------
    clock.freeze(NOW + timedelta(days=400))
    place_hold(rest_event, "cand-held")
    assert run_tiering()["acme"]["cold"] == {"cold": 2}
    assert item(first)["tier"]["S"] == "cold"  # type: ignore[index]
    assert s3.head_object(Bucket=archive, Key=key)["StorageClass"] == "GLACIER_IR"
    assert len(versions(key)) == 1  # the Standard-IA version is gone
    status, whole = read(rest_event, first)
    assert status == 200 and whole["tier"] == "cold" and whole["content"]["body"].startswith("Je confirme")
    assert run_tiering() == {"acme": {"delete": {}, "cold": {}, "warm": {}}}  # the same day again: nothing more

    # --- day 800: the end -------------------------------------------------------------------------------------------
    clock.freeze(NOW + timedelta(days=800))
    assert term_items(first)
    counts = run_tiering()
    assert counts["acme"]["delete"] == {"deleted": 1, "held_skipped": 1}

    assert item(first) is None and versions(key) == [] and term_items(first) == []
    assert read(rest_event, first)[0] == 404
    status, kept = read(rest_event, held)
    assert status == 200 and kept["tier"] == "cold" and kept["on_hold"]
    assert kept["content"]["subject"] == "Entretien à Zürich" and term_items(held)
    deletions = [e for e in DynamoAuditLog(AUDIT_TABLE).entries("acme", limit=1000) if e.action == "messages:delete"]
    assert [(e.actor, e.resource) for e in deletions] == [("system:messages-tiering", f"message/{first}:deleted")]


def test_the_policy_periods_are_read_changed_and_checked(world: MessagesWorld, rest_event: RestEventFactory) -> None:
    status, policy = policy_call(rest_event, "GET")
    assert status == 200 and policy["version"] == 0 and policy["delete_after_days"] == 730

    status, changed = policy_call(
        rest_event, "PUT", {"content": "metadata", "version": 0, "warm_after_days": 30, "cold_after_days": 180}
    )
    assert status == 200, changed
    assert (changed["warm_after_days"], changed["cold_after_days"], changed["delete_after_days"]) == (30, 180, 730)

    status, refused = policy_call(rest_event, "PUT", {"content": "metadata", "version": 1, "delete_after_days": 120})
    assert status == 400
    assert "1 <= warm_after_days < cold_after_days < delete_after_days <= 3650" in refused["error"]["message"]
    assert policy_call(rest_event, "GET")[1]["version"] == 1

    from functions.messages.dal.policy import DynamoPolicyStore

    registry = DynamoPolicyStore(MESSAGES_TABLE)
    assert registry.tenants() == ["acme"]  # the tiering's tenant registry, written with the policy
    registry.register("globex")
    registry.register("globex")
    assert registry.tenants() == ["acme", "globex"]
