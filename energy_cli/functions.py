"""The settings the pipeline's functions run with: their Lambda configuration in AWS, or
the local pipeline's record of it. Commands that run the runtime's code (replay) or
follow its settings (query: the interval retention) read them here."""

from __future__ import annotations

import json

from energy_runtime import contract

from energy_cli.aws import Clients
from energy_cli.environment import Environment
from energy_cli.errors import CliError


def function_environment(environment: Environment, clients: Clients, output: str) -> dict[str, str]:
    """The environment variables the function runs with."""
    local = environment.local
    if local is not None:
        if local.functions_file is None or not local.functions_file.exists():
            raise CliError(
                "the local pipeline's function settings are gone: is `local up` running?"
            )
        functions = json.loads(local.functions_file.read_text())["functions"]
        name = (
            contract.PROCESSOR
            if output == contract.Output.PROCESSOR_FUNCTION_NAME
            else contract.BATCHING
        )
        return dict(functions[name]["environment"])
    function = environment.output(output)
    configuration = clients.client("lambda").get_function_configuration(FunctionName=function)
    return dict(configuration.get("Environment", {}).get("Variables", {}))
