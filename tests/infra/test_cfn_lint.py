"""cfn-lint (Python API; `python -m cfnlint` has no __main__): zero errors on the template of each stage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs
from cfnlint.rules import Match

from tests.infra.conftest import Synth

REGIONS = ["us-east-1", "eu-west-1"]
# W3005 (a DependsOn that a Ref already implies) is how CDK writes dependencies; nothing else is tolerated.
ACCEPTED_WARNINGS = {"W3005"}


def _matches(template: dict[str, Any]) -> list[Match]:
    return list(lint(json.dumps(template), config=ManualArgs(regions=REGIONS)))


def _errors(template: dict[str, Any]) -> list[Match]:
    return [m for m in _matches(template) if m.rule.id.startswith("E")]


@pytest.fixture(scope="module")
def template_matches(staged_synth: Synth) -> list[Match]:
    return _matches(staged_synth.template)


@pytest.fixture(scope="module")
def template_errors(template_matches: list[Match]) -> list[Match]:
    return [m for m in template_matches if m.rule.id.startswith("E")]


def test_template_has_no_warnings_beyond_cdks_own(template_matches: list[Match]) -> None:
    unexpected = [m for m in template_matches if m.rule.id.startswith("W") and m.rule.id not in ACCEPTED_WARNINGS]
    assert [f"{m.rule.id} {m.path_string}: {m.message}" for m in unexpected] == []


def test_template_has_no_cfn_lint_errors(template_errors: list[Match]) -> None:
    assert [f"{m.rule.id} {m.path_string}: {m.message}" for m in template_errors] == []


def test_companion_injected_error_is_caught(synth: Synth) -> None:
    broken = json.loads(json.dumps(synth.template))
    table = next(k for k, v in broken["Resources"].items() if v["Type"] == "AWS::DynamoDB::Table")
    broken["Resources"][table]["Properties"]["BogusProperty"] = "nope"
    broken["Resources"][table]["Properties"]["BillingMode"] = "FREE_FOR_EVER"
    messages = [f"{m.rule.id} {m.message}" for m in _errors(broken)]
    assert any("BogusProperty" in m for m in messages), messages
    assert any("FREE_FOR_EVER" in m for m in messages), messages
