"""The messages domain's own CloudWatch metrics, read back for the capture success rate (the failures report)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any


class CloudWatchCounters:
    """Sums of the domain's metrics (dimension `service`, as Powertools publishes them) through GetMetricData.
    A failure to read them is logged and answered None: the report is still worth having without them."""

    def __init__(self, namespace: str, service: str) -> None:
        self._namespace, self._service = namespace, service

    def sums(
        self, names: Sequence[str], *, since: datetime, until: datetime, period_seconds: int
    ) -> dict[str, float] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        from shared.aws import client

        queries = [
            {
                "Id": f"m{index}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": self._namespace,
                        "MetricName": name,
                        "Dimensions": [{"Name": "service", "Value": self._service}],
                    },
                    "Period": period_seconds,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for index, name in enumerate(names)
        ]
        totals = dict.fromkeys(names, 0.0)
        request: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": since,
            "EndTime": until,
            "ScanBy": "TimestampAscending",
        }
        try:
            while True:
                response = client("cloudwatch").get_metric_data(**request)
                for result in response.get("MetricDataResults", []):
                    totals[names[int(result["Id"][1:])]] += float(sum(result.get("Values", [])))
                if not response.get("NextToken"):
                    return totals
                request["NextToken"] = response["NextToken"]
        except (BotoCoreError, ClientError) as failed:
            from shared.observability import logger

            logger.warning("capture metrics not read", extra={"error": type(failed).__name__})
            return None
