"""One cold start in a fresh interpreter, run by `benchmarks.cold_start`; prints one line: RESULT_MARKER + JSON.

    python _cold_child.py floor
    python _cold_child.py floor-validating
    python _cold_child.py handler <module> <event.json>

Run as a script, not with `-m`, and importing only `os`, `sys` and `time` (all loaded by every interpreter at
start-up) before the clock starts: whatever the measured code imports is paid for inside the measurement, as in
a Lambda init. Nothing here may import a module that the measured code might need first.
"""

from __future__ import annotations

import os
import sys
import time

RESULT_MARKER = "@@cold-start-result@@ "
# `client("dynamodb")` (shared.aws) and `LazyClient("dynamodb")`, the adapters' class attribute
_CLIENT_CALL = r"""\b(?:Lazy)?[Cc]lient\(\s*["']([a-z0-9-]+)["']\s*\)"""


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 3)


def floor(validating: bool = False) -> dict[str, object]:
    """The floor: the libraries every API function needs, and one DynamoDB client.

    `validating` adds what the project's handler pattern also pays at import: constructing the resolver with
    `enable_validation=True`, which loads Powertools' OpenAPI validation (it builds a pydantic model at import).
    """
    before = set(sys.modules)
    start = time.perf_counter()
    import boto3

    # pydantic 2's package import is lazy (`import pydantic` loads almost nothing); importing its API is what
    # "imports pydantic" means for code that uses it, so the floor imports BaseModel.
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from pydantic import BaseModel  # noqa: F401

    if validating:
        APIGatewayRestResolver(enable_validation=True)
    boto3.session.Session().client("dynamodb", region_name="eu-west-1")
    end = time.perf_counter()
    return {
        "import_ms": _ms(start, end),
        "first_call_ms": 0.0,
        "setup_ms": 0.0,
        "total_ms": _ms(start, end),
        "modules": sorted(set(sys.modules) - before),
    }


class _Context:
    """The Lambda context, as much of it as Powertools reads."""

    function_name = "cold-start-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:cold-start-bench"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/cold-start-bench"
    log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def _outcome(result: object) -> tuple[bool, str]:
    status = result.get("statusCode") if isinstance(result, dict) else None
    if isinstance(status, int):
        return status < 400, f"HTTP {status}"
    return True, "returned"


def _first_call_setup(module: object) -> tuple[list[str], list[str]]:
    """What a handler's first call sets up before doing its work: the clients named in the project code it
    imported (`shared.aws.client("...")`), and the settings models its module holds."""
    import re

    services: set[str] = set()
    for name, loaded in list(sys.modules.items()):
        path = getattr(loaded, "__file__", None)
        if path and name.split(".")[0] in ("functions", "shared"):
            with open(path, encoding="utf-8") as source:
                services.update(re.findall(_CLIENT_CALL, source.read()))
    settings = sys.modules.get("shared.settings")
    base = getattr(settings, "BaseSettings", None)
    models = [
        name
        for name, value in vars(module).items()
        if isinstance(value, type) and base is not None and issubclass(value, base) and value is not base
    ]
    return sorted(services), models


def handler(module_name: str, event_path: str) -> dict[str, object]:
    """Cold initialisation as the issue defines it: import the handler module, then the first call's setup (its
    clients and settings). Then, measured apart, the first request itself with the sample event."""
    before = set(sys.modules)
    start = time.perf_counter()
    __import__(module_name)
    imported = time.perf_counter()

    module = sys.modules[module_name]
    services, models = _first_call_setup(module)  # reading the sources is the benchmark's work: not timed
    setup_start = time.perf_counter()
    from shared.aws import client

    for service in services:
        client(service)
    if models:
        from shared.settings import load_settings

        for model in models:
            load_settings(getattr(module, model))
    setup_end = time.perf_counter()

    import json  # every handler has imported it by now (Powertools does)

    with open(event_path, encoding="utf-8") as source:
        event = json.load(source)
    called = time.perf_counter()
    try:
        _, outcome = _outcome(module.lambda_handler(event, _Context()))
    except Exception as exc:  # the sample event did not suit the handler: measured up to where it failed
        outcome = f"raised {type(exc).__name__}"
    returned = time.perf_counter()

    after = set(sys.modules)
    init_ms = round(_ms(start, imported) + _ms(setup_start, setup_end), 3)
    return {
        "import_ms": _ms(start, imported),
        "setup_ms": _ms(setup_start, setup_end),
        "first_call_ms": _ms(called, returned),
        "total_ms": init_ms,
        "with_request_ms": round(init_ms + _ms(called, returned), 3),
        "outcome": outcome,
        "setup": [f"client({s!r})" for s in services] + [f"{m}()" for m in models],
        "modules": sorted(after - before),
    }


def main(argv: list[str]) -> None:
    if argv[1] in ("floor", "floor-validating"):
        result = floor(validating=argv[1] == "floor-validating")
    else:
        result = handler(argv[2], argv[3])
    import json

    result["pid"] = os.getpid()
    sys.stdout.flush()
    sys.stdout.write("\n" + RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv)
