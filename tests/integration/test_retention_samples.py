"""The retention entry points accept the sample events of `events/` exactly as AWS delivers them."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from tests.conftest import sample_event
from tests.integration.conftest import EXPORT_BUCKET, REGION, RetentionWorld

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def test_the_notifier_settles_the_sample_batch_when_the_tenant_has_no_endpoint(
    retention_world: RetentionWorld, lambda_context: LambdaContext
) -> None:
    from functions.retention.handlers import notify

    # Given acme has no notification URL in its policy, When the sample RecordPurged batch arrives
    result: dict[str, Any] = notify.lambda_handler(sample_event("sqs_eventbridge_record_purged.json"), lambda_context)
    # Then every record is settled (nothing to tell, nothing to retry)
    assert result == {"batchItemFailures": []}


def test_the_recompute_starts_from_the_sample_policy_change_event(
    retention_world: RetentionWorld, lambda_context: LambdaContext
) -> None:
    from functions.retention.handlers import recompute

    state: dict[str, Any] = recompute.lambda_handler(
        sample_event("eventbridge_retention_policy_changed.json"), lambda_context
    )
    # The shortened periods name the due kinds walked; acme has no records, so one step finishes with a report
    assert state["tenant"] == "acme" and state["policy_version"] == 3
    assert set(state["kinds"]) == {"candidate", "archive"}
    while not state["done"]:
        state = recompute.lambda_handler(state, lambda_context)
    report = boto3.client("s3", region_name=REGION).get_object(
        Bucket=EXPORT_BUCKET, Key="retention/policy-changes/acme/3.json"
    )
    assert json.loads(report["Body"].read())["tenant"] == "acme"


def test_the_sweep_starts_from_the_sample_first_task_payload(
    retention_world: RetentionWorld, lambda_context: LambdaContext
) -> None:
    from functions.retention.handlers import sweep

    # No tenant has reported a vacancy yet: the run has nobody to sweep
    started: dict[str, Any] = sweep.lambda_handler(
        sample_event("stepfunctions_retention_sweep_start.json"), lambda_context
    )
    assert started == {"tenants": []}
