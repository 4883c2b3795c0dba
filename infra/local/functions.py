"""Runs the template's functions in-process: a worker per function, started on its first invocation."""

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
    def __init__(self, fn: Deployed, base_env: dict[str, str], log: Any) -> None:
        self.fn = fn
        self._base_env = base_env
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._log = log
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
        """Run one invocation; raises FunctionFailed with Lambda's error body when the handler raises."""
        with self._lock:
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


class FunctionHost:
    """All functions of the stack, by logical id, physical name and ARN."""

    def __init__(self, deployed: list[Deployed], base_env: dict[str, str], clock_offset: Any, log: Any) -> None:
        self._workers = {fn.definition.logical_id: Worker(fn, base_env, log) for fn in deployed}
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
        return {k: {"invocations": w.invocations, "cold_starts": w.cold_starts} for k, w in self._workers.items()}

    def stop(self) -> None:
        for worker in self._workers.values():
            worker.stop()


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
