"""Rebuild cloudwatch_logs_api_access_refusals.json from its readable twin (*.decoded.json).

CloudWatch Logs delivers a subscription as `{"awslogs": {"data": base64(gzip(json))}}`. Edit the decoded file,
then run `python events/build_cloudwatch_logs_event.py` from the repository root. The gzip header's mtime is
pinned to 0 so the output is byte-for-byte reproducible.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DECODED = HERE / "cloudwatch_logs_api_access_refusals.decoded.json"
ENCODED = HERE / "cloudwatch_logs_api_access_refusals.json"


def encode(payload: dict) -> dict:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return {"awslogs": {"data": base64.b64encode(gzip.compress(raw, mtime=0)).decode()}}


def main() -> None:
    payload = json.loads(DECODED.read_text())
    ENCODED.write_text(json.dumps(encode(payload), indent=2) + "\n")
    print(f"wrote {ENCODED.relative_to(HERE.parent)} ({len(payload['logEvents'])} log events)")


if __name__ == "__main__":
    main()
