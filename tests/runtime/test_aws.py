"""boto3 clients: endpoints from the environment, retries in adaptive mode."""

from __future__ import annotations

import pytest
from energy_runtime import aws


def test_clients_honour_aws_endpoint_url_and_retry_adaptively(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws.reset_clients()
    try:
        sqs = aws.client("sqs")
        assert sqs.meta.endpoint_url == "http://127.0.0.1:5999"
        retries = sqs.meta.config.retries
        assert retries == {"mode": "adaptive", "total_max_attempts": aws.MAX_ATTEMPTS}
        assert aws.client("sqs") is sqs  # one client per service per process
    finally:
        aws.reset_clients()
