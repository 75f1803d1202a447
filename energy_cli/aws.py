"""boto3 clients for a command: the normal credential chain and `AWS_ENDPOINT_URL`, or the
local pipeline's moto server when the outputs came from `local up`; and AWS errors as one
line each."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from energy_cli.environment import Environment, LocalPipeline
from energy_cli.errors import CliError

# The local moto server accepts any credentials; these say where they are from.
NO_REGION = "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION (or a profile's region)"
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


class Clients:
    """One session per command; `local` pins every client to the local pipeline."""

    def __init__(self, *, local: LocalPipeline | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.local = local
        self._config = Config(retries={"max_attempts": 8, "mode": "standard"})
        if local is not None:
            # The local pipeline, whatever the shell's AWS_PROFILE names: a profile the
            # machine may not even have must not stand between a laptop and its moto server.
            import botocore.session

            # (config name, environment variable, default, converter): no AWS_PROFILE.
            core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
            self._session = boto3.Session(
                botocore_session=core, region_name=local.region, **LOCAL_CREDENTIALS
            )
        else:
            self._session = boto3.Session()
        self._clients: dict[str, Any] = {}

    @classmethod
    def of(cls, environment: Environment) -> Clients:
        return cls(local=environment.local)

    @property
    def region(self) -> str:
        # botocore reads AWS_DEFAULT_REGION and the profile; AWS_REGION is what the other
        # SDKs and the CDK read, so it counts too.
        region = self._session.region_name or os.environ.get("AWS_REGION")
        if not region:
            raise CliError(NO_REGION)
        return str(region)

    def _endpoint(self) -> dict[str, Any]:
        if self.local is None:
            return {}
        if not Path(self.local.ca_bundle).exists():
            raise CliError(
                f"the local pipeline's CA {self.local.ca_bundle} is gone: is `local up` running?"
            )
        return {"endpoint_url": self.local.aws_endpoint, "verify": self.local.ca_bundle}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service, region_name=self.region, config=self._config, **self._endpoint()
            )
        return self._clients[service]

    def resource(self, service: str) -> Any:
        return self._session.resource(
            service, region_name=self.region, config=self._config, **self._endpoint()
        )


def describe(error: BaseException) -> str | None:
    """The one line for an AWS-side error, or None if it is not one."""
    from botocore import exceptions

    if isinstance(error, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return "no AWS credentials: configure a profile (AWS_PROFILE) or AWS_* variables"
    if isinstance(error, exceptions.NoRegionError):
        return NO_REGION
    if isinstance(error, exceptions.EndpointConnectionError | exceptions.ConnectionClosedError):
        return f"cannot reach AWS: {error}"
    if isinstance(error, exceptions.SSLError):
        return f"TLS to the AWS endpoint failed (AWS_CA_BUNDLE?): {error}"
    if isinstance(error, exceptions.ClientError):
        detail = error.response.get("Error", {})
        operation = getattr(error, "operation_name", "request")
        return f"{operation}: {detail.get('Code', 'error')}: {detail.get('Message', error)}"
    if isinstance(error, exceptions.BotoCoreError):
        return str(error)
    return None


def error_code(error: BaseException) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
