"""The local runtime: the synthesised template deployed into the embedded emulator, its functions run
in-process, its API served on 127.0.0.1, its state machines executed and its schedules fired.

Steps, in order (each named in the start-up log): load the cloud assembly; start the emulator; publish the
assets; create the stack; create the template's secrets and user pools and put back the settings that referred to
them; bind the functions; wire the emulator's adapters; register the state machines with the interpreter; create
the subscription filters; seed the tenants' secrets; start the local user pool, scheduler and gateway; write
.local/session.json.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from infra.constants import ROOT
from infra.local import adapters
from infra.local.delivery import AsyncPolicy, Delivery, DeliveryError, TargetDelivery
from infra.local.emulator import (
    ACCOUNT,
    REGION,
    DeployError,
    Emulator,
    check_environment,
    create_stack,
    create_subscriptions,
    create_template_secrets,
    create_user_pools,
    fill_environment,
    function_configurations,
    publish_assets,
    register_state_machines,
    seed_tenant_secrets,
    start_emulator,
)
from infra.local.functions import Deployed, FunctionHost, worker_base_environment
from infra.local.gateway import AccessLog, Gateway
from infra.local.queues import QueuePoller
from infra.local.scheduler import LocalClock, ScheduleError, Scheduler
from infra.local.streams import StreamPoller
from infra.local.template import Assembly, RetryPolicy, ScheduleDef, TargetDef, load
from infra.local.tokens import LocalUserPool

TENANTS = ["acme", "globex"]


class LocalRuntime:
    def __init__(
        self,
        out_dir: Path = ROOT / "cdk.out",
        port: int = 3000,
        emulator_port: int = 0,
        session_file: Path | None = ROOT / ".local" / "session.json",
        say: Callable[[str], None] = print,
    ) -> None:
        self.out_dir = out_dir
        self.port = port
        self.emulator_port = emulator_port
        self.session_file = session_file
        self.say = say
        self.clock = LocalClock()
        self.assembly: Assembly | None = None
        self.emulator: Emulator | None = None
        self.functions: FunctionHost | None = None
        self.gateway: Gateway | None = None
        self.scheduler: Scheduler | None = None
        self.queues: QueuePoller | None = None
        self.streams: StreamPoller | None = None
        self.access_log: AccessLog | None = None
        self.pool = LocalUserPool(region=REGION)
        self.delivery: TargetDelivery | None = None
        self.tenant_secrets: dict[str, dict[str, str]] = {}
        self.physical: dict[str, str] = {}
        self.state_machine_arns: dict[str, str] = {}
        self.base_url = ""
        self._openapi: dict[str, Any] | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> LocalRuntime:
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.say(f"[local] ready in {time.monotonic() - started:.1f} s")
        return self

    def _step(self, name: str) -> None:
        self.say(f"[local] {name}")

    def _start(self) -> None:
        self._step("loading the cloud assembly")
        self.assembly = assembly = load(self.out_dir)
        self._step("starting the emulator on 127.0.0.1")
        self.emulator = emulator = start_emulator(self.emulator_port)
        self._step(f"publishing {publish_assets(emulator, assembly)} asset(s)")
        self._step(f"creating stack {assembly.stack_name}")
        self.physical = create_stack(emulator, assembly)
        secrets = create_template_secrets(emulator, assembly)
        self._step(f"created {len(secrets)} secret(s) of the template")
        pools = create_user_pools(emulator, assembly)
        self._step(f"created {len(pools)} user pool(s) of the template")
        for filled in fill_environment(emulator, assembly, self.physical, {**secrets, **pools}):
            self._step(f"set {filled} (it referred to a resource the emulator skipped)")
        self._step("binding functions to their code assets")
        self.functions = self._bind_functions(emulator, assembly)
        self.delivery = TargetDelivery(self._start_target, self._send_dead_letter, self.say)
        adapters.lambda_invoke(self.functions.invoke_from_emulator)
        adapters.rule_targets(self._deliver_rule_target)
        adapters.wait_states_follow(self.clock.now)
        self._step("registering state machines with the interpreter")
        self.state_machine_arns = register_state_machines(emulator, assembly, self.physical)
        arns = {k: self.functions.deployed(k).arn for k in assembly.functions}
        for done in create_subscriptions(emulator, assembly, self.physical, arns):
            self._step(f"created {done}")
        self.tenant_secrets = seed_tenant_secrets(emulator, assembly, TENANTS)
        kinds = ", ".join(d.kind for d in assembly.tenant_secrets) or "none declared"
        self._step(f"seeded tenant secrets for {', '.join(TENANTS)}: {kinds}")
        self.pool = LocalUserPool(
            region=REGION,
            id_token_lifetime=assembly.id_token_lifetime,
            resource_server_scopes=assembly.scopes or _contract_scopes(),
        )
        self.access_log = self._open_access_log(emulator, assembly)
        self.scheduler = Scheduler(assembly.schedules, self.clock, self._fire_schedule)
        self.gateway = Gateway(
            assembly.routes, self.functions, self.pool, self.access_log, self.openapi, self._controls()
        )
        bound = self.gateway.start(self.port)
        self.base_url = f"http://127.0.0.1:{bound}"
        self.scheduler.start()
        self.queues = QueuePoller(emulator.client, self.functions.invoke, self.functions.logical_id, REGION, self.say)
        self.queues.start()
        self.streams = StreamPoller(emulator.client, self.functions.invoke, self.functions.logical_id, REGION, self.say)
        self.streams.start()
        self._write_session()

    def stop(self) -> None:
        for part in (
            self.gateway,
            self.scheduler,
            self.queues,
            self.streams,
            self.access_log,
            self.functions,
            self.emulator,
        ):
            if part is None:
                continue
            try:
                part.stop() if not isinstance(part, AccessLog) else part.close()
            except Exception as exc:
                self.say(f"[local] stopping {type(part).__name__}: {exc}")
        self.gateway = self.scheduler = self.queues = self.streams = self.access_log = self.functions = None
        self.emulator = None

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- steps -------------------------------------------------------------------------------------------
    def _bind_functions(self, emulator: Emulator, assembly: Assembly) -> FunctionHost:
        configs = function_configurations(emulator)
        deployed = []
        for logical_id, definition in assembly.functions.items():
            name = self.physical.get(logical_id)
            config = configs.get(name or "")
            if config is None:
                raise DeployError(f"function {logical_id} was not created by the deploy")
            environment = (config.get("Environment") or {}).get("Variables", {})
            check_environment(logical_id, definition.environment_keys, environment)
            deployed.append(Deployed(definition, name, config["FunctionArn"], environment))  # type: ignore[arg-type]
        return FunctionHost(deployed, worker_base_environment(emulator.endpoint, REGION), self.clock.offset)

    def _open_access_log(self, emulator: Emulator, assembly: Assembly) -> AccessLog | None:
        group = self.physical.get(assembly.access_log_group or "")
        if not group:
            return None
        logs = emulator.client("logs")
        stream = f"local-{uuid.uuid4().hex[:8]}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)

        def put(lines: list[str]) -> None:
            now = int(time.time() * 1000)
            logs.put_log_events(
                logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": now, "message": m} for m in lines]
            )

        return AccessLog(put)

    def _write_session(self) -> None:
        assert self.emulator is not None and self.assembly is not None
        integration = self.pool.integration_tokens(TENANTS)
        tokens = self.pool.session_tokens(TENANTS)
        for tenant in TENANTS:  # the caller once played by an "integration" role: now the machine client's token
            tokens[tenant].setdefault("integration", integration[tenant])
        session: dict[str, Any] = {
            "base_url": self.base_url,
            "openapi_url": f"{self.base_url}/openapi.json",
            "docs_url": f"{self.base_url}/docs",
            "emulator_endpoint": self.emulator.endpoint,
            "region": REGION,
            "stack": self.assembly.stack_name,
            "resources": self.physical,
            "tokens": tokens,
            "integration_tokens": integration,
            "tenant_secrets": self.tenant_secrets,
            "jwks": self.pool.jwks(),
        }
        if self.session_file is not None:
            self.session_file.parent.mkdir(parents=True, exist_ok=True)
            self.session_file.write_text(json.dumps(session, indent=2))
        self.session = session

    # -- events and schedules -------------------------------------------------------------------------------
    def _deliver_rule_target(self, rule_arn: str, target: dict[str, Any], payload: str) -> None:
        """A matching event for a Lambda or Step Functions target of a rule: delivered asynchronously, with the
        target's retry policy and dead-letter queue (moto resolved their ARNs when it created the rule)."""
        assert self.delivery is not None
        retry = target.get("RetryPolicy") or {}
        self.delivery.submit(
            Delivery(
                source_arn=rule_arn,
                target_arn=str(target["Arn"]),
                payload=payload,
                retry=_retry_policy(retry),
                dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"),
            )
        )

    def _start_target(self, delivery: Delivery) -> str:
        """Hand one event to its target as EventBridge does; DeliveryError when the target cannot take it."""
        assert self.emulator is not None and self.functions is not None and self.delivery is not None
        arn, payload = delivery.target_arn, delivery.payload
        service = arn.split(":")[2] if arn.count(":") >= 5 else ""
        if service == "states":
            sfn = self.emulator.client("stepfunctions")
            try:
                execution = sfn.start_execution(stateMachineArn=arn, name=f"local-{uuid.uuid4()}", input=payload)
            except sfn.exceptions.StateMachineDoesNotExist as exc:
                raise DeliveryError("RESOURCE_NOT_FOUND", str(exc), retryable=False) from None
            except (sfn.exceptions.InvalidExecutionInput, sfn.exceptions.InvalidName) as exc:
                raise DeliveryError("INVALID_PARAMETER", str(exc), retryable=False) from None
            return str(execution["executionArn"])
        if service == "lambda":
            logical_id = self.functions.logical_id(arn)
            if logical_id is None:
                raise DeliveryError("RESOURCE_NOT_FOUND", f"Function not found: {arn}", retryable=False)
            definition = self.functions.deployed(logical_id).definition
            policy = AsyncPolicy(
                maximum_retry_attempts=definition.async_retry_attempts,
                maximum_event_age_seconds=definition.async_max_age,
                dead_letter_arn=self._queue_arn(definition.dead_letter_of or definition.on_failure_of),
                on_failure_record=definition.dead_letter_of is None and definition.on_failure_of is not None,
            )
            event, functions = json.loads(payload), self.functions
            threading.Thread(
                target=self.delivery.run_async,
                args=(arn, payload, lambda: functions.invoke(logical_id, event), policy),
                name=f"async:{logical_id}",
                daemon=True,
            ).start()
            return f"lambda:{logical_id}"
        if service == "sqs":
            self.emulator.client("sqs").send_message(QueueUrl=self._queue_url(arn), MessageBody=payload)
            return f"sqs:{arn.rsplit(':', 1)[-1]}"
        if service == "events":
            entry = {
                "EventBusName": arn,
                "Source": delivery.event_source or "aws.scheduler",
                "DetailType": delivery.detail_type or "Scheduled Event",
                "Detail": payload,
            }
            result = self.emulator.client("events").put_events(Entries=[entry])
            if result.get("FailedEntryCount"):
                raise DeliveryError("INVALID_PARAMETER", str(result["Entries"]), retryable=False)
            return f"events:{arn.rsplit('/', 1)[-1]}"
        raise DeliveryError("INVALID_PARAMETER", f"the local runtime does not deliver to {arn}", retryable=False)

    def _queue_url(self, arn: str) -> str:
        assert self.emulator is not None
        _, _, _, _, account, name = arn.split(":", 5)
        url = self.emulator.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
        return str(url["QueueUrl"])

    def _send_dead_letter(self, queue_arn: str, body: str, attributes: dict[str, str]) -> None:
        assert self.emulator is not None
        self.emulator.client("sqs").send_message(
            QueueUrl=self._queue_url(queue_arn),
            MessageBody=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )

    def _queue_arn(self, logical_id: str | None) -> str | None:
        """The ARN of a queue of the stack (moto's physical id of a queue is its URL)."""
        if logical_id is None:
            return None
        url = self.physical.get(logical_id)
        if not url:
            raise DeployError(f"queue {logical_id} was not created by the deploy")
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rstrip('/').rsplit('/', 1)[-1]}"

    def _target_arn(self, target: TargetDef) -> str:
        assert self.functions is not None
        if target.kind == "lambda":
            return self.functions.deployed(target.arn_of).arn
        if target.kind == "states":
            return self.state_machine_arns[target.arn_of]
        if target.kind == "sqs":
            return self._queue_arn(target.arn_of) or ""
        return f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{self.physical.get(target.arn_of, target.arn_of)}"

    def _fire_schedule(self, schedule: ScheduleDef, now: datetime) -> list[str]:
        """A schedule fell due: each target gets its event, through the same delivery (retries, dead letters) as
        a rule's. A state machine's execution is started here, so the answer can name it."""
        assert self.delivery is not None
        if schedule.source == "scheduler":
            source_arn = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{schedule.logical_id}"
        else:
            source_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{self.physical.get(schedule.logical_id)}"
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [source_arn],
            "detail": {},
        }
        started = []
        for target in schedule.targets:
            if schedule.source == "scheduler":  # Scheduler sends the target's Input (context attributes filled)
                payload = _scheduler_input(target.input or "{}", source_arn, now)
            else:
                payload = target.input or json.dumps(event)
            outcome = self.delivery.deliver(
                Delivery(
                    source_arn=source_arn,
                    target_arn=self._target_arn(target),
                    payload=payload,
                    retry=target.retry,
                    dead_letter_arn=self._queue_arn(target.dead_letter_of),
                    scheduler=schedule.source == "scheduler",
                    detail_type=target.detail,
                    event_source=target.source,
                )
            )
            started.append(str(outcome.detail.get("started") or f"failed:{outcome.error}"))
        self.say(f"[local] schedule {schedule.logical_id} fired: {', '.join(started)}")
        return started

    # -- what the gateway serves besides the API ----------------------------------------------------------
    def openapi(self) -> dict[str, Any]:
        if self._openapi is None:
            from infra.openapi import build_openapi

            assert self.assembly is not None
            self._openapi = build_openapi(self.assembly)
        return self._openapi

    def _controls(self) -> dict[tuple[str, str], Callable[[dict[str, Any]], tuple[int, Any]]]:
        def clock(_: dict[str, Any]) -> tuple[int, Any]:
            return 200, {"now": self.clock.now().isoformat(), "offset_seconds": self.clock.offset()}

        def advance(body: dict[str, Any]) -> tuple[int, Any]:
            try:
                seconds = float(body.get("seconds", 0)) + 86400 * float(body.get("days", 0))
                self.clock.advance(seconds)
            except (TypeError, ValueError, ScheduleError) as exc:
                return 400, {"error": {"code": "bad_request", "message": f"seconds/days: {exc}"}}
            fired = self.scheduler.tick() if self.scheduler else {}
            return 200, {"now": self.clock.now().isoformat(), "offset_seconds": self.clock.offset(), "fired": fired}

        def rules(_: dict[str, Any]) -> tuple[int, Any]:
            return 200, {"rules": self.scheduler.describe() if self.scheduler else []}

        def run_rule(body: dict[str, Any]) -> tuple[int, Any]:
            name = body["_path"][1]
            logical = next((k for k, v in self.physical.items() if name in (k, v)), name)
            try:
                started = self.scheduler.run_now(logical) if self.scheduler else []
            except KeyError:
                return 404, {"error": {"code": "not_found", "message": f"no scheduled rule {name}"}}
            return 200, {"rule": logical, "started": started}

        def token(body: dict[str, Any]) -> tuple[int, Any]:
            tenant, kind = body.get("tenant"), body.get("kind", "id")
            roles, scopes = body.get("roles", []), body.get("scopes")
            lifetime = body.get("lifetime_seconds")
            if (
                not isinstance(tenant, str)
                or kind not in ("id", "access")
                or not isinstance(roles, list)
                or not (scopes is None or isinstance(scopes, list))
                or not (lifetime is None or (isinstance(lifetime, int) and not isinstance(lifetime, bool)))
            ):
                message = (
                    "expects {tenant: str, kind: 'id' (default) with roles: [str], or 'access' with scopes: [str] "
                    "(default: all), lifetime_seconds: int (default: the app client's, 1 hour for a machine's access "
                    "token; negative: already expired)}"
                )
                return 400, {"error": {"code": "bad_request", "message": message}}
            try:
                if kind == "access":
                    issued = self.pool.issue_access(
                        tenant, [str(s) for s in scopes or []] if scopes is not None else None, lifetime
                    )
                else:
                    issued = self.pool.issue(tenant, [str(r) for r in roles], lifetime=lifetime)
            except ValueError as exc:
                return 400, {"error": {"code": "bad_request", "message": str(exc)}}
            return 200, {"token": issued, "kind": kind}

        def rotate_keys(body: dict[str, Any]) -> tuple[int, Any]:
            retire = body.get("remove_previous", False)
            previous = self.pool.signing_kid
            kid = self.pool.rotate()
            if retire:
                self.pool.remove_key(previous)
            return 200, {"kid": kid, "jwks": self.pool.jwks()}

        def jwks(_: dict[str, Any]) -> tuple[int, Any]:
            return 200, self.pool.jwks()

        def status(_: dict[str, Any]) -> tuple[int, Any]:
            return 200, {
                "emulator_endpoint": self.emulator.endpoint if self.emulator else None,
                "functions": self.functions.stats() if self.functions else {},
                "queue_batches_delivered": self.queues.batches if self.queues else 0,
                "stream_batches_delivered": self.streams.batches if self.streams else 0,
                "target_deliveries": self.delivery.summary() if self.delivery else {},
                "state_machines": self.state_machine_arns,
            }

        return {
            ("GET", "clock"): clock,
            ("POST", "clock/advance"): advance,
            ("GET", "rules"): rules,
            ("POST", "rules/*/run"): run_rule,
            ("GET", "status"): status,
            ("POST", "tokens"): token,
            ("POST", "keys/rotate"): rotate_keys,
            ("GET", "jwks"): jwks,
        }


def _retry_policy(policy: dict[str, Any]) -> RetryPolicy:
    default = RetryPolicy()
    return RetryPolicy(
        maximum_retry_attempts=int(policy.get("MaximumRetryAttempts", default.maximum_retry_attempts)),
        maximum_event_age_seconds=int(policy.get("MaximumEventAgeInSeconds", default.maximum_event_age_seconds)),
    )


def _scheduler_input(text: str, schedule_arn: str, now: datetime) -> str:
    """EventBridge Scheduler's context attributes in a target's Input."""
    for name, value in {
        "<aws.scheduler.schedule-arn>": schedule_arn,
        "<aws.scheduler.scheduled-time>": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.attempt-number>": "1",
    }.items():
        text = text.replace(name, value)
    return text


def _contract_scopes() -> tuple[str, ...]:
    """The scopes of shared.auth, for a template that declares no resource server yet."""
    try:
        from shared.auth import Scope, full_scope  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return ()
    return tuple(full_scope(scope) for scope in Scope)
