"""cdk-nag (AwsSolutions pack, run through CDK Validations): no unacknowledged finding, and every acknowledgment
in infra/nag.py says why, specifically.

How findings surface: `Validations.of(app).add_plugins(AwsSolutionsChecks(app))` makes `App.synth()` write
`validation-report.json` into the cloud assembly and, when any plugin's conclusion is "failure", raise
`RuntimeError("ValidationFailed: ...")`. The companion test proves the same mechanism reports a bad resource.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from tests.infra.conftest import ROOT, Synth

NAG_SOURCE = ROOT / "infra" / "nag.py"


def _nag_report(report: dict[str, Any]) -> dict[str, Any]:
    reports = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert len(reports) == 1, (
        f"AwsSolutions plugin did not report: {[r['pluginName'] for r in report['pluginReports']]}"
    )
    return reports[0]


def _acknowledgments() -> list[tuple[str, str]]:
    """(rule, reason) of every `_ack(node, rule, reason)` call in infra/nag.py, read from its source."""
    tree = ast.parse(NAG_SOURCE.read_text())
    acks: list[tuple[str, str]] = []
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "_ack":
            rule, reason = call.args[1], call.args[2]
            assert isinstance(rule, ast.Constant) and isinstance(rule.value, str), ast.dump(rule)
            assert isinstance(reason, ast.Constant) and isinstance(reason.value, str), ast.dump(reason)
            acks.append((rule.value, reason.value))
    return acks


def test_synth_passes_aws_solutions_checks(synth: Synth) -> None:
    report = _nag_report(synth.validation_report())
    violations = [(v["ruleName"], [c["constructPath"] for c in v["violatingConstructs"]]) for v in report["violations"]]
    assert synth.validation_error is None, synth.validation_error
    assert violations == []
    assert report["conclusion"] == "success"


def test_every_suppressed_finding_has_a_reason_from_nag_py(synth: Synth) -> None:
    reasons = {reason for _, reason in _acknowledgments()}
    suppressed = _nag_report(synth.validation_report())["suppressedViolations"]
    assert suppressed, "expected the acknowledged findings of infra/nag.py to be reported as suppressed"
    for finding in suppressed:
        assert finding["reason"] in reasons, finding


def test_no_stale_acknowledgments(synth: Synth) -> None:
    """Every rule acknowledged in infra/nag.py still matches at least one finding."""
    suppressed = {v["ruleName"] for v in _nag_report(synth.validation_report())["suppressedViolations"]}
    stale = sorted({rule for rule, _ in _acknowledgments()} - suppressed)
    assert stale == [], f"acknowledged in infra/nag.py but no longer found by cdk-nag: {stale}"


def test_acknowledgments_carry_specific_reasons() -> None:
    acks = _acknowledgments()
    assert len(acks) >= 5, acks
    reasons = [reason for _, reason in acks]
    assert len(set(reasons)) == len(reasons), "the same reason is reused for different acknowledgments"
    for rule, reason in acks:
        words = reason.lower().split()
        assert len(reason) > 20, (rule, reason)
        assert len(set(words)) >= 5, f"{rule}: reason is not a sentence: {reason!r}"
        assert len(set(words)) / len(words) > 0.5, f"{rule}: reason repeats itself: {reason!r}"
        assert rule.split("[")[0].lower() not in reason.lower(), f"{rule}: reason restates the rule id"


def test_companion_unsafe_bucket_is_reported(tmp_path: Path) -> None:
    """The mechanism the real app relies on does fail: a bucket without SSL or access logs is reported."""
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Bad")
    s3.Bucket(stack, "Unsafe")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = _nag_report(json.loads((tmp_path / "validation-report.json").read_text()))
    assert report["conclusion"] == "failure"
    rules = {v["ruleName"] for v in report["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules, rules
