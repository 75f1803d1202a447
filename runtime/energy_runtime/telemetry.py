"""Powertools logger, EMF metrics and (lazily created) tracer for one handler."""

from __future__ import annotations

import os
from collections import Counter
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from energy_runtime import contract


class Telemetry:
    def __init__(self, default_service: str) -> None:
        self.service = os.environ.get(contract.SERVICE_NAME.name, default_service)
        namespace = os.environ.get(
            contract.METRICS_NAMESPACE_VARIABLE.name, contract.METRICS_NAMESPACE
        )
        self.namespace = namespace
        self.logger = Logger(service=self.service)
        self.metrics = Metrics(namespace=namespace, service=self.service)

    def count(self, name: str, value: int) -> None:
        self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def count_by_reason(self, reasons: Counter[str]) -> None:
        """QuarantinedByReason with an extra `reason` dimension, one EMF blob per reason."""
        for reason, value in sorted(reasons.items()):
            with single_metric(
                name=contract.QUARANTINED_BY_REASON,
                unit=MetricUnit.Count,
                value=value,
                namespace=self.namespace,
                default_dimensions={contract.SERVICE_DIMENSION: self.service},
            ) as metric:
                metric.add_dimension(name=contract.REASON_DIMENSION, value=reason)

    @cache  # noqa: B019 (one Telemetry per handler module, lives as long as the process)
    def tracer(self) -> Any:
        # Creating a Tracer imports the X-Ray SDK and patches botocore (~300 ms): only on
        # the first invocation, never at import, so the cold-start import stays small.
        from aws_lambda_powertools import Tracer

        return Tracer(service=self.service)
