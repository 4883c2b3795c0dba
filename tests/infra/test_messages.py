"""The messages domain's template: its table and indexes, one webhook per provider, every queue drained by the
ingest consumer, the API's two functions with their own grants, and the alarms of issue 12."""

from __future__ import annotations

from typing import Any

from functions.messages.dal.items import INDEXES
from infra import constants
from tests.infra.conftest import Synth, ref_target


def _logical(synth: Synth, fragment: str, type_: str) -> str:
    (found,) = [k for k, v in synth.of_type(type_).items() if fragment in synth.paths.get(k, k)]
    return found


def _statements(synth: Synth, role_of_function: str) -> list[dict[str, Any]]:
    role = ref_target(synth.props(role_of_function)["Role"])
    out = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if any(ref_target(r) == role for r in policy["Properties"].get("Roles", [])):
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def test_the_table_has_an_index_per_filter_and_a_ttl(synth: Synth) -> None:
    table = synth.props(_logical(synth, "Messages/MessagesTable", "AWS::DynamoDB::Table"))
    indexes = {i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in table["GlobalSecondaryIndexes"]}
    assert indexes == {name: list(keys) for name, keys in INDEXES.items()}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_one_unauthenticated_webhook_route_per_provider(synth: Synth) -> None:
    methods = synth.of_type("AWS::ApiGateway::Method")
    webhook_paths = {synth.paths[k] for k, m in methods.items() if m["Properties"]["AuthorizationType"] == "NONE"}
    for provider in ("ses-sns", "twilio", "sendgrid", "sendgrid-inbound", "graph"):
        assert any(f"/webhooks/{provider}/{{tenant}}/POST" in p for p in webhook_paths), provider


def test_every_messages_queue_feeds_the_ingest_consumer(synth: Synth) -> None:
    ingest = _logical(synth, "Messages/Ingest/", "AWS::Lambda::Function")
    mappings = [
        m["Properties"]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if ref_target(m["Properties"]["FunctionName"]) == ingest
    ]
    queues = {
        k
        for k in synth.of_type("AWS::SQS::Queue")
        if "Messages" in synth.paths[k] and "DeadLetters" not in synth.paths[k] and "/EraseOn" not in synth.paths[k]
    }
    assert {ref_target(m["EventSourceArn"]) for m in mappings} == queues
    assert len(queues) == 8  # five webhooks, the API's records, SES events and captured mail from EventBridge
    assert all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)
    env = synth.props(ingest)["Environment"]["Variables"]
    assert {"MESSAGES_TABLE_NAME", "EVENT_BUS_NAME", "DATA_KEY_ARN", "TENANT_SECRET_PREFIX"} <= set(env)


def test_ses_events_on_the_default_bus_reach_their_queue(synth: Synth) -> None:
    (rule,) = [
        r["Properties"]
        for k, r in synth.of_type("AWS::Events::Rule").items()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.ses"]
    ]
    assert "EventBusName" not in rule  # SES publishes to the account's default bus
    target = ref_target(rule["Targets"][0]["Arn"])
    assert target is not None and "SesEventsQueue" in synth.paths[target]


def test_recording_and_reading_are_two_functions_with_their_own_grants(synth: Synth) -> None:
    recorder = _logical(synth, "Messages/RecordApi", "AWS::Lambda::Function")
    reader = _logical(synth, "Messages/ApiApi", "AWS::Lambda::Function")
    # The auditor-grant check's Query (leading keys T#*#GRANT#*) is every audited route's, not a table read.
    recorder_actions = _actions(
        [s for s in _statements(synth, recorder) if "T#*#GRANT#*" not in str(s.get("Condition", ""))]
    )
    reader_actions = _actions(_statements(synth, reader))
    assert "sqs:SendMessage" in recorder_actions and "sqs:SendMessage" not in reader_actions
    assert not any(
        a.startswith("dynamodb:") and a != "dynamodb:GetItem" and a != "dynamodb:PutItem" for a in recorder_actions
    )
    assert "kms:Decrypt" in reader_actions and "dynamodb:Query" in reader_actions


def _alarm_on(synth: Synth, metric: str) -> dict[str, Any]:
    (alarm,) = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric
        and a["Properties"].get("Namespace") == constants.METRICS_NAMESPACE
    ]
    return alarm


def test_signature_failures_malformed_payloads_and_ingest_failures_are_alarmed(synth: Synth) -> None:
    assert _alarm_on(synth, "WebhookSignatureRejected")["Threshold"] == 10
    assert _alarm_on(synth, "MessagePayloadRejected")["Threshold"] == 10
    assert _alarm_on(synth, "MessageEventsFailed")["ComparisonOperator"] == "GreaterThanThreshold"
    for metric in ("WebhookSignatureRejected", "MessagePayloadRejected", "MessageEventsFailed"):
        assert _alarm_on(synth, metric)["AlarmActions"], metric


