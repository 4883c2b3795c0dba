"""`make run`: the whole system on this machine. Ctrl-C stops everything."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from infra.constants import ROOT
from infra.local.runtime import LocalRuntime


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--emulator-port", type=int, default=0, help="moto's port (0: any free port)")
    parser.add_argument("--cdk-out", type=Path, default=ROOT / "cdk.out")
    parser.add_argument("--session-file", type=Path, default=ROOT / ".local" / "session.json")
    args = parser.parse_args()

    if args.port and not _port_free(args.port):
        print(
            f"[local] port {args.port} on 127.0.0.1 is in use (another `make run`?): stop what holds it, "
            f"or choose another port: PORT={args.port + 1} make run",
            file=sys.stderr,
        )
        return 1

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runtime = LocalRuntime(
        out_dir=args.cdk_out, port=args.port, emulator_port=args.emulator_port, session_file=args.session_file
    )
    try:
        runtime.start()
    except Exception as exc:
        print(f"[local] failed to start: {exc}", file=sys.stderr)
        return 1
    token = runtime.session["tokens"]["acme"]["recruiter"]
    machine = runtime.session["integration_tokens"]["acme"]
    print(
        f"""
  API          {runtime.base_url}
  OpenAPI      {runtime.base_url}/openapi.json
  Swagger UI   {runtime.base_url}/docs
  Emulator     {runtime.session["emulator_endpoint"]}
  Tokens       {args.session_file} (ID tokens per role and an integration access token, tenants acme and globex)

  curl {runtime.base_url}/v1/health
  curl -H "Authorization: Bearer {token[:24]}..." {runtime.base_url}/v1/me
  curl -H "Authorization: Bearer {machine[:24]}..." {runtime.base_url}/v1/me      (integration_tokens)
  curl -X POST {runtime.base_url}/_local/clock/advance -d '{{"days": 30}}'
  curl -X POST {runtime.base_url}/_local/rules/<rule>/run      (rules: GET {runtime.base_url}/_local/rules)

  Ctrl-C stops everything.
""",
        flush=True,
    )
    stop.wait()
    print("[local] stopping", flush=True)
    runtime.stop()
    print("[local] stopped", flush=True)
    return 0


def _port_free(port: int) -> bool:
    """Checked before the minute-long start-up, so a taken port fails at once and says what to do."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
