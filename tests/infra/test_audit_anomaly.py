"""Anomalous-access alerts in the template (issue 13 §7, infra/constructs/audit_anomaly.py): the linker may update
the detector's counters and nothing else of the audit table, and publish to the bus; the policy routes read and
insert policy versions only; one alarm; the resources it adds.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synth


@pytest.fixture(scope="module")
def wired(synth: Synth) -> Synth:
    """The stack as AuditConstruct wires it (`add_anomaly_detection`, `add_alert_policy_routes`)."""
    return synth


def _statements(synth: Synth, role_path: str) -> list[dict[str, Any]]:
    out = []
    for key, policy in synth.of_type("AWS::IAM::Policy").items():
        if role_path in synth.paths[key]:
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def _actions(statement: dict[str, Any]) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else list(statement["Action"])


def _leading_keys(statement: dict[str, Any]) -> list[str] | None:
    keys = (statement.get("Condition") or {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
    return list(keys) if keys is not None else None


def test_the_linker_updates_only_the_counters_and_publishes_to_the_bus(wired: Synth) -> None:
    statements = _statements(wired, "Audit/Linker")
    updates = [s for s in statements if "dynamodb:UpdateItem" in _actions(s)]
    assert [(_actions(s), _leading_keys(s)) for s in updates] == [(["dynamodb:UpdateItem"], ["T#*#AUDIT#ANOMALY#*"])]
    assert not [s for s in statements if {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} & set(_actions(s))]
    assert any("events:PutEvents" in _actions(s) for s in statements)
    (linker,) = [f for k, f in wired.our_functions().items() if "Audit/Linker" in wired.paths[k]]
    assert "EVENT_BUS_NAME" in linker["Properties"]["Environment"]["Variables"]


def test_the_policy_routes_read_and_insert_policy_versions_only(wired: Synth) -> None:
    statements = [
        s for s in _statements(wired, "Audit/AuditApi") if any(a.startswith("dynamodb:") for a in _actions(s))
    ]
    granted = {(a, tuple(_leading_keys(s) or ())) for s in statements for a in _actions(s)}
    assert ("dynamodb:Query", ("T#*#AUDIT#ALERTPOLICY",)) in granted
    assert ("dynamodb:PutItem", ("T#*#AUDIT#ALERTPOLICY",)) in granted
    assert not {a for a, _ in granted} & {"dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    paths = {
        (m["Properties"]["HttpMethod"], wired.paths[k])
        for k, m in wired.of_type("AWS::ApiGateway::Method").items()
        if "audit-alert-policy" in wired.paths[k]
    }
    assert {method for method, _ in paths} == {"GET", "PUT"}


def test_one_alarm_on_alerts_and_detector_errors(wired: Synth) -> None:
    (alarm,) = [
        a for k, a in wired.of_type("AWS::CloudWatch::Alarm").items() if "AnomalousAccessAlarm" in wired.paths[k]
    ]
    expressions = [m.get("Expression") for m in alarm["Properties"]["Metrics"]]
    assert "FILL(alerts, 0) + FILL(errors, 0)" in expressions
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Properties"]["Metrics"] if "MetricStat" in m}
    assert names == {"AuditAlertsRaised", "AnomalyDetectorErrors"}


def test_the_wiring_adds_four_resources_at_most(wired: Synth) -> None:
    # The audit API function (its role, policy, invoke permission) serves every audit route; the wiring's own: the
    # API resource /v1/audit-alert-policy, its GET and PUT methods, and the alarm.
    own = sorted(p for p in wired.paths.values() if "/audit-alert-policy/" in p or "/AnomalousAccessAlarm/" in p)
    assert 1 <= len(own) <= 4, own


def test_cdk_nag_finds_nothing_unacknowledged_in_the_wiring(wired: Synth) -> None:
    assert wired.validation_error is None, wired.validation_error
