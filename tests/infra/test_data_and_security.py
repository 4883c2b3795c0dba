"""Template properties of data stores, keys and IAM: physical names, DynamoDB, S3, KMS, least privilege."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synth, as_list, ref_target, refs_in

# Properties that set a resource's physical (account- or region-unique) name. A literal string here blocks
# replacement updates and a second deployment of the stack; derived values (Fn::Join on the stack name) are fine.
PHYSICAL_NAME_PROPERTIES: dict[str, str] = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::DynamoDB::GlobalTable": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::Events::Archive": "ArchiveName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::Cognito::UserPool": "UserPoolName",
    "AWS::WAFv2::WebACL": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::SSM::Parameter": "Name",
    "AWS::Kinesis::Stream": "Name",
}

# Top-level `*Name` properties that may be literal: not unique outside their parent, or not names of anything.
HARMLESS_LITERAL_NAMES: set[tuple[str, str]] = {
    ("AWS::IAM::Policy", "PolicyName"),  # inline policy: unique within its role only
    ("AWS::ApiGateway::Stage", "StageName"),  # unique within its REST API
    ("AWS::ApiGateway::RestApi", "Name"),  # REST API names need not be unique
    ("AWS::ApiGateway::Authorizer", "Name"),  # unique within its REST API
    ("AWS::Cognito::UserPoolGroup", "GroupName"),  # unique within its user pool (the role names)
    ("AWS::CloudWatch::Alarm", "MetricName"),  # the metric watched
    ("AWS::SNS::Topic", "DisplayName"),  # a label
    ("AWS::Cognito::UserPoolResourceServer", "Name"),  # a label; the identifier ("ats") is unique within its pool
}

# Resource "*" is accepted only for these write actions, which do not support resource-level permissions.
# Each is covered by the `AwsSolutions-IAM5[Resource::*]` acknowledgment in infra/nag.py.
WILDCARD_RESOURCE_ACTIONS: set[str] = {
    # The audit linker finds the table's stream (ListStreams has no resource-level permissions; the stream's own
    # actions name it)
    "dynamodb:ListStreams",
    # The messages failures report reads the capture-rate metrics (GetMetricData has no resource-level permissions)
    "cloudwatch:GetMetricData",
    # X-Ray tracing (Lambda Tracing.ACTIVE and the state machine's tracing)
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    # Step Functions log delivery to CloudWatch Logs (vended logs)
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
    # CloudWatch custom metrics (Powertools Metrics uses EMF today; PutMetricData would need "*")
    "cloudwatch:PutMetricData",
}


def _is_literal(value: Any) -> bool:
    return isinstance(value, str | int | float)


# --- 3. physical names -----------------------------------------------------------------------------------------


def test_no_hard_coded_physical_names(synth: Synth) -> None:
    offenders = [
        (logical_id, resource["Type"], prop, resource["Properties"][prop])
        for logical_id, resource in synth.resources.items()
        if (prop := PHYSICAL_NAME_PROPERTIES.get(resource["Type"]))
        and prop in resource.get("Properties", {})
        and _is_literal(resource["Properties"][prop])
    ]
    assert offenders == []


def test_other_literal_name_properties_are_known_harmless(synth: Synth) -> None:
    unknown = sorted(
        (resource["Type"], prop, logical_id)
        for logical_id, resource in synth.resources.items()
        for prop, value in resource.get("Properties", {}).items()
        if prop.endswith("Name") and _is_literal(value) and (resource["Type"], prop) not in HARMLESS_LITERAL_NAMES
    )
    assert unknown == [], "literal *Name properties: add to PHYSICAL_NAME_PROPERTIES or HARMLESS_LITERAL_NAMES"


# --- 4. DynamoDB -----------------------------------------------------------------------------------------------


def test_tables_exist_and_no_global_tables(synth: Synth) -> None:
    assert synth.of_type("AWS::DynamoDB::GlobalTable") == {}, "the local emulator (moto) cannot deploy GlobalTable"
    assert len(synth.of_type("AWS::DynamoDB::Table")) >= 6  # audit, platform and the four domain tables


def test_tables_pitr_customer_key_on_demand(synth: Synth) -> None:
    """Every table has point-in-time recovery except the per-person keys of the retention domain, which must not
    outlive their deletion in any backup (crypto-shredding: a restore brings back only ciphertext)."""
    keys = set(synth.of_type("AWS::KMS::Key"))
    tables = synth.of_type("AWS::DynamoDB::Table")
    without_backups = {k for k in tables if k.startswith("RetentionRetentionKeysTable")}
    assert len(without_backups) == 1
    for logical_id, table in tables.items():
        props = table["Properties"]
        pitr = props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
        assert pitr is (logical_id not in without_backups), logical_id
        sse = props.get("SSESpecification", {})
        assert sse.get("SSEEnabled") is True and sse.get("SSEType") == "KMS", logical_id
        assert ref_target(sse.get("KMSMasterKeyId")) in keys, f"{logical_id}: not encrypted with a key of the stack"
        assert props.get("BillingMode") == "PAY_PER_REQUEST", logical_id


# --- 5. S3 -----------------------------------------------------------------------------------------------------


def _bucket(synth: Synth, construct_path_suffix: str) -> tuple[str, dict[str, Any]]:
    matches = [
        (k, v["Properties"])
        for k, v in synth.of_type("AWS::S3::Bucket").items()
        if synth.paths.get(k, "").endswith(construct_path_suffix)
    ]
    assert len(matches) == 1, f"expected one bucket at */{construct_path_suffix}, found {matches}"
    return matches[0]


def test_archive_bucket_lifecycle_tiers(synth: Synth) -> None:
    _, props = _bucket(synth, "Storage/Archive/Resource")
    rules = [r for r in props["LifecycleConfiguration"]["Rules"] if r.get("Status") == "Enabled"]
    classes = {t["StorageClass"]: t["TransitionInDays"] for r in rules for t in r.get("Transitions", [])}
    assert "STANDARD_IA" in classes
    glacier = {c for c in classes if c in {"GLACIER", "GLACIER_IR", "DEEP_ARCHIVE"}}
    assert glacier, classes
    assert classes["STANDARD_IA"] < min(classes[c] for c in glacier)
    expirations = [r["ExpirationInDays"] for r in rules if "ExpirationInDays" in r]
    assert expirations and min(expirations) > max(classes.values()), (expirations, classes)


def test_audit_exports_bucket_versioned_and_object_locked(synth: Synth) -> None:
    """Object Lock on in every stage (the mode and period per stage: test_stages.py)."""
    _, props = _bucket(synth, "Storage/AuditExports/Resource")
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"


def _ssl_denied(synth: Synth, bucket_id: str) -> bool:
    for policy in synth.of_type("AWS::S3::BucketPolicy").values():
        props = policy["Properties"]
        if ref_target(props["Bucket"]) != bucket_id:
            continue
        for statement in as_list(props["PolicyDocument"]["Statement"]):
            secure = statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
            if statement["Effect"] == "Deny" and secure in ("false", False) and "s3:*" in as_list(statement["Action"]):
                return True
    return False


def test_every_bucket_blocks_public_access_enforces_ssl_and_logs(synth: Synth) -> None:
    buckets = synth.of_type("AWS::S3::Bucket")
    log_targets = {
        ref_target(b["Properties"].get("LoggingConfiguration", {}).get("DestinationBucketName"))
        for b in buckets.values()
    }
    log_targets.discard(None)
    assert len(log_targets) == 1, f"expected one access-log bucket, found {log_targets}"
    assert len(buckets) >= 3
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props.get("PublicAccessBlockConfiguration") == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert _ssl_denied(synth, logical_id), f"{logical_id}: no aws:SecureTransport deny in its bucket policy"
        assert "BucketEncryption" in props, logical_id
        if logical_id not in log_targets:
            logging = props.get("LoggingConfiguration", {})
            assert ref_target(logging.get("DestinationBucketName")) in log_targets, f"{logical_id}: no access logs"


# --- 10. KMS ---------------------------------------------------------------------------------------------------


def test_kms_keys_rotate(synth: Synth) -> None:
    """Every symmetric key rotates; KMS cannot rotate an asymmetric key (the audit digests' signing key), whose
    signatures must verify with the one public key published beside them."""
    keys = synth.of_type("AWS::KMS::Key")
    assert keys
    for logical_id, key in keys.items():
        if key["Properties"].get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT":
            assert key["Properties"].get("EnableKeyRotation") is True, logical_id


# --- 7. IAM least privilege ------------------------------------------------------------------------------------


def _identity_statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    """Allow statements of identity policies: AWS::IAM::Policy, ManagedPolicy and roles' inline policies."""
    statements: list[tuple[str, dict[str, Any]]] = []
    for logical_id, resource in synth.resources.items():
        props = resource.get("Properties", {})
        documents: list[Any] = []
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props["PolicyDocument"])
        if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            documents.extend(p["PolicyDocument"] for p in props.get("Policies", []))
        for document in documents:
            statements.extend(
                (logical_id, s) for s in as_list(document["Statement"]) if s.get("Effect", "Allow") == "Allow"
            )
    return statements


