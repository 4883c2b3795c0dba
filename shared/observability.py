"""The one Logger, Tracer and Metrics of every function. Service name and namespace come from the environment.

The tracer is built on first use, and only when `POWERTOOLS_TRACE_DISABLED` is not true: Powertools' Tracer
imports the X-Ray SDK (about 150 ms of cold start here), so functions opt in to boto3 subsegments per function
(CDK's `FunctionSpec.xray_subsegments`). Lambda's active tracing records every invocation either way.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()


class LazyTracer:
    """Powertools' Tracer, created when a traced handler first runs with tracing enabled."""

    def __init__(self) -> None:
        self._tracer: Tracer | None = None

    @staticmethod
    def enabled() -> bool:
        return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() not in ("true", "1", "yes")

    def get(self) -> Tracer | None:
        """The real tracer, or None while tracing is disabled."""
        if not self.enabled():
            return None
        if self._tracer is None:
            self._tracer = Tracer()
        return self._tracer

    def capture_lambda_handler(
        self, handler: Callable[..., Any] | None = None, *, capture_response: bool = False
    ) -> Any:
        """Like `Tracer.capture_lambda_handler`, deciding at call time whether to trace."""
        if handler is None:
            return functools.partial(self.capture_lambda_handler, capture_response=capture_response)

        @functools.wraps(handler)
        def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            tracer = self.get()
            if tracer is None:
                return handler(event, context, *args, **kwargs)
            traced = tracer.capture_lambda_handler(handler, capture_response=capture_response)
            return traced(event, context, *args, **kwargs)

        return wrapper


tracer = LazyTracer()
