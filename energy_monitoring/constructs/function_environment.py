"""The environment variables of a function, from the contract and the environment's settings.

Every variable the runtime declares for a function (`energy_runtime.contract`) is set,
and nothing else: the runtime refuses to start without one, and never falls back to a
default of its own. A setting under `data.*` is named as its variable, in lowercase
(`data.max_power_w` -> `MAX_POWER_W`).
"""

from __future__ import annotations

from collections.abc import Mapping

from energy_runtime import contract

from energy_monitoring.config import EnvironmentConfig


def function_environment(
    function: str, config: EnvironmentConfig, resources: Mapping[contract.Variable, str]
) -> dict[str, str]:
    """`function`'s variables: `resources` gives the names only a deploy knows (queue URL,
    bucket, table, topic); the contract and the settings give the rest."""
    fixed = {
        contract.SERVICE_NAME: contract.SERVICES[function],
        contract.METRICS_NAMESPACE_VARIABLE: contract.METRICS_NAMESPACE,
        contract.LOG_LEVEL: config.functions.log_level,
        contract.QUARANTINE_PREFIX_VARIABLE: contract.QUARANTINE_PREFIX,
        contract.PROCESSED_PREFIX_VARIABLE: contract.PROCESSED_PREFIX,
    }
    environment: dict[str, str] = {}
    for variable in contract.variables_of(function):
        if variable in resources:
            environment[variable.name] = resources[variable]
        elif variable in fixed:
            environment[variable.name] = fixed[variable]
        elif variable.name.lower() in type(config.data).model_fields:
            value = getattr(config.data, variable.name.lower())
            environment[variable.name] = contract.format_value(value)
        else:
            raise ValueError(f"{function}: nothing provides {variable.name}")
    unknown = {v.name for v in resources} - set(environment)
    if unknown:
        raise ValueError(f"{function} does not read {sorted(unknown)}")
    return environment