def test_no_action_wildcards(synth: Synth) -> None:
    statements = _identity_statements(synth)
    assert statements
    wild = [
        (logical_id, action)
        for logical_id, statement in statements
        for action in as_list(statement.get("Action", []))
        if action == "*" or (isinstance(action, str) and action.endswith(":*"))
    ]
    assert wild == []
    assert not any("NotAction" in s or "NotResource" in s for _, s in statements)


def test_resource_wildcard_only_for_actions_without_resource_permissions(synth: Synth) -> None:
    offenders = sorted(
        (logical_id, action)
        for logical_id, statement in _identity_statements(synth)
        if "*" in as_list(statement.get("Resource", []))
        for action in as_list(statement.get("Action", []))
        if action not in WILDCARD_RESOURCE_ACTIONS
    )
    assert offenders == []


def test_no_managed_policies_except_acknowledged(synth: Synth) -> None:
    """Only API Gateway's account logging role uses an AWS-managed policy (acknowledged AwsSolutions-IAM4)."""
    with_managed = {
        logical_id: [str(refs_in(arn) or arn) for arn in role["Properties"]["ManagedPolicyArns"]]
        for logical_id, role in synth.of_type("AWS::IAM::Role").items()
        if role["Properties"].get("ManagedPolicyArns")
    }
    for logical_id in with_managed:
        assert synth.paths[logical_id].endswith("Api/RestApi/CloudWatchRole/Resource"), with_managed


