"""The restore drill (`python -m functions.messages.drill`) in process on moto: the messages table is filled through
the real API, consumer and holds routes (every change audited), restored into a new table, and checked against
the audit trail.

moto's RestoreTableToPointInTime copies the table as it is when asked (it ignores the restore time): a change
made after the restore time is therefore in the restore, which is exactly what the drill must report.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from shared import clock
from tests.conftest import make_lambda_context
from tests.integration import test_messages_ingest
from tests.integration.conftest import AUDIT_TABLE, MESSAGES_TABLE, REGION, RestEventFactory, claims
from tests.integration.test_messages_ingest import NOW, MessagesWorld, drain, record, recorded, set_policy

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

world = test_messages_ingest.world  # the fixture of the ingest tier's moto world
LATER = NOW + timedelta(hours=1)
RESTORE_AT = NOW + timedelta(minutes=30)  # everything below happens at NOW, well before it
TARGET = "it-messages-drill"


def holds_api(rest_event: RestEventFactory, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    from functions.messages.handlers import holds_api as handler

    event = rest_event(path, method=method, claims=claims(groups="compliance_officer"))
    event["body"] = json.dumps(body)
    event["headers"]["Content-Type"] = "application/json"
    response: dict[str, Any] = handler.lambda_handler(event, make_lambda_context())
    return response


def place(rest_event: RestEventFactory, hold_id: str, candidate: str) -> None:
    body = {
        "subject_kind": "candidate",
        "subject_id": candidate,
        "reason": "employment tribunal claim",
        "owner": "legal",
        "review_at": (NOW + timedelta(days=90)).isoformat(),
    }
    response = holds_api(rest_event, "PUT", f"/v1/message-holds/{hold_id}", body)
    assert response["statusCode"] == 201, response


@pytest.fixture
def filled(world: MessagesWorld, rest_event: RestEventFactory) -> Iterator[None]:
    """acme keeps content (policy version 1); two messages of cand-h, held by h-1; h-2 placed and released."""
    set_policy(rest_event, "full")
    for message_id in ("ats-h1", "ats-h2"):
        assert record(rest_event, recorded(message_id, candidate_id="cand-h"))[0]["statusCode"] == 202
    assert drain(world.api_queue_url) == {"batchItemFailures": []}
    place(rest_event, "h-1", "cand-h")
    place(rest_event, "h-2", "cand-x")
    released = holds_api(rest_event, "POST", "/v1/message-holds/h-2/release", {"reason": "claim settled"})
    assert released["statusCode"] == 200, released
    yield


def drill(capsys: pytest.CaptureFixture[str], *args: str, at: datetime = RESTORE_AT) -> tuple[int, dict[str, Any]]:
    from functions.messages.drill import main

    capsys.readouterr()
    argv = ["--table", MESSAGES_TABLE, "--audit-table", AUDIT_TABLE, "--restore-time", at.isoformat(), *args]
    status = main(argv, sleep=lambda seconds: None)
    return status, json.loads(capsys.readouterr().out)


def tables() -> list[str]:
    return boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"]


def kinds(report: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((m["kind"], m["subject"]) for m in report["mismatches"])


@pytest.mark.usefixtures("filled")
def test_a_faithful_restore_passes_and_is_deleted(capsys: pytest.CaptureFixture[str]) -> None:
    clock.freeze(LATER)
    status, report = drill(capsys, "--target", TARGET)
    assert status == 0, report
    assert report["ok"] and report["mismatches"] == [] and report["messages"] == 2
    assert report["tenants"]["acme"] == {
        "messages": 2,
        "held_messages": 2,
        "policy_version": 1,
        "policy_changes_audited_before_t": 1,
        "holds_restored": 2,
        "holds_active": 1,
        "holds_audited_before_t": 2,
    }
    assert report["deleted"] is True and report["kept"] is False and TARGET not in tables()


@pytest.mark.usefixtures("filled")
def test_changes_after_the_restore_time_are_mismatches(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = drill(capsys, at=NOW - timedelta(hours=1))  # before the policy and the holds
    assert status == 1
    assert kinds(report) == [
        ("hold_after_restore_time", "h-1"),
        ("hold_after_restore_time", "h-2"),
        ("hold_unaudited", "h-1"),
        ("hold_unaudited", "h-2"),
        ("policy_after_restore_time", "message-policy"),
        ("policy_unaudited", "message-policy"),
        ("release_after_restore_time", "h-2"),
        ("release_unaudited", "h-2"),
    ]
    assert report["restored_table"].startswith(f"{MESSAGES_TABLE}-drill-") and report["deleted"] is True


@pytest.mark.usefixtures("filled")
def test_a_kept_restore_that_lost_writes_fails_its_check(capsys: pytest.CaptureFixture[str]) -> None:
    clock.freeze(LATER)
    status, report = drill(capsys, "--target", TARGET, "--keep")
    assert status == 0 and report["kept"] is True and TARGET in tables()

    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.delete_item(TableName=TARGET, Key={"pk": {"S": "T#acme#POLICY"}, "sk": {"S": "POLICY"}})
    ddb.delete_item(TableName=TARGET, Key={"pk": {"S": "T#acme#MHOLDS"}, "sk": {"S": "h-2"}})
    held = [i for i in ddb.scan(TableName=TARGET)["Items"] if "h-1" in i.get("holds", {}).get("SS", [])]
    ddb.update_item(
        TableName=TARGET,
        Key={"pk": held[0]["pk"], "sk": held[0]["sk"]},
        UpdateExpression="DELETE holds :h",
        ExpressionAttributeValues={":h": {"SS": ["h-1"]}},
    )

    status, report = drill(capsys, "--target", TARGET, "--check-only")
    assert status == 1
    assert kinds(report) == [
        ("hold_marks_missing", "h-1"),
        ("hold_missing", "h-2"),
        ("policy_change_missing", "message-policy"),
    ]
    assert report["kept"] is False and "deleted" not in report and TARGET in tables()  # never its own to delete


@pytest.mark.usefixtures("filled")
def test_a_policy_change_missing_from_the_audit_trail_is_a_mismatch(capsys: pytest.CaptureFixture[str]) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    (recorded,) = [
        i
        for i in ddb.scan(TableName=AUDIT_TABLE)["Items"]
        if "#AUDITIN#" in i["pk"]["S"] and '"action":"messages:policy"' in i["entries"]["S"]
    ]
    ddb.delete_item(TableName=AUDIT_TABLE, Key={"pk": recorded["pk"], "sk": recorded["sk"]})
    clock.freeze(LATER)
    status, report = drill(capsys)
    assert status == 1
    assert ("policy_unaudited", "message-policy") in kinds(report)


def test_a_refused_restore_is_exit_status_2(world: MessagesWorld, capsys: pytest.CaptureFixture[str]) -> None:
    from functions.messages.drill import main

    status = main(["--table", "no-such-table", "--audit-table", AUDIT_TABLE, "--restore-time", NOW.isoformat()])
    report = json.loads(capsys.readouterr().out)
    assert status == 2 and "SourceTableNotFoundException" in report["error"] and "deleted" not in report

    status, report = drill(capsys, at=NOW + timedelta(days=1))
    assert status == 2 and report["error"] == "the restore time is in the future"


def test_a_restore_time_without_offset_is_refused(world: MessagesWorld) -> None:
    from functions.messages.drill import main

    with pytest.raises(SystemExit) as refused:
        main(["--table", MESSAGES_TABLE, "--audit-table", AUDIT_TABLE, "--restore-time", "2026-11-27T09:00:00"])
    assert refused.value.code == 2
