"""Lambda functions, the dependency layer, and the asynchronous paths (rule targets, DLQs, alarms)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from tests.infra.conftest import ROOT, Synth, ref_target, refs_in

# Alarms on a rate of refusals (issue 12: "repeated signature or authentication failures"); every other alarm
# fires on the first occurrence.
RATE_ALARMS = {"WebhookSignatureRejected", "MessagePayloadRejected"}
# Alarms on a probe that reports 1 on success (issue 12's synthetic message): below 1, or no data, is the alarm.
PROBE_ALARMS = {"SyntheticMessageSucceeded"}
EXPECTED_ARCHITECTURE = json.loads((ROOT / "cdk.json").read_text())["context"]["ats:lambdaArchitecture"]


def _alarms(synth: Synth, namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == namespace and a["Properties"].get("MetricName") == metric
    ]


def _alarmed_dimension_targets(alarms: list[dict[str, Any]], dimension: str) -> set[str]:
    return {
        target
        for alarm in alarms
        for d in alarm.get("Dimensions", [])
        if d["Name"] == dimension and (target := ref_target(d["Value"]))
    }


# --- 6. Lambda -------------------------------------------------------------------------------------------------


def test_functions_are_ours_or_cdk_providers(synth: Synth) -> None:
    functions = synth.our_functions()
    assert len(functions) >= 4
    for logical_id, fn in functions.items():
        assert str(fn["Properties"].get("Handler", "")).startswith("functions."), (logical_id, synth.paths[logical_id])


def test_functions_arm64_python(synth: Synth) -> None:
    assert EXPECTED_ARCHITECTURE == "arm64"
    for logical_id, fn in synth.our_functions().items():
        props = fn["Properties"]
        assert props.get("Architectures") == [EXPECTED_ARCHITECTURE], logical_id
        assert str(props.get("Runtime", "")).startswith("python3."), logical_id
        assert props.get("TracingConfig") == {"Mode": "Active"}, logical_id


def test_each_function_has_its_own_role(synth: Synth) -> None:
    roles = {logical_id: ref_target(fn["Properties"]["Role"]) for logical_id, fn in synth.our_functions().items()}
    assert all(role in synth.of_type("AWS::IAM::Role") for role in roles.values()), roles
    shared = [role for role, count in Counter(roles.values()).items() if count > 1]
    assert shared == [], roles


def test_each_function_logs_to_its_domains_log_group_with_retention(synth: Synth) -> None:
    groups = synth.of_type("AWS::Logs::LogGroup")
    by_domain: dict[str, set[str]] = {}
    for logical_id, fn in synth.our_functions().items():
        group = ref_target(fn["Properties"].get("LoggingConfig", {}).get("LogGroup"))
        assert group in groups, f"{logical_id}: no log group of the stack"
        assert groups[group]["Properties"].get("RetentionInDays", 0) > 0, group
        assert fn["Properties"]["LoggingConfig"]["LogFormat"] == "JSON", logical_id
        by_domain.setdefault(synth.paths[logical_id].split("/")[1], set()).add(str(group))
    assert all(len(used) == 1 for used in by_domain.values()), by_domain  # one group per domain
    assert len({g for used in by_domain.values() for g in used}) == len(by_domain)


def test_layer_holds_aarch64_binaries(synth: Synth) -> None:
    layers = synth.of_type("AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    props = next(iter(layers.values()))["Properties"]
    assert props.get("CompatibleArchitectures") == [EXPECTED_ARCHITECTURE]
    layer_dir = synth.asset_dir(props["Content"]["S3Key"]) / "python"
    assert (layer_dir / "pydantic_core").is_dir(), f"no pydantic_core in the layer asset {layer_dir}"
    core = [p.name for p in (layer_dir / "pydantic_core").glob("*.so")]
    assert any("aarch64" in name for name in core), core
    x86 = [str(p.relative_to(layer_dir)) for p in layer_dir.rglob("*.so") if "x86_64" in p.name]
    assert x86 == []
    for logical_id, fn in synth.our_functions().items():
        assert refs_in(fn["Properties"].get("Layers", [])) == set(layers), logical_id


# --- 9. asynchronous paths and alarms --------------------------------------------------------------------------


def test_every_rule_target_has_a_dead_letter_queue(synth: Synth) -> None:
    queues = synth.of_type("AWS::SQS::Queue")
    rules = synth.of_type("AWS::Events::Rule")
    assert rules
    for logical_id, rule in rules.items():
        for target in rule["Properties"].get("Targets", []):
            dlq = ref_target(target.get("DeadLetterConfig", {}).get("Arn"))
            assert dlq in queues, f"{logical_id}/{target.get('Id')}: no dead-letter queue"
            assert "RetryPolicy" in target, f"{logical_id}/{target.get('Id')}: no retry policy"


def _dead_letter_queues(synth: Synth) -> set[str]:
    """Queues named as the DLQ of a rule target, a function, or another queue's redrive policy."""
    dlqs: set[str] = set()
    for rule in synth.of_type("AWS::Events::Rule").values():
        for target in rule["Properties"].get("Targets", []):
            dlqs |= refs_in(target.get("DeadLetterConfig", {}))
    for fn in synth.of_type("AWS::Lambda::Function").values():
        dlqs |= refs_in(fn["Properties"].get("DeadLetterConfig", {}))
    for config in synth.of_type("AWS::Lambda::EventInvokeConfig").values():
        dlqs |= refs_in(config["Properties"].get("DestinationConfig", {}).get("OnFailure", {}))
    for queue in synth.of_type("AWS::SQS::Queue").values():
        dlqs |= refs_in(queue["Properties"].get("RedrivePolicy", {}))
    return dlqs & set(synth.of_type("AWS::SQS::Queue"))


