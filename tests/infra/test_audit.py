"""The audit domain's template (issue 13): no function may update or delete audit items, the request path may only
insert inbox items, the linker is the one writer of the chain and reads the table's stream, changes that are not
inserts are alarmed, digests are signed by an asymmetric key on a schedule, and the audit keys cannot be switched
off, deleted or re-policied."""

from __future__ import annotations

from typing import Any

from infra import constants
from tests.infra.conftest import Synth, ref_target


def _audit_table(synth: Synth) -> str:
    (found,) = [k for k in synth.of_type("AWS::DynamoDB::Table") if "AuditTable" in synth.paths[k]]
    return found


def _statements_on(synth: Synth, logical_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(policy path, statement) of every IAM statement whose resources name `logical_id`."""
    out = []
    for key, policy in synth.of_type("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if logical_id in str(statement["Resource"]):
                out.append((synth.paths[key], statement))
    return out


def _actions(statement: dict[str, Any]) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else list(statement["Action"])


# Writes other than inbox inserts, by function: each on its own key family, and no function may delete.
_INBOX = ["T#*#AUDITIN#*"]
_WRITES: dict[tuple[str, str], list[list[str]]] = {
    ("Audit/Linker", "dynamodb:PutItem"): [["T#*#AUDIT#*", "AUDIT#TENANTS"]],  # the chains: the one writer
    ("Audit/Linker", "dynamodb:UpdateItem"): [["T#*#AUDIT#ANOMALY#*"]],  # the anomaly counters, nothing else
    ("Audit/DigestJob", "dynamodb:PutItem"): [["T#*#AUDIT#DIGEST"]],
    ("Audit/AuditApi", "dynamodb:PutItem"): [_INBOX, ["T#*#AUDIT#ALERTPOLICY"], ["T#*#AUDITEXPORT"]],
    ("Audit/AuditExportWorker", "dynamodb:PutItem"): [_INBOX, ["T#*#AUDITEXPORT"]],
}
_READERS = ("Audit/Linker", "Audit/DigestJob", "Audit/AuditApi", "Audit/AuditExportWorker")


def _owner(path: str) -> str | None:
    """The function whose role's policy `path` is (`.../Audit/Linker/ServiceRole/...` or `.../Audit/LinkerRole/...`)."""
    return next((f for f in _READERS if f"{f}/" in path or f"{f}Role/" in path), None)


def test_no_function_may_update_or_delete_an_audit_item_and_requests_only_insert_inbox_items(synth: Synth) -> None:
    table = _audit_table(synth)
    statements = _statements_on(synth, table)
    assert statements
    for path, statement in statements:
        dynamodb = [a for a in _actions(statement) if a.startswith("dynamodb:")]
        assert not {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} & set(dynamodb), path
        owner = _owner(path)
        for action in ("dynamodb:PutItem", "dynamodb:UpdateItem"):
            if action not in dynamodb:
                continue
            keys = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            allowed = _WRITES.get((owner or "", action), [_INBOX] if action == "dynamodb:PutItem" else [])
            assert keys in allowed, (path, action, keys)  # every other audited function: inbox inserts only
        if owner is None:
            assert not [a for a in dynamodb if a != "dynamodb:PutItem"], (path, dynamodb)  # no reads


def test_the_linker_reads_the_table_stream_and_changes_that_are_not_inserts_are_alarmed(synth: Synth) -> None:
    table = _audit_table(synth)
    assert synth.props(table)["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    (mapping,) = [
        m["Properties"]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if ref_target(m["Properties"]["EventSourceArn"]) == table
    ]
    linker = ref_target(mapping["FunctionName"])
    assert linker is not None and "Audit/Linker/" in synth.paths[linker]
    assert mapping["StartingPosition"] == "TRIM_HORIZON" and mapping["BisectBatchOnFunctionError"] is True
    assert "OnFailure" in mapping["DestinationConfig"]
    (alarm,) = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "AuditItemsChanged"
    ]
    assert alarm["Namespace"] == constants.METRICS_NAMESPACE and alarm["AlarmActions"]


def test_digests_are_signed_hourly_by_an_asymmetric_key(synth: Synth) -> None:
    (key_id,) = [k for k, v in synth.of_type("AWS::KMS::Key").items() if v["Properties"].get("KeySpec")]
    key = synth.props(key_id)
    assert (key["KeySpec"], key["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    (job,) = [k for k in synth.of_type("AWS::Lambda::Function") if "Audit/DigestJob/" in synth.paths[k]]
    (rule,) = [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if ref_target(r["Properties"]["Targets"][0]["Arn"]) == job
    ]
    assert rule["ScheduleExpression"] == "cron(5 * * * ? *)"
    signs = [s for _, s in _statements_on(synth, key_id) if "kms:Sign" in _actions(s)]
    assert signs and all("Audit/DigestJob" in p for p, s in _statements_on(synth, key_id) if "kms:Sign" in _actions(s))


def _denied(key: dict[str, Any]) -> set[str]:
    return {
        action
        for statement in key["KeyPolicy"]["Statement"]
        if statement["Effect"] == "Deny"
        for action in _actions(statement)
    }


def test_the_audit_keys_cannot_be_disabled_deleted_or_repolicied_in_prod(synth_prod: Synth) -> None:
    keys = [
        synth_prod.props(k)
        for k in synth_prod.of_type("AWS::KMS::Key")
        if "AuditKey" in synth_prod.paths[k] or "DigestSigningKey" in synth_prod.paths[k]
    ]
    assert len(keys) == 2
    for key in keys:
        assert _denied(key) == {"kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"}
        assert key["BypassPolicyLockoutSafetyCheck"] is True


def test_a_dev_stacks_audit_keys_may_still_go_with_the_stack(synth: Synth) -> None:
    for k in synth.of_type("AWS::KMS::Key"):
        if "AuditKey" in synth.paths[k] or "DigestSigningKey" in synth.paths[k]:
            assert _denied(synth.props(k)) == {"kms:DisableKey", "kms:PutKeyPolicy"}
