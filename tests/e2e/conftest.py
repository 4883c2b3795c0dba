"""E2E tier: the local runtime started as `make run` starts it (synth, then `python -m infra.local`), in its own
process group, on free ports; tests talk HTTP to it and read the emulator to check what was stored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 240


class Api:
    """A tiny HTTP client for the runtime: returns (status, parsed JSON or text)."""

    def __init__(self, session: dict[str, Any], log: Path | None = None) -> None:
        self.session = session
        self.base = session["base_url"].rstrip("/")
        self.log = log  # the runtime's output (every function's logs), for tests that check what was logged

    def token(self, tenant: str, role: str) -> str:
        return str(self.session["tokens"][tenant][role])

    def call(self, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def aws(self, service: str) -> Any:
        make_client: Any = boto3.client
        return make_client(
            service,
            endpoint_url=self.session["emulator_endpoint"],
            region_name=self.session["region"],
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def resource(self, prefix: str) -> str:
        return next(v for k, v in self.session["resources"].items() if k.startswith(prefix))


@pytest.fixture(scope="session")
def cloud_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cdk.out")
    env = {
        **os.environ,
        "CDK_OUTDIR": str(out),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    subprocess.run([sys.executable, "-m", "infra.app"], cwd=ROOT, env=env, check=True, capture_output=True)
    return out


def start_runtime(cloud_assembly: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any], Path]:
    session_file = workdir / "session.json"
    log = workdir / "runtime.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local", "--port", "0", "--cdk-out", str(cloud_assembly)]
        + ["--session-file", str(session_file)],
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the runtime exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if session_file.exists() and session_file.stat().st_size:
            return process, json.loads(session_file.read_text()), log
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"the runtime did not start in {START_TIMEOUT_SECONDS} s:\n{log.read_text()[-3000:]}")


def stop_runtime(process: subprocess.Popen[bytes], timeout: float = 20) -> int | None:
    """Ctrl-C, as a user would; the exit code, or None if it did not stop in time (then it is killed)."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return None


@pytest.fixture(scope="session")
def runtime(cloud_assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    process, session, log = start_runtime(cloud_assembly, tmp_path_factory.mktemp("runtime"))
    try:
        yield Api(session, log)
    finally:
        stop_runtime(process)


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.25) -> Any:
    """Poll `predicate` until it returns something truthy (asynchronous paths: logs, rules, workflows)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)