@pytest.mark.parametrize("type_", ["AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"])
def test_resource_policies_allow_no_anonymous_principal(synth: Synth, type_: str) -> None:
    for logical_id, policy in synth.of_type(type_).items():
        for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"]):
            if statement["Effect"] != "Allow":
                continue
            principal = statement.get("Principal")
            assert principal not in ("*", {"AWS": "*"}), f"{logical_id}: allows anyone: {statement}"


# --- KMS use through services only -----------------------------------------------------------------------------

KMS_SERVICES = {"dynamodb", "sqs", "s3", "secretsmanager"}


def _function_roles(synth: Synth) -> set[str]:
    return {str(ref_target(fn["Properties"]["Role"])) for fn in synth.our_functions().values()}


def test_functions_use_keys_only_through_their_services(synth: Synth) -> None:
    """A function's KMS statement carries kms:ViaService (dynamodb/sqs/s3/secretsmanager), or is the envelope
    encryption grant, which requires a tenant encryption context, or signs with the audit digests' key (an
    asymmetric key that encrypts nothing)."""
    roles = _function_roles(synth)
    checked = 0
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if not refs_in(policy["Properties"]["Roles"]) & roles:
            continue
        for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"]):
            if not any(str(a).startswith("kms:") for a in as_list(statement["Action"])):
                continue
            if set(as_list(statement["Action"])) <= {"kms:Sign", "kms:GetPublicKey"}:
                assert "DigestSigningKey" in str(statement["Resource"]), statement
                continue
            checked += 1
            condition = statement.get("Condition", {})
            via = condition.get("StringEquals", {}).get("kms:ViaService")
            if via is not None:
                joined = "".join(p if isinstance(p, str) else "" for p in via["Fn::Join"][1])
                assert joined.split(".")[0] in KMS_SERVICES, statement
            else:
                assert condition == {"Null": {"kms:EncryptionContext:tenant": "false"}}, statement
    assert checked >= 4


def test_health_route_only_reads_its_table(synth: Synth) -> None:
    """GET /v1/health: GetItem on the platform table, Decrypt through DynamoDB, nothing else of data."""
    fn = next(
        k
        for k, v in synth.our_functions().items()
        if v["Properties"]["Handler"] == "functions.platform.handlers.health.lambda_handler"
    )
    role = ref_target(synth.props(fn)["Role"])
    actions = {
        str(a)
        for policy in synth.of_type("AWS::IAM::Policy").values()
        if role in refs_in(policy["Properties"]["Roles"])
        for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"])
        for a in as_list(statement["Action"])
    }
    data_actions = {a for a in actions if not a.startswith(("logs:", "xray:"))}
    assert data_actions == {"dynamodb:GetItem", "kms:Decrypt"}


def test_event_bus_is_encrypted_with_the_data_key(synth: Synth) -> None:
    buses = synth.of_type("AWS::Events::EventBus")
    assert len(buses) == 1
    key = ref_target(next(iter(buses.values()))["Properties"]["KmsKeyIdentifier"])
    assert synth.paths[str(key)].endswith("Foundation/DataKey/Resource")
    statements = as_list(synth.props(str(key))["KeyPolicy"]["Statement"])
    events_use = [s for s in statements if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert any(
        {"kms:GenerateDataKey", "kms:Decrypt"} <= set(as_list(s["Action"]))
        and "aws:SourceArn" in s.get("Condition", {}).get("StringEquals", {})
        for s in events_use
    ), events_use
