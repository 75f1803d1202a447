"""Per-environment settings, read from the `energy-monitoring` key of cdk.json's context.

Every setting has a safe default in `DEFAULTS` (one place); an environment in cdk.json
overrides only what differs. Parsing is strict: an unknown key, a wrong type or a value
out of range raises `ConfigError` naming the environment and the setting, which stops
synthesis before any template is written.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar, Union

from energy_runtime.settings import ReadingRules

from energy_monitoring import managed_layers

CONTEXT_KEY: Final = "energy-monitoring"
# `cdk deploy -c energy-monitoring:prefix=alice`: a second copy of the environments in the
# same account, every stack name, export and fixed physical name prefixed.
PREFIX_CONTEXT_KEY: Final = "energy-monitoring:prefix"

# The only retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip

# The processor refuses to start unless interval items outlive the oldest reading it
# accepts (MAX_READING_AGE_DAYS, which the stacks leave at the runtime's default).
MIN_INTERVAL_TTL_DAYS: Final = ReadingRules().max_age_s // 86_400 + 1

# Short names: they appear in every stack and resource name of the environment.
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,9}$")
_PREFIX = re.compile(r"^[a-z]([a-z0-9-]{0,10}[a-z0-9])?$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConfigError(ValueError):
    """A setting in cdk.json is missing or wrong; the message names it."""


def _setting(
    default: Any = dataclasses.MISSING,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[Any, ...] | None = None,
    pattern: re.Pattern[str] | None = None,
    doc: str = "",
) -> Any:
    """A dataclass field whose constraints the parser checks (and the docs list)."""
    metadata = {
        "minimum": minimum,
        "maximum": maximum,
        "choices": choices,
        "pattern": pattern,
        "doc": doc,
    }
    if default is dataclasses.MISSING:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class StreamSettings:
    capacity_mode: Literal["on_demand", "provisioned"] = _setting(
        doc="Kinesis capacity mode; on_demand needs no shard planning"
    )
    shard_count: int = _setting(
        minimum=1, maximum=500, doc="shards when capacity_mode is provisioned"
    )
    retention_hours: int = _setting(minimum=24, maximum=8760, doc="stream retention")


@dataclass(frozen=True, kw_only=True)
class BatchingSettings:
    batch_size: int = _setting(minimum=1, maximum=10000, doc="Y: records per batching invoke")
    window_seconds: int = _setting(minimum=0, maximum=300, doc="X: batching window")
    retry_attempts: int = _setting(
        minimum=0, maximum=10000, doc="retries of a failed Kinesis batch (bounded, never -1)"
    )
    max_record_age_seconds: int = _setting(
        minimum=60, maximum=604800, doc="older records go to the on-failure queue"
    )
    parallelization_factor: int = _setting(minimum=1, maximum=10, doc="batches per shard")
    handoff_batch_size: int = _setting(
        minimum=1, maximum=10000, doc="hand-off messages per processor invoke"
    )
    handoff_window_seconds: int = _setting(minimum=0, maximum=300, doc="hand-off window")
    handoff_max_receive_count: int = _setting(
        minimum=1, maximum=1000, doc="deliveries before a hand-off message moves to its DLQ"
    )
    handoff_max_concurrency: int = _setting(
        minimum=2,
        maximum=1000,
        doc="most processor invocations the hand-off queue runs at once (a backlog cannot "
        "take the account's whole Lambda concurrency)",
    )


@dataclass(frozen=True, kw_only=True)
class FunctionSettings:
    architecture: Literal["arm64", "x86_64"] = _setting(doc="Lambda architecture")
    batching_memory_mb: int = _setting(minimum=128, maximum=10240, doc="batching Lambda memory")
    batching_timeout_seconds: int = _setting(minimum=10, maximum=900, doc="batching Lambda timeout")
    processor_memory_mb: int = _setting(minimum=128, maximum=10240, doc="processor Lambda memory")
    processor_timeout_seconds: int = _setting(
        minimum=10, maximum=900, doc="processor Lambda timeout"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _setting(doc="POWERTOOLS_LOG_LEVEL")
    deployment: Literal[
        "CANARY_10_PERCENT_5_MINUTES",
        "CANARY_10_PERCENT_10_MINUTES",
        "CANARY_10_PERCENT_15_MINUTES",
        "CANARY_10_PERCENT_30_MINUTES",
        "LINEAR_10_PERCENT_EVERY_1_MINUTE",
        "LINEAR_10_PERCENT_EVERY_10_MINUTES",
        "ALL_AT_ONCE",
    ] = _setting(doc="CodeDeploy traffic shifting for new function versions")


@dataclass(frozen=True, kw_only=True)
class DataSettings:
    interval_minutes: int = _setting(
        choices=(1, 5, 10, 15, 30, 60), doc="aggregate interval (divides an hour)"
    )
    interval_ttl_days: int = _setting(
        minimum=MIN_INTERVAL_TTL_DAYS,
        maximum=3650,
        doc="TTL of interval items in DynamoDB (must outlive the runtime's oldest accepted "
        "reading)",
    )
    max_payload_bytes: int = _setting(
        minimum=256, maximum=131072, doc="larger MQTT payloads are quarantined"
    )
    high_usage_threshold_wh: float = _setting(
        minimum=1, maximum=1_000_000, doc="energy per interval that raises an alert"
    )
    anomaly_factor: float = _setting(
        minimum=1.5,
        maximum=100,
        doc="an interval is an anomaly above this multiple of the device's recent mean",
    )
    anomaly_min_wh: float = _setting(
        minimum=1,
        maximum=1_000_000,
        doc="energy per interval below which nothing is an anomaly (keeps quiet apartments "
        "from paging on every kettle)",
    )


@dataclass(frozen=True, kw_only=True)
class RetentionSettings:
    log_retention_days: int = _setting(choices=LOG_RETENTION_DAYS, doc="CloudWatch Logs retention")
    archive_ia_after_days: int = _setting(
        minimum=30, maximum=3650, doc="archive objects move to Standard-IA"
    )
    archive_glacier_after_days: int = _setting(
        minimum=31,
        maximum=3650,
        doc="raw/, quarantine/ and error objects move to Glacier Flexible Retrieval (Athena "
        "skips them); processed/ stays in Standard-IA",
    )
    archive_expire_after_days: int = _setting(
        minimum=32, maximum=36500, doc="archive objects are deleted"
    )
    noncurrent_expire_days: int = _setting(
        minimum=1, maximum=3650, doc="overwritten object versions are deleted"
    )
    access_log_expire_days: int = _setting(
        minimum=1, maximum=3650, doc="S3 server access logs are deleted"
    )
    athena_results_expire_days: int = _setting(
        minimum=1, maximum=3650, doc="Athena query results are deleted"
    )


@dataclass(frozen=True, kw_only=True)
class IngestSettings:
    basic_ingest: bool = _setting(
        doc="also allow publishing to $aws/rules/<rule>/energy/consumption/<thing>"
    )
    iot_logging: Literal["off", "create", "existing"] = _setting(
        doc="IoT Core logging is one per account and region: `create` it (with its "
        "AWSIotLogsV2 log group) in one environment, `existing` where the account already "
        "has it (the dashboard reads its log group), `off` for neither"
    )
    iot_log_level: Literal["DEBUG", "INFO", "WARN", "ERROR"] = _setting(
        doc="IoT Core log level when iot_logging is on"
    )
    firehose_buffer_mb: int = _setting(
        minimum=64, maximum=128, doc="Firehose buffer size (Parquet conversion needs >= 64)"
    )
    firehose_buffer_seconds: int = _setting(minimum=60, maximum=900, doc="Firehose buffer interval")


@dataclass(frozen=True, kw_only=True)
class SecuritySettings:
    audit: Literal["off", "create", "existing"] = _setting(
        doc="Device Defender Audit: the audit configuration is one per account and region. "
        "`create` it (checks enabled, findings to the ops topic) with a daily audit in one "
        "environment; `existing` runs the daily audit on the account's existing "
        "configuration; `off` for neither"
    )
    detect: bool = _setting(
        doc="Device Defender Detect security profiles (rules and ML) on the environment's "
        "thing group; Detect is open only to accounts that used it before 31 August 2026"
    )


@dataclass(frozen=True, kw_only=True)
class AlarmSettings:
    ops_email: str = _setting(pattern=_EMAIL, doc="subscribed to the ops alarm topic")
    iterator_age_minutes: int = _setting(
        minimum=1, maximum=10080, doc="alarm when the oldest unprocessed record is older"
    )
    quarantine_percent: float = _setting(
        minimum=0.1, maximum=100, doc="alarm when more readings than this are quarantined"
    )
    silent_minutes: int = _setting(
        minimum=5, maximum=1440, doc="alarm when no reading was accepted for this long"
    )


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    name: str
    account: str | None = _setting(pattern=_ACCOUNT, doc="12-digit account (null: env-agnostic)")
    region: str | None = _setting(pattern=_REGION, doc="region (null: env-agnostic)")
    removal_policy: Literal["destroy", "retain"] = _setting(
        doc="what happens to stateful resources when the stack is deleted"
    )
    deletion_protection: bool = _setting(
        doc="DynamoDB deletion protection and stack termination protection"
    )
    stream: StreamSettings
    batching: BatchingSettings
    functions: FunctionSettings
    data: DataSettings
    retention: RetentionSettings
    ingest: IngestSettings
    security: SecuritySettings
    alarms: AlarmSettings
    prefix: str = ""  # from the command line's context (PREFIX_CONTEXT_KEY), not cdk.json

    @property
    def stage_name(self) -> str:
        """`energy-<env>`, or `<prefix>-energy-<env>`: the stacks are `<stage_name>-<Stack>`."""
        base = f"energy-{self.name}"
        return f"{self.prefix}-{base}" if self.prefix else base

    @property
    def resource_prefix(self) -> str:
        """Prefix for names that must be unique per account and region."""
        return self.stage_name

    @property
    def iot_rule_name(self) -> str:
        # IoT rule names allow only letters, digits and underscores.
        return f"{self.stage_name.replace('-', '_')}_ingest"

    @property
    def database_name(self) -> str:
        # Glue database names: lowercase letters, digits and underscores.
        return self.stage_name.replace("-", "_")


# Safe defaults for every setting but the ops e-mail (no sensible default exists).
DEFAULTS: Final[Mapping[str, Any]] = {
    "account": None,
    "region": None,
    "removal_policy": "retain",
    "deletion_protection": True,
    "stream": {"capacity_mode": "on_demand", "shard_count": 1, "retention_hours": 24},
    "batching": {
        "batch_size": 10000,
        "window_seconds": 300,
        "retry_attempts": 3,
        "max_record_age_seconds": 86400,
        "parallelization_factor": 1,
        "handoff_batch_size": 100,
        "handoff_window_seconds": 5,
        "handoff_max_receive_count": 5,
        "handoff_max_concurrency": 10,
    },
    "functions": {
        "architecture": "arm64",
        "batching_memory_mb": 1024,
        "batching_timeout_seconds": 120,
        "processor_memory_mb": 1024,
        "processor_timeout_seconds": 120,
        "log_level": "INFO",
        "deployment": "CANARY_10_PERCENT_5_MINUTES",
    },
    "data": {
        "interval_minutes": 15,
        "interval_ttl_days": 400,
        "max_payload_bytes": 131072,
        "high_usage_threshold_wh": 2000,
        "anomaly_factor": 4.0,
        "anomaly_min_wh": 400,
    },
    "retention": {
        "log_retention_days": 90,
        "archive_ia_after_days": 30,
        "archive_glacier_after_days": 90,
        "archive_expire_after_days": 1825,
        "noncurrent_expire_days": 30,
        "access_log_expire_days": 365,
        "athena_results_expire_days": 30,
    },
    "ingest": {
        "basic_ingest": False,
        "iot_logging": "off",
        "iot_log_level": "WARN",
        "firehose_buffer_mb": 128,
        "firehose_buffer_seconds": 900,
    },
    "security": {"audit": "create", "detect": False},
    "alarms": {
        "iterator_age_minutes": 15,
        "quarantine_percent": 5.0,
        "silent_minutes": 30,
    },
}

T = TypeVar("T")


def load_environments(
    context: Mapping[str, Any] | None, *, prefix: str = ""
) -> tuple[EnvironmentConfig, ...]:
    """Parse the `energy-monitoring` context value into one config per environment.

    `prefix` (context `energy-monitoring:prefix`) makes a separate copy of every
    environment: two people can each deploy `dev` into one shared account.
    """
    if not isinstance(prefix, str) or (prefix and not _PREFIX.match(prefix)):
        raise ConfigError(
            f"context {PREFIX_CONTEXT_KEY}: {prefix!r} must match {_PREFIX.pattern} "
            "(lowercase letters, digits and '-', at most 12 characters)"
        )
    if not isinstance(context, Mapping):
        raise ConfigError(
            f"cdk.json context '{CONTEXT_KEY}' is missing or not an object: it must hold "
            '\'environments\', e.g. {"environments": {"dev": {...}}}'
        )
    unknown = set(context) - {"environments"}
    if unknown:
        raise ConfigError(f"{CONTEXT_KEY}: unknown setting(s) {sorted(unknown)}")
    environments = context.get("environments")
    if not isinstance(environments, Mapping) or not environments:
        raise ConfigError(f"{CONTEXT_KEY}.environments: missing or empty")
    return tuple(
        parse_environment(name, raw, prefix=prefix) for name, raw in environments.items()
    )


def parse_environment(name: str, raw: Any, *, prefix: str = "") -> EnvironmentConfig:
    where = f"{CONTEXT_KEY}.environments.{name}"
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise ConfigError(f"{where}: environment name must match {_ENV_NAME.pattern}")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be an object of settings")
    if "prefix" in raw:
        raise ConfigError(
            f"{where}.prefix: the prefix is not a setting of an environment; pass it with "
            f"-c {PREFIX_CONTEXT_KEY}=NAME (make deploy ENV={name} PREFIX=NAME)"
        )
    merged = _merge(DEFAULTS, raw)
    merged["name"] = name
    merged["prefix"] = prefix
    config = _build(EnvironmentConfig, merged, where)
    _check_cross_field(config, where)
    return config


def _merge(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _build(cls: type[T], raw: Mapping[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(raw) - set(fields)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        path = f"{where}.{name}"
        if name not in raw:
            raise ConfigError(f"{path}: missing required setting")
        values[name] = _convert(hints[name], raw[name], path)
        _check_constraints(spec.metadata, values[name], path)
    return cls(**values)


def _convert(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return _convert(inner, value, path)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{path}: {value!r} is not one of {list(allowed)}")
        return value
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: must be an object of settings")
        return _build(hint, value, path)  # type: ignore[arg-type]
    checks: dict[Any, Callable[[Any], bool]] = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
    }
    if hint not in checks:
        raise TypeError(f"{path}: unsupported setting type {hint!r}")
    if not checks[hint](value):
        raise ConfigError(f"{path}: expected {hint.__name__}, got {value!r}")
    return float(value) if hint is float else value


def _check_constraints(meta: Mapping[str, Any], value: Any, path: str) -> None:
    if value is None:
        return
    minimum, maximum = meta.get("minimum"), meta.get("maximum")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{path}: {value!r} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{path}: {value!r} is above the maximum {maximum}")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{path}: {value!r} is not one of {list(choices)}")
    pattern = meta.get("pattern")
    if pattern is not None and not pattern.match(value):
        raise ConfigError(f"{path}: {value!r} does not match {pattern.pattern}")


def _check_cross_field(config: EnvironmentConfig, where: str) -> None:
    if (config.account is None) != (config.region is None):
        raise ConfigError(f"{where}.account/region: set both or neither")
    if config.account is None and config.name != "dev":
        raise ConfigError(f"{where}.account: only dev may be env-agnostic; set account and region")
    _check_region_has_layers(config, where)
    retention = config.retention
    if not (
        retention.archive_ia_after_days
        < retention.archive_glacier_after_days
        < retention.archive_expire_after_days
    ):
        raise ConfigError(
            f"{where}.retention: archive_ia_after_days < archive_glacier_after_days < "
            "archive_expire_after_days must hold"
        )
    batching = config.batching
    if batching.handoff_batch_size > 10 and batching.handoff_window_seconds < 1:
        raise ConfigError(
            f"{where}.batching.handoff_window_seconds: must be at least 1 when "
            "handoff_batch_size is above 10 (an SQS event source rule)"
        )
    if batching.max_record_age_seconds <= batching.window_seconds:
        raise ConfigError(f"{where}.batching.max_record_age_seconds: must exceed window_seconds")
    functions = config.functions
    if functions.processor_timeout_seconds * 6 > 43200:
        raise ConfigError(
            f"{where}.functions.processor_timeout_seconds: the hand-off queue's visibility "
            "timeout (6x the function timeout) would exceed SQS's 12 hours"
        )


def _check_region_has_layers(config: EnvironmentConfig, where: str) -> None:
    """A fixed region must have every managed layer the functions use."""
    if config.region is None:
        return  # resolved at deploy time from the same table
    architecture = config.functions.architecture
    gaps = managed_layers.missing(config.region, architecture, tuple(managed_layers.ManagedLayer))
    if gaps:
        raise ConfigError(
            f"{where}.region: {config.region!r} has no {' or '.join(gaps)} Lambda layer for "
            f"python3.12 on {architecture} in energy_monitoring/{managed_layers.TABLE_FILE.name} "
            f"({managed_layers.describe_source()}); choose a region the table lists, or add "
            "this region's ARNs from those pages"
        )