def test_a_drop_in_volume_is_alarmed_by_anomaly_detection(synth: Synth) -> None:
    (alarm,) = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if any("ANOMALY_DETECTION_BAND" in str(m.get("Expression", "")) for m in a["Properties"].get("Metrics", []))
    ]
    assert alarm["ComparisonOperator"] == "LessThanLowerThreshold" and alarm["ThresholdMetricId"] == "band"
    (stored,) = [m for m in alarm["Metrics"] if m["Id"] == "stored"]
    assert stored["MetricStat"]["Metric"]["MetricName"] == "MessageEventsStored"
    assert alarm["AlarmActions"]


def _definition(synth: Synth, fragment: str) -> dict[str, Any]:
    """A state machine's ASL, its function ARNs (Fn::GetAtt) left as placeholders."""
    import json

    body = synth.props(_logical(synth, fragment, "AWS::StepFunctions::StateMachine"))["DefinitionString"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(p if isinstance(p, str) else "arn" for p in parts)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def test_an_export_request_starts_the_export_workflow_whose_failures_are_recorded(synth: Synth) -> None:
    (rule,) = [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("detail-type") == ["MessageExportRequested"]
    ]
    assert rule["EventPattern"]["source"] == ["ats.messages"] and "EventBusName" in rule
    machine = ref_target(rule["Targets"][0]["Arn"])
    assert machine is not None and "Messages/MessageExport/" in synth.paths[machine]
    states = _definition(synth, "Messages/MessageExport/")["States"]
    assert states["ExportDone"]["Choices"][0]["Variable"] == "$.done"
    assert states["ExportDone"]["Default"] == "ExportStep"
    (catch,) = states["ExportStep"]["Catch"]
    assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordExportFailure"}
    assert states["RecordExportFailure"]["Next"] == "ExportFailed" and states["ExportFailed"]["Type"] == "Fail"
    worker = synth.props(_logical(synth, "Messages/ExportWorker/", "AWS::Lambda::Function"))
    assert worker["Timeout"] == 900


def test_the_export_functions_reach_only_the_exports_prefix_of_the_locked_bucket(synth: Synth) -> None:
    bucket = _logical(synth, "Storage/AuditExports", "AWS::S3::Bucket")
    for fragment, wanted in (
        ("Messages/ExportWorker/", {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"}),
        ("Messages/ExportApiApi", {"s3:GetObject", "s3:ListBucket"}),
    ):
        statements = _statements(synth, _logical(synth, fragment, "AWS::Lambda::Function"))
        on_exports = [s for s in statements if bucket in str(s["Resource"])]
        assert _actions(on_exports) == wanted, fragment
        for statement in on_exports:
            if statement["Action"] == "s3:ListBucket":
                assert statement["Condition"] == {"StringLike": {"s3:prefix": ["messages/exports/*"]}}
            else:
                assert "/messages/exports/*" in str(statement["Resource"])
        assert not any("s3:Delete" in a for a in _actions(statements)), fragment
    rules = synth.props(bucket)["LifecycleConfiguration"]["Rules"]
    unfinished = {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}, "Id": "unfinished-uploads"}
    assert unfinished | {"Status": "Enabled"} in rules


def test_captured_mail_reaches_the_ingest_consumer_through_eventbridge(synth: Synth) -> None:
    bucket_id = _logical(synth, "Messages/InboundMail/", "AWS::S3::Bucket")
    bucket = synth.props(bucket_id)
    assert bucket["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    (expiry,) = bucket["LifecycleConfiguration"]["Rules"]
    assert (expiry["Prefix"], expiry["ExpirationInDays"]) == ("inbound/", constants.CAPTURED_MAIL_DAYS)
    (rule,) = [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]
    ]
    assert "EventBusName" not in rule  # S3 publishes to the account's default bus
    assert rule["EventPattern"]["detail"]["object"] == {"key": [{"prefix": "inbound/"}]}
    assert ref_target(rule["EventPattern"]["detail"]["bucket"]["name"][0]) == bucket_id
    target = ref_target(rule["Targets"][0]["Arn"])
    assert target is not None and "CapturedMailQueue" in synth.paths[target]
    (ses,) = [
        s
        for p in synth.of_type("AWS::S3::BucketPolicy").values()
        if ref_target(p["Properties"]["Bucket"]) == bucket_id
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "ses.amazonaws.com"}
    ]
    assert ses["Action"] == "s3:PutObject" and "AWS:SourceAccount" in ses["Condition"]["StringEquals"]
    ingest = _logical(synth, "Messages/Ingest/", "AWS::Lambda::Function")
    reads = [s for s in _statements(synth, ingest) if bucket_id in str(s["Resource"])]
    assert _actions(reads) == {"s3:GetObject"} and "/inbound/*" in str(reads[0]["Resource"])