def test_every_dead_letter_queue_has_a_visible_messages_alarm(synth: Synth) -> None:
    dlqs = _dead_letter_queues(synth)
    assert len(dlqs) >= 2
    alarmed = _alarmed_dimension_targets(_alarms(synth, "AWS/SQS", "ApproximateNumberOfMessagesVisible"), "QueueName")
    assert sorted(dlqs - alarmed) == []


def test_asynchronous_functions_have_a_dead_letter_queue(synth: Synth) -> None:
    """Functions invoked asynchronously (subscription filters, rules) keep failed events in a DLQ."""
    async_functions: set[str] = set()
    for sub in synth.of_type("AWS::Logs::SubscriptionFilter").values():
        async_functions |= refs_in(sub["Properties"]["DestinationArn"])
    for rule in synth.of_type("AWS::Events::Rule").values():
        for target in rule["Properties"].get("Targets", []):
            async_functions |= refs_in(target["Arn"])
    async_functions &= set(synth.our_functions())
    for logical_id in async_functions:
        assert ref_target(synth.props(logical_id).get("DeadLetterConfig", {}).get("TargetArn")), logical_id


def test_every_state_machine_has_a_failed_executions_alarm(synth: Synth) -> None:
    machines = set(synth.of_type("AWS::StepFunctions::StateMachine"))
    assert machines
    alarmed = _alarmed_dimension_targets(_alarms(synth, "AWS/States", "ExecutionsFailed"), "StateMachineArn")
    assert sorted(machines - alarmed) == []


def test_every_function_has_an_errors_alarm(synth: Synth) -> None:
    alarms = _alarms(synth, "AWS/Lambda", "Errors")
    alarmed = _alarmed_dimension_targets(alarms, "FunctionName")
    assert sorted(set(synth.our_functions()) - alarmed) == []


def test_alarms_notify_the_alarm_topic(synth: Synth) -> None:
    topics = set(synth.of_type("AWS::SNS::Topic"))
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    assert alarms
    for logical_id, alarm in alarms.items():
        props = alarm["Properties"]
        assert refs_in(props.get("AlarmActions", [])) & topics, f"{logical_id}: notifies no topic"
        if props.get("MetricName") in RATE_ALARMS:  # "repeated" failures: a burst, not the first one
            assert props["Threshold"] >= 1 and props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        elif props.get("MetricName") in PROBE_ALARMS:  # a probe's success (1) missing or failing
            assert props["Threshold"] == 1 and props["ComparisonOperator"] == "LessThanThreshold", logical_id
        elif "ThresholdMetricId" in props:  # anomaly detection: below the learned band
            assert props["ComparisonOperator"] == "LessThanLowerThreshold", logical_id
        else:
            assert props["Threshold"] == 0 and props["ComparisonOperator"] == "GreaterThanThreshold", logical_id
