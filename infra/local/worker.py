"""One execution environment per function: a child process that imports the function's handler from its CDK
code asset, with exactly the environment the template gives it, and runs invocations one at a time.

Separate processes because `os.environ` is one per interpreter (two functions' settings must never mix), and
because that is what Lambda does: a cold start on the first call, warm calls after. This module is the child's
entry point, so it imports nothing of the project at module level.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import time
import traceback
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


class LocalContext:
    """The Lambda context object, as much of it as handlers and Powertools read."""

    def __init__(self, name: str, memory: int, timeout: int, arn: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def serve(conn: Connection, spec: dict[str, Any]) -> None:
    """Child process loop: receive `(event, clock_offset)`, answer `("ok", result)` or `("error", body)`."""
    # Ctrl-C reaches the whole process group: the runtime, not each worker, decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(spec["environment"])
    asset = str(Path(spec["asset_dir"]).resolve())
    # Import from the asset only: drop the repository (inherited from the parent) from the search path.
    repo = str(Path(spec["repo_root"]).resolve())
    sys.path[:] = [asset] + [p for p in sys.path if p and Path(p).resolve() != Path(repo) and p != ""]
    module_name, _, attr = spec["handler"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attr)
        clock = importlib.import_module("shared.clock")
    except Exception as exc:  # an import error is the function's failure to initialise
        conn.send(("init_error", _error_body(exc)))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        event, offset = message
        clock.set_offset(offset)
        context = LocalContext(spec["function_name"], spec["memory"], spec["timeout"], spec["arn"])
        try:
            conn.send(("ok", handler(event, context)))
        except Exception as exc:
            conn.send(("error", _error_body(exc)))


def _error_body(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc)[-8:],
    }
