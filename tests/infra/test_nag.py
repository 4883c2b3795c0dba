"""cdk-nag (AwsSolutions pack, run through CDK Validations): no unacknowledged finding in either stage, and every
acknowledgment says why, specifically. Acknowledgments are made by `infra.nag.acknowledge`: stack-wide ones in
infra/nag.py, the others by the construct helper that builds the resource (infra/constructs/).

How findings surface: `Validations.of(app).add_plugins(AwsSolutionsChecks(app))` makes `App.synth()` write
`validation-report.json` into the cloud assembly and, when any plugin's conclusion is "failure", raise
`RuntimeError("ValidationFailed: ...")`. The companion test proves the same mechanism reports a bad resource.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from tests.infra.conftest import ROOT, Synth

NAG_SOURCE = ROOT / "infra" / "nag.py"
ACK_SOURCES = [NAG_SOURCE, *sorted((ROOT / "infra" / "constructs").glob("*.py"))]


def nag_report(report: dict[str, Any]) -> dict[str, Any]:
    reports = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert len(reports) == 1, (
        f"AwsSolutions plugin did not report: {[r['pluginName'] for r in report['pluginReports']]}"
    )
    return reports[0]


@dataclass(frozen=True)
class Ack:
    source: Path
    rule: str  # a regular expression: f-string parts (a method, a logical id) match anything
    reason: str  # likewise
    literal_rule: bool
    reason_words: str  # the literal text of the reason, for the wording checks


def _pattern(node: ast.expr) -> tuple[str, str, bool]:
    """(regex, literal text, is fully literal) of a string constant or f-string argument."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(node.value), node.value, True
    assert isinstance(node, ast.JoinedStr), f"acknowledge() takes a string or f-string, not {ast.dump(node)}"
    regex, text = "", ""
    for part in node.values:
        if isinstance(part, ast.Constant):
            regex, text = regex + re.escape(str(part.value)), text + str(part.value)
        else:
            regex, text = regex + ".+", text + " "
    return regex, text, False


def acknowledgments() -> list[Ack]:
    """Every `acknowledge(node, rule, reason)` call in infra/nag.py and infra/constructs/, read from the source."""
    acks: list[Ack] = []
    for source in ACK_SOURCES:
        for call in ast.walk(ast.parse(source.read_text())):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "acknowledge":
                rule, _, literal = _pattern(call.args[1])
                reason, words, _ = _pattern(call.args[2])
                acks.append(Ack(source, rule, reason, literal, words))
    return acks


def test_synth_passes_aws_solutions_checks(staged_synth: Synth) -> None:
    report = nag_report(staged_synth.validation_report())
    violations = [(v["ruleName"], [c["constructPath"] for c in v["violatingConstructs"]]) for v in report["violations"]]
    assert staged_synth.validation_error is None, staged_synth.validation_error
    assert violations == []
    assert report["conclusion"] == "success"


def test_every_suppressed_finding_has_a_reason_from_the_sources(staged_synth: Synth) -> None:
    acks = acknowledgments()
    suppressed = nag_report(staged_synth.validation_report())["suppressedViolations"]
    assert suppressed, "expected the acknowledged findings to be reported as suppressed"
    for finding in suppressed:
        assert any(
            re.fullmatch(a.rule, finding["ruleName"]) and re.fullmatch(a.reason, finding["reason"]) for a in acks
        ), finding


def test_no_stale_acknowledgments(synth: Synth) -> None:
    """Every rule acknowledged stack-wide in infra/nag.py still matches at least one finding."""
    suppressed = {v["ruleName"] for v in nag_report(synth.validation_report())["suppressedViolations"]}
    stack_wide = {a.rule for a in acknowledgments() if a.source == NAG_SOURCE}
    stale = sorted(rule for rule in stack_wide if not any(re.fullmatch(rule, name) for name in suppressed))
    assert stale == [], f"acknowledged in infra/nag.py but no longer found by cdk-nag: {stale}"


def test_nag_py_names_no_cdk_hashed_logical_id() -> None:
    """The helpers own the acknowledgments of what they build: none is keyed by a logical id like Probe75E06634."""
    hashed = re.compile(r"[A-Za-z]+[0-9A-F]{8}\b")
    assert not hashed.search(NAG_SOURCE.read_text()), "infra/nag.py names a CDK-hashed logical id"


def test_acknowledgments_carry_specific_reasons() -> None:
    acks = acknowledgments()
    assert len(acks) >= 6, acks
    reasons = [a.reason for a in acks]
    assert len(set(reasons)) == len(reasons), "the same reason is reused for different acknowledgments"
    for ack in acks:
        words = ack.reason_words.lower().split()
        assert len(ack.reason_words) > 20, ack
        assert len(set(words)) >= 5, f"{ack.rule}: reason is not a sentence: {ack.reason_words!r}"
        assert len(set(words)) / len(words) > 0.5, f"{ack.rule}: reason repeats itself: {ack.reason_words!r}"
        rule_id = ack.rule.replace("\\", "").split("[")[0].lower()
        assert rule_id not in ack.reason_words.lower(), f"{ack.rule}: reason restates the rule id"


def test_companion_unsafe_bucket_is_reported(tmp_path: Path) -> None:
    """The mechanism the real app relies on does fail: a bucket without SSL or access logs is reported."""
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Bad")
    s3.Bucket(stack, "Unsafe")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = nag_report(json.loads((tmp_path / "validation-report.json").read_text()))
    assert report["conclusion"] == "failure"
    rules = {v["ruleName"] for v in report["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules, rules
