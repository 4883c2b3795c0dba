"""The local runtime: the synthesised template deployed into the embedded emulator, its functions run
in-process, its API served on 127.0.0.1, its state machines executed and its schedules fired.

Steps, in order (each named in the start-up log): load the cloud assembly; start the emulator; publish the
assets; create the stack; bind the functions; wire the emulator's adapters; register the state machines with
the interpreter; create what the emulator's CloudFormation skips; start the local user pool, scheduler and
gateway; write .local/session.json.
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
from infra.local.emulator import (
    ACCOUNT,
    REGION,
    DeployError,
    Emulator,
    check_environment,
    create_skipped_resources,
    create_stack,
    function_configurations,
    publish_assets,
    register_state_machines,
    start_emulator,
)
from infra.local.functions import Deployed, FunctionFailed, FunctionHost, worker_base_environment
from infra.local.gateway import AccessLog, Gateway
from infra.local.queues import QueuePoller
from infra.local.scheduler import LocalClock, ScheduleError, Scheduler
from infra.local.template import Assembly, ScheduleDef, load
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
        self.access_log: AccessLog | None = None
        self.pool = LocalUserPool(region=REGION)
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
        self._step("binding functions to their code assets")
        self.functions = self._bind_functions(emulator, assembly)
        adapters.lambda_invoke(self.functions.invoke_from_emulator)
        adapters.rule_targets(self._deliver_rule_target)
        adapters.wait_states_follow(self.clock.now)
        self._step("registering state machines with the interpreter")
        self.state_machine_arns = register_state_machines(emulator, assembly, self.physical)
        arns = {k: self.functions.deployed(k).arn for k in assembly.functions}
        for done in create_skipped_resources(emulator, assembly, self.physical, arns, TENANTS):
            self._step(f"created {done}")
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
        self._write_session()

    def stop(self) -> None:
        for part in (self.gateway, self.scheduler, self.queues, self.access_log, self.functions, self.emulator):
            if part is None:
                continue
            try:
                part.stop() if not isinstance(part, AccessLog) else part.close()
            except Exception as exc:
                self.say(f"[local] stopping {type(part).__name__}: {exc}")
        self.gateway = self.scheduler = self.queues = self.access_log = self.functions = self.emulator = None

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
        return FunctionHost(deployed, worker_base_environment(emulator.endpoint, REGION), self.clock.offset, self.say)

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
        session = {
            "base_url": self.base_url,
            "openapi_url": f"{self.base_url}/openapi.json",
            "docs_url": f"{self.base_url}/docs",
            "emulator_endpoint": self.emulator.endpoint,
            "region": REGION,
            "stack": self.assembly.stack_name,
            "resources": self.physical,
            "tokens": self.pool.session_tokens(TENANTS),
        }
        if self.session_file is not None:
            self.session_file.parent.mkdir(parents=True, exist_ok=True)
            self.session_file.write_text(json.dumps(session, indent=2))
        self.session = session

    # -- events and schedules -------------------------------------------------------------------------------
    def _deliver_rule_target(self, target: dict[str, Any], event: dict[str, Any]) -> None:
        """EventBridge delivers to Lambda and Step Functions asynchronously: so does the runtime."""
        payload = target.get("Input") or json.dumps(event, default=str)
        threading.Thread(target=self._start_target, args=(target["Arn"], payload), daemon=True).start()

    def _start_target(self, arn: str, payload: str) -> str:
        assert self.emulator is not None and self.functions is not None
        if ":states:" in arn:
            execution = self.emulator.client("stepfunctions").start_execution(
                stateMachineArn=arn, name=f"local-{uuid.uuid4()}", input=payload
            )
            return str(execution["executionArn"])
        logical_id = self.functions.logical_id(arn)
        if logical_id is None:
            raise DeployError(f"rule target {arn} is not a function of the stack")
        try:
            self.functions.invoke(logical_id, json.loads(payload))
        except FunctionFailed as failed:
            self.say(f"[local] {logical_id} failed on a rule event: {failed}")
        return f"lambda:{logical_id}"

    def _fire_schedule(self, schedule: ScheduleDef, now: datetime) -> list[str]:
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{self.physical.get(schedule.logical_id)}"],
            "detail": {},
        }
        started = []
        for target in schedule.targets:
            arn = (
                self.state_machine_arns[target.arn_of]
                if target.kind == "states"
                else self.functions.deployed(target.arn_of).arn  # type: ignore[union-attr]
            )
            payload = target.input or json.dumps(event)
            if target.kind == "states":
                started.append(self._start_target(arn, payload))
            else:
                threading.Thread(target=self._start_target, args=(arn, payload), daemon=True).start()
                started.append(f"lambda:{target.arn_of}")
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
            tenant, roles = body.get("tenant"), body.get("roles", [])
            lifetime = body.get("lifetime_seconds", 3600)
            if not isinstance(tenant, str) or not isinstance(roles, list) or not isinstance(lifetime, int):
                message = "expects {tenant: str, roles: [str], lifetime_seconds: int (negative: already expired)}"
                return 400, {"error": {"code": "bad_request", "message": message}}
            return 200, {"token": self.pool.issue(tenant, [str(r) for r in roles], lifetime=lifetime)}

        def status(_: dict[str, Any]) -> tuple[int, Any]:
            return 200, {
                "emulator_endpoint": self.emulator.endpoint if self.emulator else None,
                "functions": self.functions.stats() if self.functions else {},
                "queue_batches_delivered": self.queues.batches if self.queues else 0,
                "state_machines": self.state_machine_arns,
            }

        return {
            ("GET", "clock"): clock,
            ("POST", "clock/advance"): advance,
            ("GET", "rules"): rules,
            ("POST", "rules/*/run"): run_rule,
            ("GET", "status"): status,
            ("POST", "tokens"): token,
        }
