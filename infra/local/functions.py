"""Runs the template's functions without containers: each function is a pool of worker processes (its
execution environments), started on demand as Lambda does, kept warm, and scaled out while invocations overlap
(up to `MAX_INSTANCES` per function, or the function's reserved concurrency if lower)."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from infra.constants import ROOT
from infra.local.template import FunctionDef

_CTX = multiprocessing.get_context("spawn")
MAX_INSTANCES = 4


class FunctionFailed(RuntimeError):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(f"{body.get('errorType')}: {body.get('errorMessage')}")
        self.body = body


@dataclass
class Deployed:
    """A function as deployed into the emulator: its definition plus what the deploy resolved."""

    definition: FunctionDef
    name: str
    arn: str
    environment: dict[str, str]


class Worker:
    """One execution environment of a function: a process that imports the handler once and serves
    invocations one at a time."""

    def __init__(self, fn: Deployed, base_env: dict[str, str]) -> None:
        self.fn = fn
        self._base_env = base_env
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self.invocations = 0
        self.cold_starts = 0

    def _start(self) -> None:
        parent, child = _CTX.Pipe()
        d = self.fn.definition
        spec = {
            "environment": {
                **self._base_env,
                "AWS_LAMBDA_FUNCTION_NAME": self.fn.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(d.memory),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "_HANDLER": d.handler,
                **self.fn.environment,
            },
            "asset_dir": str(d.asset_dir),
            "repo_root": str(ROOT),
            "handler": d.handler,
            "function_name": self.fn.name,
            "memory": d.memory,
            "timeout": d.timeout,
            "arn": self.fn.arn,
        }
        from infra.local import worker

        process = _CTX.Process(target=worker.serve, args=(child, spec), name=f"lambda:{d.logical_id}", daemon=True)
        process.start()
        child.close()
        status, body = parent.recv()
        if status != "ready":
            process.join(timeout=5)
            raise FunctionFailed(body)
        self._process, self._conn = process, parent
        self.cold_starts += 1

    def invoke(self, event: Any, clock_offset: float) -> Any:
        """Run one invocation (the caller holds this worker exclusively); raises FunctionFailed with Lambda's
        error body when the handler raises."""
        if self._process is None or not self._process.is_alive():
            self._start()
        assert self._conn is not None
        self.invocations += 1
        self._conn.send((event, clock_offset))
        if not self._conn.poll(self.fn.definition.timeout + 5):
            self.stop()
            raise FunctionFailed({"errorType": "TimeoutError", "errorMessage": "Task timed out"})
        try:
            status, body = self._conn.recv()
        except EOFError:
            self._process = None
            raise FunctionFailed({"errorType": "Runtime.ExitError", "errorMessage": "the worker exited"}) from None
        if status != "ok":
            raise FunctionFailed(body)
        return body

    def stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._conn.send(None)
        if self._process is not None:
            self._process.join(timeout=2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=2)
        self._process = self._conn = None


class FunctionPool:
    """The execution environments of one function: an idle one is reused, a new one is started while all are
    busy and fewer than `limit` exist, otherwise the invocation waits for one to become idle."""

    def __init__(self, fn: Deployed, base_env: dict[str, str], limit: int) -> None:
        self.fn = fn
        self._base_env = base_env
        self._limit = limit
        self._workers: list[Worker] = []
        self._idle: list[Worker] = []
        self._available = threading.Condition()

    def _acquire(self) -> Worker:
        with self._available:
            while True:
                if self._idle:
                    return self._idle.pop()
                if len(self._workers) < self._limit:
                    worker = Worker(self.fn, self._base_env)
                    self._workers.append(worker)
                    return worker
                self._available.wait()

    def _release(self, worker: Worker) -> None:
        with self._available:
            self._idle.append(worker)
            self._available.notify()

    def invoke(self, event: Any, clock_offset: float) -> Any:
        worker = self._acquire()
        try:
            return worker.invoke(event, clock_offset)
        finally:
            self._release(worker)

    @property
    def invocations(self) -> int:
        return sum(w.invocations for w in self._workers)

    @property
    def cold_starts(self) -> int:
        return sum(w.cold_starts for w in self._workers)

    @property
    def instances(self) -> int:
        return len(self._workers)

    def stop(self) -> None:
        with self._available:
            workers = list(self._workers)
        for worker in workers:
            worker.stop()


class FunctionHost:
    """All functions of the stack, by logical id, physical name and ARN."""

    def __init__(self, deployed: list[Deployed], base_env: dict[str, str], clock_offset: Any) -> None:
        self._workers = {fn.definition.logical_id: FunctionPool(fn, base_env, _instance_limit(fn)) for fn in deployed}
        self._by_name = {fn.name: fn.definition.logical_id for fn in deployed}
        self._by_name.update({fn.arn: fn.definition.logical_id for fn in deployed})
        self._clock_offset = clock_offset

    def logical_id(self, name_or_arn: str) -> str | None:
        name = name_or_arn.split(":function:")[-1].split(":")[0] if ":function:" in name_or_arn else name_or_arn
        return self._by_name.get(name) or self._by_name.get(name_or_arn)

    def deployed(self, logical_id: str) -> Deployed:
        return self._workers[logical_id].fn

    def invoke(self, logical_id: str, event: Any) -> Any:
        return self._workers[logical_id].invoke(event, self._clock_offset())

    def invoke_from_emulator(self, function: Any, event: Any) -> tuple[str, bool, str]:
        """The adapter for moto's `_invoke_lambda`: (payload JSON, errored, log tail)."""
        logical_id = self.logical_id(function.function_name)
        if logical_id is None:
            body = {"errorType": "ResourceNotFound", "errorMessage": f"{function.function_name} is not in the stack"}
            return json.dumps(body), True, ""
        if isinstance(event, str):
            event = json.loads(event or "{}")
        try:
            return json.dumps(self.invoke(logical_id, event), default=str), False, ""
        except FunctionFailed as failed:
            print(f"[local] {logical_id} failed: {failed}", file=sys.stderr)
            return json.dumps(failed.body), True, ""

    def stats(self) -> dict[str, dict[str, int]]:
        return {
            k: {"invocations": p.invocations, "cold_starts": p.cold_starts, "instances": p.instances}
            for k, p in self._workers.items()
        }

    def stop(self) -> None:
        for worker in self._workers.values():
            worker.stop()


def _instance_limit(fn: Deployed) -> int:
    reserved = fn.definition.reserved_concurrency
    return max(1, min(MAX_INSTANCES, reserved)) if reserved is not None else MAX_INSTANCES


def worker_base_environment(endpoint: str, region: str) -> dict[str, str]:
    """What Lambda's runtime puts in every function's environment, pointed at the emulator."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python_local",
        # No X-Ray daemon locally: the tracer would only warn about missing segments.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
