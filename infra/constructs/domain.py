"""The base of every domain construct: its table, and one call per entry point (the recipe, docs/recipe.md).

- `route(method, path, handler=...)`: an API route; the function, its grants, settings and the API method.
- `webhook(provider, handler)`: a public, signed webhook route whose function writes to a durable queue.
- `consumer(name, handler, source, detail_types)`: bus rule -> SQS queue (DLQ, alarm) -> batch Lambda.
- `workflow(name, definition, schedule=... | event_pattern=...)`: a state machine started by a rule.
- `tenant_secret(kind, description)`: declares a per-tenant secret kind (template Metadata `AtsTenantSecrets`).
- `allow_bucket(fn, bucket, actions, prefix=...)`: S3 actions on the objects under a prefix (and listing it).

Each call grants exactly what it declares: DynamoDB actions on the listed tables, KMS only through the services
that use the key (`kms:ViaService`), secrets by kind, the bus. The cdk-nag findings its resources raise by design
are acknowledged here, on those resources, with their reasons.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants
from infra.constructs.api import ApiConstruct
from infra.constructs.foundation import FoundationConstruct, FunctionSpec
from infra.constructs.tables import tenant_table
from infra.nag import acknowledge
from shared.audit import INBOX

READ_ACTIONS = ("GetItem", "Query")
WRITE_ACTIONS = ("PutItem", "UpdateItem", "DeleteItem")
TENANT_SECRETS_METADATA = "AtsTenantSecrets"
# EventBridge -> encrypted SQS: the queue policy (and the key grant) for the events service is then conditioned on
# this account, not left open to any rule. A feature flag, set on each domain's own node.
_QUEUE_TARGET_SAME_ACCOUNT = "@aws-cdk/aws-events:eventsTargetQueueSameAccount"
_KMS_SERVICES = ("dynamodb", "sqs", "s3", "secretsmanager")
_LIST_ACTIONS = ("s3:ListBucket", "s3:ListBucketVersions")


@dataclass(frozen=True)
class TableUse:
    """A table and the DynamoDB actions (without the `dynamodb:` prefix) that a function may call on it."""

    table: dynamodb.ITable
    actions: tuple[str, ...]
    leading_keys: tuple[str, ...] = ()  # when set: only items whose partition key matches one (StringLike)


def audit_appends(audit_table: dynamodb.ITable) -> TableUse:
    """What every audited function may do to the audit trail: insert inbox items (`T#<tenant>#AUDITIN#<shard>`,
    shared/audit.py), nothing else: no read, no update, no delete, and no write to the linked chain."""
    return TableUse(audit_table, ("PutItem",), leading_keys=(f"T#*#{INBOX}#*",))


def only(table: dynamodb.ITable, *actions: str) -> TableUse:
    """Narrow a read or write grant to the named actions: `reads=[only(self.table, "GetItem")]`."""
    if not actions:
        raise ValueError("only(table, ...) needs at least one DynamoDB action")
    return TableUse(table, tuple(actions))


TableGrant = dynamodb.ITable | TableUse


@dataclass(frozen=True)
class TenantSecretDeclaration:
    kind: str
    description: str
    session: bool

    def as_metadata(self) -> dict[str, Any]:
        return {"kind": self.kind, "description": self.description, "session": self.session}


@dataclass(frozen=True)
class Webhook:
    function: lambda_.Function
    queue: sqs.Queue
    method: Any  # apigw.Method
    secret_kind: str


@dataclass(frozen=True)
class Consumer:
    function: lambda_.Function
    queue: sqs.Queue
    rule: events.Rule


@dataclass(frozen=True)
class Workflow:
    state_machine: sfn.StateMachine
    rule: events.Rule


class DomainConstruct(Construct):
    """A domain: its tenant-first table (`TABLE_ID`, encrypted with the foundation's `TABLE_KEY`) and the helpers."""

    TABLE_ID: ClassVar[str] = "Table"
    TABLE_KEY: ClassVar[str] = "data"  # "data" or "audit": which foundation key encrypts the table
    TABLE_INDEXES: ClassVar[Mapping[str, tuple[str, str]]] = {}  # GSI name -> (partition, sort) attributes
    TABLE_TTL: ClassVar[str | None] = None  # the table's TTL attribute (epoch seconds), e.g. webhook dedup markers
    TABLE_STREAM: ClassVar[dynamodb.StreamViewType | None] = None  # the table's stream, for a consumer of changes

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: FoundationConstruct,
        api: ApiConstruct | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.node.set_context(_QUEUE_TARGET_SAME_ACCOUNT, True)  # before any child: see the constant
        self.foundation = foundation
        self.api = api
        self.tenant_secrets: list[TenantSecretDeclaration] = []
        self._functions: dict[str, lambda_.Function] = {}
        self._granted: dict[str, set[str]] = {}
        self._rule_dead_letters: sqs.Queue | None = None
        key = foundation.data_key if self.TABLE_KEY == "data" else foundation.audit_key
        self.table: dynamodb.Table = tenant_table(
            self,
            self.TABLE_ID,
            key,
            foundation.stage,
            indexes=self.TABLE_INDEXES,
            ttl_attribute=self.TABLE_TTL,
            stream=self.TABLE_STREAM,
        )

    # --- entry points --------------------------------------------------------------------------------------------

    def route(
        self,
        method: str,
        path: str,
        *,
        handler: str,
        reads: Sequence[TableGrant] = (),
        writes: Sequence[TableGrant] = (),
        keys: Sequence[kms.IKey] = (),
        secrets: Sequence[str] = (),
        bus: bool = False,
        scopes: Sequence[str] = (),
        public: bool = False,
        public_reason: str | None = None,
        name: str | None = None,
        environment: Mapping[str, str] | None = None,
        timeout_seconds: int = constants.LAMBDA_TIMEOUT_SECONDS,
    ) -> lambda_.Function:
        """Add `method path`, served by `handler` (one function per handler module, however many routes).

        `scopes` (e.g. `[Scope.MESSAGES_WRITE]`) makes the route scope-only at the gateway (access tokens with one
        of them); without, people's ID tokens and machines' access tokens both reach `authorize`. `public=True` is
        for health checks, and for routes whose caller proves itself in the request (`public_reason` says how:
        an applicant's one-time signed link); webhooks have their own helper.
        """
        fn = self.function(
            name or _camel(handler.split(".")[-2]) + "Api",
            handler,
            description=f"{method} {path}",
            reads=reads,
            writes=writes,
            keys=keys,
            secrets=secrets,
            bus=bus,
            environment=environment,
            timeout_seconds=timeout_seconds,
        )
        method_construct = self._api().add_route(method, path, fn, authenticated=not public, scopes=scopes)
        if public:
            if public_reason:
                acknowledge(
                    method_construct,
                    "AwsSolutions-APIG4",
                    f"{method} {path} is deliberately public: its caller proves itself inside the request, "
                    f"{public_reason}",
                )
            else:
                acknowledge(
                    method_construct,
                    "AwsSolutions-APIG4",
                    f"{method} {path} is deliberately public: load balancers and uptime checks call it",
                )
            acknowledge(
                method_construct,
                "AwsSolutions-COG4",
                f"{method} {path} is deliberately public, so it has no user pool authorizer",
            )
        return fn

    def webhook(
        self,
        provider: str,
        handler: str,
        *,
        secret_kind: str | None = None,
        description: str | None = None,
        reads: Sequence[TableGrant] = (),
        writes: Sequence[TableGrant] = (),
        bus: bool = False,
    ) -> Webhook:
        """`POST /v1/webhooks/<provider>/{tenant}`: no authorizer (the handler verifies the provider's signature with
        the tenant's `webhook/<provider>` secret), and a durable queue the handler writes to before its 2xx.

        Deduplication needs a table with a TTL: pass it in `writes`. The secret kind is declared with
        `session=True`, so the local runtime hands its keys to local clients for signing.
        """
        if not re.fullmatch(r"[a-z][a-z0-9-]{1,30}", provider):
            raise ValueError(f"webhook provider {provider!r}: lower-case letters, digits and hyphens")
        kind = secret_kind or f"webhook/{provider}"
        self.tenant_secret(kind, description or f"Signing secret of {provider} webhooks", session=True)
        base = _camel(provider)
        timeout = constants.LAMBDA_TIMEOUT_SECONDS
        queue = self.foundation.durable_queue(
            self,
            f"{base}WebhookQueue",
            f"the {provider} webhook",
            visibility_timeout=Duration.seconds(6 * timeout),
        )
        path = f"{constants.WEBHOOK_PATH_PREFIX}{provider}/{{tenant}}"
        fn = self.function(
            f"{base}Webhook",
            handler,
            description=f"POST {path}",
            reads=reads,
            writes=writes,
            secrets=[kind],
            bus=bus,
            environment={"WEBHOOK_QUEUE_URL": queue.queue_url, "WEBHOOK_PROVIDER": provider},
        )
        self.foundation.allow(fn, ["sqs:SendMessage"], [queue.queue_arn])
        self._allow_key(fn, self.foundation.data_key, "sqs", write=True)
        method = self._api().add_route("POST", path, fn, authenticated=False)
        acknowledge(
            method,
            "AwsSolutions-APIG4",
            f"{provider} calls without a bearer token; the handler verifies its signature before anything else",
        )
        acknowledge(
            method,
            "AwsSolutions-COG4",
            f"{provider} signs its calls instead of presenting a token, so the route has no user pool authorizer",
        )
        return Webhook(function=fn, queue=queue, method=method, secret_kind=kind)

    def consumer(
        self,
        name: str,
        handler: str,
        *,
        source: str,
        detail_types: Sequence[str],
        reads: Sequence[TableGrant] = (),
        writes: Sequence[TableGrant] = (),
        keys: Sequence[kms.IKey] = (),
        secrets: Sequence[str] = (),
        bus: bool = False,
        timeout_seconds: int = constants.LAMBDA_TIMEOUT_SECONDS,
    ) -> Consumer:
        """React to other domains' events: rule (source + detail types) on the project bus -> SQS queue (data
        key; DLQ after 3 receives, alarmed) -> `handler` in batches of 10 reporting partial batch failures."""
        if not detail_types:
            raise ValueError(f"consumer {name}: name the detail types it reacts to")
        fn = self.function(
            name,
            handler,
            description=f"Consumes {source} {', '.join(detail_types)}",
            reads=reads,
            writes=writes,
            keys=keys,
            secrets=secrets,
            bus=bus,
            timeout_seconds=timeout_seconds,
        )
        queue = self.foundation.durable_queue(
            self, f"{name}Queue", f"the {name} consumer", visibility_timeout=Duration.seconds(6 * timeout_seconds)
        )
        rule = events.Rule(
            self,
            f"{name}Rule",
            description=f"{source} {', '.join(detail_types)} to the {name} queue",
            event_bus=self.foundation.bus,
            event_pattern=events.EventPattern(source=[source], detail_type=list(detail_types)),
            targets=[
                targets.SqsQueue(
                    queue,
                    dead_letter_queue=self.rule_dead_letters,
                    retry_attempts=constants.RULE_TARGET_RETRIES,
                )
            ],
        )
        # The mapping is built by hand, not with SqsEventSource, whose grant adds kms:Decrypt without ViaService.
        self.foundation.allow(
            fn,
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
            [queue.queue_arn],
        )
        self._allow_key(fn, self.foundation.data_key, "sqs", write=False)
        lambda_.EventSourceMapping(
            self,
            f"{name}Events",
            target=fn,
            event_source_arn=queue.queue_arn,
            batch_size=constants.CONSUMER_BATCH_SIZE,
            max_batching_window=Duration.seconds(constants.CONSUMER_BATCH_WINDOW_SECONDS),
            report_batch_item_failures=True,
        )
        return Consumer(function=fn, queue=queue, rule=rule)

    def workflow(
        self,
        name: str,
        definition: sfn.IChainable,
        *,
        schedule: events.Schedule | None = None,
        event_pattern: events.EventPattern | None = None,
        description: str | None = None,
        timeout: Duration | None = None,
        payload: events.RuleTargetInput | None = None,
    ) -> Workflow:
        """A state machine (its log group, X-Ray, a failed-executions alarm, a role with only its tasks' grants)
        started by `schedule` (a rule on the default bus) or `event_pattern` (a rule on the project bus)."""
        if (schedule is None) == (event_pattern is None):
            raise ValueError(f"workflow {name}: give exactly one of schedule or event_pattern")
        machine = sfn.StateMachine(
            self,
            name,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=timeout or Duration.minutes(constants.WORKFLOW_TIMEOUT_MINUTES),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.foundation.log_group(self, f"{name}Logs"),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
            removal_policy=self.foundation.stage.removal_policy,
        )
        self._acknowledge_task_invocations(machine)
        self.foundation.alarm(
            self,
            f"{name}FailedAlarm",
            f"A {name} execution failed, timed out or was aborted",
            machine.metric_failed(period=Duration.minutes(5)),
        )
        target = targets.SfnStateMachine(
            machine,
            input=payload,
            dead_letter_queue=self.rule_dead_letters,
            retry_attempts=constants.RULE_TARGET_RETRIES,
        )
        rule = events.Rule(
            self,
            f"{name}Start",
            description=description or f"Starts {name}",
            schedule=schedule,
            event_bus=None if schedule else self.foundation.bus,
            event_pattern=event_pattern,
            targets=[target],
        )
        return Workflow(state_machine=machine, rule=rule)

    @property
    def rule_dead_letters(self) -> sqs.Queue:
        """The dead-letter queue of every EventBridge rule target of the domain (alarmed like every DLQ).

        One per domain, not one per rule: EventBridge names the rule, the target and the error in each message's
        attributes (`RULE_ARN`, `TARGET_ARN`, `ERROR_CODE`, `ERROR_MESSAGE`), so a queue per rule would tell
        nothing more, and costs three resources (queue, policy, alarm) per rule (docs/decisions.md)."""
        if self._rule_dead_letters is None:
            self._rule_dead_letters = self.foundation.dead_letter_queue(
                self, "RuleTargetDeadLetters", f"the {self.node.id} domain's rule targets"
            )
        return self._rule_dead_letters

    def tenant_secret(self, kind: str, description: str, *, session: bool = False) -> TenantSecretDeclaration:
        """Declare a per-tenant secret kind (`<prefix><tenant>/<kind>`, created at tenant onboarding).

        The stack writes every declaration into its template Metadata (`AtsTenantSecrets`), which the local
        runtime reads to seed the secrets of its tenants; `session=True` also hands them to local clients.
        """
        if not re.fullmatch(r"[a-z][a-z0-9-]*(/[a-z0-9][a-z0-9-]*)*", kind):
            raise ValueError(f"tenant secret kind {kind!r}: lower-case path segments, e.g. webhook/standard")
        declaration = TenantSecretDeclaration(kind, description, session)
        stack = Stack.of(self)
        metadata = dict(stack.template_options.metadata or {})
        declared: list[dict[str, Any]] = list(metadata.get(TENANT_SECRETS_METADATA) or [])
        existing = next((d for d in declared if d["kind"] == kind), None)
        if existing is not None:
            if existing["session"] != session:
                raise ValueError(f"tenant secret {kind!r} is declared twice, with different session flags")
            return declaration
        self.tenant_secrets.append(declaration)
        stack.add_metadata(TENANT_SECRETS_METADATA, [*declared, declaration.as_metadata()])
        return declaration

    # --- the function and its grants ----------------------------------------------------------------------------

    def function(
        self,
        name: str,
        handler: str,
        *,
        description: str,
        reads: Sequence[TableGrant] = (),
        writes: Sequence[TableGrant] = (),
        keys: Sequence[kms.IKey] = (),
        secrets: Sequence[str] = (),
        bus: bool = False,
        environment: Mapping[str, str] | None = None,
        timeout_seconds: int = constants.LAMBDA_TIMEOUT_SECONDS,
        asynchronous: bool = False,
    ) -> lambda_.Function:
        """A function for `handler` with exactly the declared grants and the settings they imply.

        Settings: `<NAME>_TABLE_NAME` per table, `TENANT_SECRET_PREFIX` with secrets, `EVENT_BUS_NAME` with the
        bus. A second call for the same handler returns the same function with the new grants added.
        """
        env: dict[str, str] = {}
        for grant in (*reads, *writes):
            use = _use(grant, ())
            env[_table_env(use.table)] = use.table.table_name
        if secrets:
            env["TENANT_SECRET_PREFIX"] = self.foundation.tenant_secret_prefix
        if bus:
            env["EVENT_BUS_NAME"] = self.foundation.bus.event_bus_name
        env.update(environment or {})
        fn = self._functions.get(handler)
        if fn is None:
            fn = self.foundation.function(
                self,
                FunctionSpec(
                    name=name,
                    handler=handler,
                    description=description,
                    environment=env,
                    timeout_seconds=timeout_seconds,
                    asynchronous=asynchronous,
                ),
            )
            self._functions[handler] = fn
        else:
            for variable, value in env.items():
                fn.add_environment(variable, value)
        for grant in reads:
            self._allow_table(fn, _use(grant, READ_ACTIONS), write=False)
        for grant in writes:
            self._allow_table(fn, _use(grant, WRITE_ACTIONS), write=True)
        for key in keys:
            # Envelope encryption (shared.crypto.FieldCipher) calls KMS directly, always with a tenant context.
            self._allow_once(
                fn,
                ["kms:GenerateDataKey", "kms:Decrypt"],
                [key.key_arn],
                {"Null": {"kms:EncryptionContext:tenant": "false"}},
            )
        for kind in secrets:
            self._allow_once(fn, ["secretsmanager:GetSecretValue"], [self._secret_arn(kind)])
            acknowledge(
                fn.role,  # type: ignore[arg-type]
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:"
                f"secret:<AWS::StackName>{constants.TENANT_SECRET_PREFIX_SUFFIX}*/{kind}-*]",
                f"One {kind} secret per tenant, created at onboarding: the tenant is the wildcard path segment "
                "and Secrets Manager appends a random suffix to the name",
            )
        if secrets:
            self._allow_key(fn, self.foundation.data_key, "secretsmanager", write=False)
        if bus:
            self._allow_once(fn, ["events:PutEvents"], [self.foundation.bus.event_bus_arn])
        return fn

    def _allow_table(self, fn: lambda_.Function, use: TableUse, *, write: bool) -> None:
        keys = (
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(use.leading_keys)}} if use.leading_keys else None
        )
        self._allow_once(fn, [f"dynamodb:{a}" for a in use.actions], [use.table.table_arn], keys)
        if "Query" in use.actions and use.table is self.table and self.TABLE_INDEXES:
            # A Query on the table's indexes (due dates, by person): the index ARNs under the table, nothing else.
            self._allow_once(fn, ["dynamodb:Query"], [f"{use.table.table_arn}/index/*"])
            logical_id = Stack.of(self).get_logical_id(use.table.node.default_child)  # type: ignore[arg-type]
            acknowledge(
                fn.role,  # type: ignore[arg-type]
                f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/index/*]",
                "Queries the domain table's own global secondary indexes (sparse due-date and by-person indexes)",
            )
        if use.table.encryption_key is not None:
            self._allow_key(fn, use.table.encryption_key, "dynamodb", write=write)

    def allow_bucket(
        self,
        fn: lambda_.Function,
        bucket: s3.IBucket,
        actions: Sequence[str],
        *,
        prefix: str,
        env: str | None = None,
        holding: str = "objects whose names carry the tenant and the record",
    ) -> None:
        """S3 `actions` on the objects under `prefix` only; a listing action (`s3:ListBucket`,
        `s3:ListBucketVersions`) on the bucket conditioned on that prefix; the bucket's key through S3 (a write if
        any action puts an object); the bucket's name in the setting `env`; `holding` says what the objects are."""
        listing = [a for a in actions if a in _LIST_ACTIONS]
        objects = [a for a in actions if a not in _LIST_ACTIONS]
        if objects:
            self._allow_once(fn, objects, [bucket.arn_for_objects(f"{prefix}*")])
        if listing:
            self._allow_once(fn, listing, [bucket.bucket_arn], {"StringLike": {"s3:prefix": [f"{prefix}*"]}})
        if bucket.encryption_key is not None:
            self._allow_key(fn, bucket.encryption_key, "s3", write="s3:PutObject" in actions)
        if env:
            fn.add_environment(env, bucket.bucket_name)
        logical_id = Stack.of(self).get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            fn.role,  # type: ignore[arg-type]
            f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{prefix}*]",
            f"Only the {prefix} prefix of the bucket: {holding}",
        )

    def _allow_key(self, fn: lambda_.Function, key: kms.IKey, service: str, *, write: bool) -> None:
        """Use of `key` only through `service` (kms:ViaService): the function cannot call KMS with it directly."""
        assert service in _KMS_SERVICES, service
        actions = ["kms:Decrypt", "kms:GenerateDataKey"] if write else ["kms:Decrypt"]
        self._allow_once(
            fn, actions, [key.key_arn], {"StringEquals": {"kms:ViaService": f"{service}.{Aws.REGION}.amazonaws.com"}}
        )

    def _allow_once(
        self, fn: lambda_.Function, actions: list[str], resources: list[str], conditions: dict | None = None
    ) -> None:
        granted = self._granted.setdefault(fn.node.path, set())
        wanted = [a for a in actions if repr((a, resources, conditions)) not in granted]
        if wanted:
            self.foundation.allow(fn, wanted, resources, conditions)
            granted.update(repr((a, resources, conditions)) for a in wanted)

    def _secret_arn(self, kind: str) -> str:
        # `<prefix><tenant>/<kind>`, and Secrets Manager's random 6-character suffix.
        prefix = self.foundation.tenant_secret_prefix
        return f"arn:{Aws.PARTITION}:secretsmanager:{Aws.REGION}:{Aws.ACCOUNT_ID}:secret:{prefix}*/{kind}-*"

    def _api(self) -> ApiConstruct:
        if self.api is None:
            raise ValueError(f"{self.node.path}: pass api= to the domain construct to add routes")
        return self.api

    def _acknowledge_task_invocations(self, machine: sfn.StateMachine) -> None:
        """LambdaInvoke grants `<function ARN>:*` (its versions and aliases) besides the function: accept exactly
        those, for the functions the definition invokes, on this state machine's policy."""
        stack = Stack.of(self)
        policy = machine.role.node.try_find_child("DefaultPolicy")
        if policy is None:
            return
        document = stack.resolve(policy.node.default_child.policy_document)  # type: ignore[union-attr]
        for statement in _as_list(document.get("Statement", [])):
            if "lambda:InvokeFunction" not in _as_list(statement.get("Action", [])):
                continue
            for resource in _as_list(statement.get("Resource", [])):
                logical_id = _function_version_wildcard(resource)
                if logical_id:
                    acknowledge(
                        policy,
                        f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
                        "A workflow task invokes its function by any version or alias (ARN:*), and nothing else",
                    )


def _use(grant: TableGrant, default: tuple[str, ...]) -> TableUse:
    return grant if isinstance(grant, TableUse) else TableUse(grant, default)


def _table_env(table: dynamodb.ITable) -> str:
    """`PlatformTable` -> `PLATFORM_TABLE_NAME`: the setting a function reads the table's name from."""
    stem = re.sub(r"Table$", "", table.node.id) or "DOMAIN"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", stem).upper() + "_TABLE_NAME"


def _camel(text: str) -> str:
    return "".join(part.title() for part in re.split(r"[^A-Za-z0-9]+", text) if part)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _function_version_wildcard(resource: Any) -> str | None:
    """The function's logical id when `resource` is `{"Fn::Join": ["", [{"Fn::GetAtt": [id, "Arn"]}, ":*"]]}`."""
    if not isinstance(resource, dict) or "Fn::Join" not in resource:
        return None
    _, parts = resource["Fn::Join"]
    if len(parts) == 2 and parts[1] == ":*" and isinstance(parts[0], dict):
        get_att = parts[0].get("Fn::GetAtt")
        if isinstance(get_att, list) and len(get_att) == 2 and get_att[1] == "Arn":
            return str(get_att[0])
    return None
