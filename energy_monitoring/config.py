"""Per-environment settings, read from the `energy-monitoring` key of cdk.json's context.

One line per setting: its type, default, limits and meaning (pydantic v2 models). An
environment in cdk.json sets only what differs from the defaults. The settings the
functions receive as environment variables take their default and limits from the
runtime's contract (`energy_runtime.contract`), so the CDK side and the Lambda side can
never disagree. Parsing is strict: an unknown key, a wrong type or a value out of range
raises `ConfigError` naming the environment and the setting, which stops synthesis before
any template is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from energy_runtime import contract, local_time
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

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

# Short names: they appear in every stack and resource name of the environment.
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,9}$")
_PREFIX = re.compile(r"^[a-z]([a-z0-9-]{0,10}[a-z0-9])?$")
ACCOUNT_PATTERN: Final = r"^\d{12}$"
REGION_PATTERN: Final = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"
EMAIL_PATTERN: Final = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class ConfigError(ValueError):
    """A setting in cdk.json is missing or wrong; the message names it."""


@dataclass(frozen=True)
class OneOf:
    """A value from a fixed list (the allowed choices show in docs/configuration.md)."""

    choices: tuple[Any, ...]

    def __call__(self, value: Any) -> Any:
        if value not in self.choices:
            raise ValueError(f"{value!r} is not one of {list(self.choices)}")
        return value


def iana_zone(name: str) -> str:
    """A time zone the zone database knows ("Europe/Berlin"), as the processor loads it."""
    if not local_time.is_zone(name):
        raise ValueError(f"{name!r} is not an IANA time zone (such as Europe/Berlin or UTC)")
    return name


def setting(default: Any = ..., *, doc: str, ge: float | None = None, le: float | None = None,
            pattern: str | None = None) -> Any:  # fmt: skip
    """A setting's default, limits and meaning, in one place."""
    return Field(default=default, description=doc, ge=ge, le=le, pattern=pattern)


def from_contract(variable: contract.Variable, *, doc: str | None = None) -> Any:
    """A setting that reaches the functions as `variable`: the contract's default and limits."""
    return Field(
        default=variable.default,
        description=doc or variable.description,
        ge=variable.minimum,
        le=variable.maximum,
    )


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class StreamSettings(_Settings):
    capacity_mode: Literal["on_demand", "provisioned"] = setting(
        "on_demand", doc="Kinesis capacity mode; on_demand needs no shard planning"
    )
    shard_count: int = setting(1, ge=1, le=500, doc="shards when capacity_mode is provisioned")
    retention_hours: int = setting(24, ge=24, le=8760, doc="stream retention")


class TableSettings(_Settings):
    billing: Literal["on_demand", "provisioned"] = setting(
        "on_demand",
        doc="DynamoDB capacity mode: on_demand takes any load at once; provisioned (with "
        "auto scaling between the limits below) costs about 40% of it at a steady fleet's "
        "rate, and throttles a load above what it has scaled to (docs/cost.md)",
    )
    min_write_capacity: int = setting(
        5, ge=1, le=40_000, doc="provisioned: the fewest write capacity units auto scaling keeps"
    )
    max_write_capacity: int = setting(
        1000, ge=1, le=40_000, doc="provisioned: the most write capacity units it scales to"
    )
    min_read_capacity: int = setting(
        5, ge=1, le=40_000, doc="provisioned: the fewest read capacity units auto scaling keeps"
    )
    max_read_capacity: int = setting(
        1000, ge=1, le=40_000, doc="provisioned: the most read capacity units it scales to"
    )
    target_utilization_percent: int = setting(
        70,
        ge=20,
        le=90,
        doc="provisioned: the consumed share of capacity auto scaling aims at (the rest is "
        "headroom for each window's burst of writes)",
    )


class StreamTriggerSettings(_Settings):
    """How the batching Lambda reads the stream and the processor reads the hand-off queue
    (cdk.json key `batching`)."""

    batch_size: int = setting(10000, ge=1, le=10000, doc="Y: records per batching invoke")
    window_seconds: int = setting(300, ge=0, le=300, doc="X: batching window")
    retry_attempts: int = setting(
        3, ge=0, le=10000, doc="retries of a failed Kinesis batch (bounded, never -1)"
    )
    max_record_age_seconds: int = setting(
        86400, ge=60, le=604800, doc="older records go to the on-failure queue"
    )
    parallelization_factor: int = setting(1, ge=1, le=10, doc="batches per shard")
    handoff_batch_size: int = setting(
        100, ge=1, le=10000, doc="hand-off messages per processor invoke"
    )
    handoff_window_seconds: int = setting(5, ge=0, le=300, doc="hand-off window")
    handoff_max_receive_count: int = setting(
        5, ge=1, le=1000, doc="deliveries before a hand-off message moves to its DLQ"
    )
    handoff_max_concurrency: int = setting(
        5,
        ge=2,
        le=1000,
        doc="most processor invocations the hand-off queue runs at once (a backlog cannot "
        "take the account's whole Lambda concurrency)",
    )


DeploymentConfig = Literal[
    "CANARY_10_PERCENT_5_MINUTES",
    "CANARY_10_PERCENT_10_MINUTES",
    "CANARY_10_PERCENT_15_MINUTES",
    "CANARY_10_PERCENT_30_MINUTES",
    "LINEAR_10_PERCENT_EVERY_1_MINUTE",
    "LINEAR_10_PERCENT_EVERY_10_MINUTES",
    "ALL_AT_ONCE",
]


class FunctionSettings(_Settings):
    architecture: Literal["arm64", "x86_64"] = setting("arm64", doc="Lambda architecture")
    batching_memory_mb: int = setting(
        contract.DEFAULT_LAMBDA_MEMORY_MB,
        ge=128,
        le=10240,
        doc=(
            "batching Lambda memory; a batch parses at most "
            f"{contract.BATCH_TEXT_BYTES_PER_MEMORY_MB // 1024} KiB of text per MB of it"
        ),
    )
    batching_timeout_seconds: int = setting(120, ge=10, le=900, doc="batching Lambda timeout")
    processor_memory_mb: int = setting(1024, ge=128, le=10240, doc="processor Lambda memory")
    processor_timeout_seconds: int = setting(120, ge=10, le=900, doc="processor Lambda timeout")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = setting(
        contract.LOG_LEVEL.default, doc=contract.LOG_LEVEL.name
    )
    deployment: DeploymentConfig = setting(
        "CANARY_10_PERCENT_5_MINUTES", doc="CodeDeploy traffic shifting for new function versions"
    )


class DataSettings(_Settings):
    """The rules the functions apply to the data (their environment variables)."""

    interval_minutes: Annotated[
        int, AfterValidator(OneOf(contract.INTERVAL_MINUTES.choices or ()))
    ] = from_contract(contract.INTERVAL_MINUTES)
    interval_ttl_days: int = from_contract(contract.INTERVAL_TTL_DAYS)
    max_payload_bytes: int = from_contract(contract.MAX_PAYLOAD_BYTES)
    max_power_w: int = from_contract(contract.MAX_POWER_W)
    max_future_skew_s: int = from_contract(contract.MAX_FUTURE_SKEW_S)
    max_reading_age_days: int = from_contract(contract.MAX_READING_AGE_DAYS)
    high_usage_threshold_wh: float = from_contract(contract.HIGH_USAGE_THRESHOLD_WH)
    unusual_min_z: float = from_contract(contract.UNUSUAL_MIN_Z)
    unusual_min_excess_wh: float = from_contract(contract.UNUSUAL_MIN_EXCESS_WH)
    unusual_sustain_intervals: int = from_contract(contract.UNUSUAL_SUSTAIN_INTERVALS)
    unusual_tolerance_minutes: int = from_contract(contract.UNUSUAL_TOLERANCE_MINUTES)
    time_zone: Annotated[str, AfterValidator(iana_zone)] = from_contract(contract.TIME_ZONE)
    baseline_days: int = from_contract(contract.BASELINE_DAYS)
    warmup_days: int = from_contract(contract.WARMUP_DAYS)
    alert_period_minutes: int = from_contract(contract.ALERT_PERIOD_MINUTES)
    silent_after_minutes: int = from_contract(contract.SILENT_AFTER_MINUTES)
    meter_stuck_min_wh: float = from_contract(contract.METER_STUCK_MIN_WH)
    baseload_min_step_w: float = from_contract(contract.BASELOAD_MIN_STEP_W)
    baseload_nights: int = from_contract(contract.BASELOAD_NIGHTS)
    max_readings_per_interval: int = from_contract(contract.MAX_READINGS_PER_INTERVAL)


class ScheduleSettings(_Settings):
    """What runs on a clock rather than on data."""

    silence_sweep_minutes: int = setting(
        5,
        ge=1,
        le=60,
        doc="how often a schedule invokes the processor to look for silent meters (a silent "
        "meter is alerted within data.silent_after_minutes plus about this)",
    )


# S3's minimum storage durations: an object leaving these classes earlier is billed the rest.
GLACIER_MINIMUM_DAYS = 90
DEEP_ARCHIVE_MINIMUM_DAYS = 180


def tiers_in_order(ia_days: int, glacier_days: int, expire_days: int) -> bool:
    """Standard-IA, then Glacier, then expiry: the archive's lifecycle in order."""
    return ia_days < glacier_days < expire_days


def deep_archive_fits(glacier_days: int, deep_days: int | None, expire_days: int) -> bool:
    """Deep Archive (where set) after Glacier's minimum and its own before expiry, so no
    object is billed for a class it left early."""
    return deep_days is None or (
        glacier_days + GLACIER_MINIMUM_DAYS <= deep_days <= expire_days - DEEP_ARCHIVE_MINIMUM_DAYS
    )


class RetentionSettings(_Settings):
    log_retention_days: Annotated[int, AfterValidator(OneOf(LOG_RETENTION_DAYS))] = setting(
        90, doc="CloudWatch Logs retention"
    )
    archive_ia_after_days: int = setting(
        30, ge=30, le=3650, doc="archive objects move to Standard-IA"
    )
    archive_glacier_after_days: int = setting(
        90,
        ge=31,
        le=3650,
        doc="raw/, quarantine/ and error objects move to Glacier Flexible Retrieval (Athena "
        "skips them); processed/ stays in Standard-IA",
    )
    archive_deep_archive_after_days: int | None = setting(
        None,
        ge=121,
        le=36500,
        doc="raw/, quarantine/ and error objects move on to Glacier Deep Archive (restores "
        "take up to 12 hours instead of 3 to 5; about 40% of Glacier Flexible Retrieval's "
        "price; pays once objects are kept a year or more); null keeps them in Glacier "
        "Flexible Retrieval",
    )
    archive_expire_after_days: int = setting(
        1825, ge=32, le=36500, doc="archive objects are deleted"
    )
    noncurrent_expire_days: int = setting(
        30, ge=1, le=3650, doc="overwritten object versions are deleted"
    )
    access_log_expire_days: int = setting(
        365, ge=1, le=3650, doc="S3 server access logs are deleted"
    )
    athena_results_expire_days: int = setting(
        30, ge=1, le=3650, doc="Athena query results are deleted"
    )


class IngestSettings(_Settings):
    basic_ingest: bool = setting(
        False, doc="also allow publishing to $aws/rules/<rule>/energy/consumption/<thing>"
    )
    iot_logging: Literal["off", "create", "existing"] = setting(
        "off",
        doc="IoT Core logging is one per account and region: `create` it (with its "
        "AWSIotLogsV2 log group) in one environment, `existing` where the account already "
        "has it (the dashboard reads its log group), `off` for neither",
    )
    iot_log_level: Literal["DEBUG", "INFO", "WARN", "ERROR"] = setting(
        "WARN", doc="IoT Core log level when iot_logging is create"
    )
    firehose_buffer_mb: int = setting(
        128, ge=64, le=128, doc="Firehose buffer size (Parquet conversion needs >= 64)"
    )
    firehose_buffer_seconds: int = setting(900, ge=60, le=900, doc="Firehose buffer interval")


class AuditSettings(_Settings):
    cloudtrail: bool = setting(
        False,
        doc="a CloudTrail trail of the environment's region (management events, log file "
        "validation, its own KMS key and bucket, CloudWatch Logs delivery); off where an "
        "organization trail already records the account",
    )
    data_events: bool = setting(
        False,
        doc="also record S3 data events on the archive's raw/ and processed/ prefixes (every "
        "read and write: billed per 100,000 events, docs/deploy.md)",
    )
    expire_after_days: int = setting(
        2555, ge=1, le=36500, doc="trail log files are deleted (default: 7 years)"
    )


class DisasterRecoverySettings(_Settings):
    replica_region: str | None = setting(
        None,
        pattern=REGION_PATTERN,
        doc="a second region that keeps a copy of the archive: a replica stack there (bucket "
        "with its own KMS key, the archive's lifecycle) and S3 replication of raw/ (and "
        "processed/) to it, re-encrypted with the replica key (null: no replica)",
    )
    replicate_processed: bool = setting(
        True, doc="replicate processed/ as well as raw/ (raw/ alone can be reprocessed)"
    )


class SecuritySettings(_Settings):
    audit: Literal["off", "create", "existing"] = setting(
        "off",
        doc="Device Defender Audit: the audit configuration is one per account and region. "
        "`create` it (checks enabled, findings to the ops topic) with a daily audit in one "
        "environment; `existing` runs the daily audit on the account's existing "
        "configuration; `off` for neither",
    )
    detect: bool = setting(
        False,
        doc="Device Defender Detect security profiles (rules and ML) on the environment's "
        "thing group; Detect is open only to accounts that used it before 31 August 2026",
    )


class AlarmSettings(_Settings):
    ops_email: str = setting(pattern=EMAIL_PATTERN, doc="subscribed to the ops alarm topic")
    iterator_age_minutes: int = setting(
        15, ge=1, le=10080, doc="alarm when the oldest unprocessed record is older"
    )
    quarantine_percent: float = setting(
        5.0, ge=0.1, le=100, doc="alarm when more readings than this are quarantined"
    )
    silent_minutes: int = setting(
        30, ge=5, le=1440, doc="alarm when no reading was accepted for this long"
    )
    iot_auth_errors: int = setting(
        5,
        ge=1,
        le=1_000_000,
        doc="alarm at this many refused MQTT connects or publishes in 5 minutes "
        "(AWS/IoT Connect.AuthError + PublishIn.AuthError: a revoked or foreign certificate, "
        "a policy that does not match)",
    )
    iot_client_errors: int = setting(
        20,
        ge=1,
        le=1_000_000,
        doc="alarm at this many malformed connects or publishes in 5 minutes "
        "(Connect.ClientError + PublishIn.ClientError: firmware sending what IoT refuses)",
    )
    iot_throttles: int = setting(
        1,
        ge=1,
        le=1_000_000,
        doc="alarm at this many throttled connects or publishes in 5 minutes "
        "(Connect.Throttle + PublishIn.Throttle: the account's IoT quotas)",
    )


class FleetSettings(_Settings):
    """What the meters do (their firmware, not a resource): the simulator, the demo, the
    benchmark and the cost model read these, so all of them describe the same fleet."""

    reading_interval_seconds: int = setting(
        10, ge=1, le=3600, doc="seconds between two readings of a meter"
    )
    readings_per_message: int = setting(
        30,
        ge=1,
        le=200,
        doc="readings a meter sends in one MQTT message (30 plain JSON readings fit one 5 KB "
        "IoT metering step, ~270 gzip ones; more are billed as further steps)",
    )
    payload_encoding: contract.PayloadEncoding = setting(
        "gzip",
        doc="how a meter encodes a message: gzip (RFC 1952; 30 readings in ~0.7 KB instead "
        "of ~4.3 KB, one Firehose 5 KB step) or json (plain text, for firmware without "
        "zlib). The batching function reads both, so a fleet may mix them",
    )
    offline_buffer_readings: int = setting(
        8640,
        ge=0,
        le=1_000_000,
        doc="readings a meter keeps while it cannot reach the broker, published when it "
        "reconnects (8640: a day at 10-s readings); beyond it the oldest are dropped",
    )


# An IAM role's name (with its path, as QuickSight's `service-role/...`) or its ARN.
ROLE_PATTERN: Final = r"^(arn:aws[a-z-]*:iam::\d{12}:role/)?([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$"


class AnalyticsSettings(_Settings):
    quicksight_service_role: str | None = setting(
        None,
        pattern=ROLE_PATTERN,
        doc="the account's QuickSight service role (ARN or name, e.g. "
        "`service-role/aws-quicksight-service-role-v0`): it gets the processed-data and "
        "raw-data reader policies, so QuickSight reads through Athena without hand-edited "
        "key policies (null: no grant)",
    )


class EnvironmentConfig(_Settings):
    name: str  # the environment's key in cdk.json
    prefix: str = ""  # from the command line's context (PREFIX_CONTEXT_KEY), not cdk.json
    account: str | None = setting(
        None, pattern=ACCOUNT_PATTERN, doc="12-digit account (null: env-agnostic)"
    )
    region: str | None = setting(None, pattern=REGION_PATTERN, doc="region (null: env-agnostic)")
    removal_policy: Literal["destroy", "retain"] = setting(
        "retain", doc="what happens to stateful resources when the stack is deleted"
    )
    deletion_protection: bool = setting(
        True, doc="DynamoDB deletion protection and stack termination protection"
    )
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    table: TableSettings = Field(default_factory=TableSettings)
    batching: StreamTriggerSettings = Field(default_factory=StreamTriggerSettings)
    functions: FunctionSettings = Field(default_factory=FunctionSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    dr: DisasterRecoverySettings = Field(default_factory=DisasterRecoverySettings)
    alarms: AlarmSettings  # the ops e-mail has no sensible default

    @property
    def stage_name(self) -> str:
        """`energy-<env>`, or `<prefix>-energy-<env>`: the stacks are `<stage_name>-<Stack>`."""
        return contract.stage_name(self.name, self.prefix)

    @property
    def resource_prefix(self) -> str:
        """Prefix for names that must be unique per account and region."""
        return self.stage_name

    @property
    def iot_rule_name(self) -> str:
        # IoT rule names allow only letters, digits and underscores.
        return f"{self.stage_name.replace('-', '_')}_ingest"

    @property
    def topic_root(self) -> str:
        """What the meters of this deployment publish under (`<root>/<thing name>`)."""
        return contract.topic_root(self.prefix)

    @property
    def database_name(self) -> str:
        # Glue database names: lowercase letters, digits and underscores.
        return self.stage_name.replace("-", "_")


# Settings that are not an environment's: its key in cdk.json and the command-line prefix.
NOT_SETTINGS: Final = ("name", "prefix")


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
    return tuple(parse_environment(name, raw, prefix=prefix) for name, raw in environments.items())


def environments_in(cdk_json: Path) -> dict[str, EnvironmentConfig]:
    """Every environment a cdk.json configures, by name, as synthesis would read it."""
    try:
        context = json.loads(cdk_json.read_text(encoding="utf-8"))["context"][CONTEXT_KEY]
    except OSError as error:
        raise ConfigError(f"cannot read {cdk_json}: {error.strerror}") from None
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{cdk_json} has no context.{CONTEXT_KEY}") from None
    return {config.name: config for config in load_environments(context)}


def parse_environment(name: str, raw: Any, *, prefix: str = "") -> EnvironmentConfig:
    where = f"{CONTEXT_KEY}.environments.{name}"
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise ConfigError(f"{where}: environment name must match {_ENV_NAME.pattern}")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be an object of settings")
    for key in NOT_SETTINGS:
        if key in raw:
            raise ConfigError(
                f"{where}.{key}: the {key} is not a setting of an environment"
                + (
                    f"; pass it with -c {PREFIX_CONTEXT_KEY}=NAME (make deploy ENV={name} "
                    "PREFIX=NAME)"
                    if key == "prefix"
                    else ""
                )
            )
    try:
        config = EnvironmentConfig.model_validate({**raw, "name": name, "prefix": prefix})
    except ValidationError as error:
        raise ConfigError("\n".join(_messages(error, where))) from None
    _check_cross_field(config, where)
    return _as_copy(config) if prefix else config


def _as_copy(config: EnvironmentConfig) -> EnvironmentConfig:
    """A prefixed copy shares its account with the original: it uses the account's IoT
    logging and audit configuration, and never creates them a second time."""

    def shared(mode: str) -> str:
        return "existing" if mode == "create" else mode

    ingest, security = config.ingest, config.security
    return config.model_copy(
        update={
            "ingest": ingest.model_copy(update={"iot_logging": shared(ingest.iot_logging)}),
            "security": security.model_copy(update={"audit": shared(security.audit)}),
        }
    )


def _messages(error: ValidationError, where: str) -> list[str]:
    """pydantic's errors as `<path>: <what is wrong>`, the unknown keys of a level together."""
    messages: list[str] = []
    unknown: dict[str, list[str]] = {}
    for detail in error.errors():
        *parents, leaf = [str(part) for part in detail["loc"]] or [""]
        path = ".".join([where, *parents, leaf]).rstrip(".")
        kind, value, context = detail["type"], detail.get("input"), detail.get("ctx", {})
        if kind == "extra_forbidden":
            unknown.setdefault(".".join([where, *parents]), []).append(leaf)
            continue
        messages.append(f"{path}: {_describe(kind, value, context, detail['msg'])}")
    for path, keys in unknown.items():
        messages.append(f"{path}: unknown setting(s) {sorted(keys)}")
    return messages


def _describe(kind: str, value: Any, context: Mapping[str, Any], fallback: str) -> str:
    if kind == "missing":
        return "missing required setting"
    if kind == "greater_than_equal":
        return f"{value!r} is below the minimum {context['ge']}"
    if kind == "less_than_equal":
        return f"{value!r} is above the maximum {context['le']}"
    if kind in ("int_type", "float_type", "bool_type", "string_type"):
        return f"expected {kind.removesuffix('_type')}, got {value!r}"
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(context.get("expected", "")))
        return f"{value!r} is not one of {allowed}"
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not match {context['pattern']}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be an object of settings"
    if kind == "value_error":
        return str(context.get("error", fallback))
    return fallback


def _check_cross_field(config: EnvironmentConfig, where: str) -> None:
    if (config.account is None) != (config.region is None):
        raise ConfigError(f"{where}.account/region: set both or neither")
    if config.account is None and config.name != "dev":
        raise ConfigError(f"{where}.account: only dev may be env-agnostic; set account and region")
    _check_region_has_layers(config, where)
    retention = config.retention
    if not tiers_in_order(
        retention.archive_ia_after_days,
        retention.archive_glacier_after_days,
        retention.archive_expire_after_days,
    ):
        raise ConfigError(
            f"{where}.retention: archive_ia_after_days < archive_glacier_after_days < "
            "archive_expire_after_days must hold"
        )
    table = config.table
    for kind in ("write", "read"):
        low, high = getattr(table, f"min_{kind}_capacity"), getattr(table, f"max_{kind}_capacity")
        if low > high:
            raise ConfigError(
                f"{where}.table.min_{kind}_capacity: {low} is above table.max_{kind}_capacity "
                f"({high})"
            )
    deep = retention.archive_deep_archive_after_days
    if not deep_archive_fits(
        retention.archive_glacier_after_days, deep, retention.archive_expire_after_days
    ):
        raise ConfigError(
            f"{where}.retention.archive_deep_archive_after_days: {deep} must be at least "
            f"{GLACIER_MINIMUM_DAYS} days after archive_glacier_after_days "
            f"({retention.archive_glacier_after_days}) and {DEEP_ARCHIVE_MINIMUM_DAYS} days "
            f"before archive_expire_after_days ({retention.archive_expire_after_days}): S3 "
            "bills each class's minimum storage duration for objects that leave it earlier "
            "(null: no Deep Archive)"
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
    if config.audit.data_events and not config.audit.cloudtrail:
        raise ConfigError(
            f"{where}.audit.data_events: needs audit.cloudtrail (data events are recorded "
            "by the environment's trail)"
        )
    replica_region = config.dr.replica_region
    if replica_region is not None and config.region is None:
        raise ConfigError(
            f"{where}.dr.replica_region: needs the environment's account and region (the "
            "replica stack is deployed to that account in a second region)"
        )
    if replica_region is not None and replica_region == config.region:
        raise ConfigError(
            f"{where}.dr.replica_region: {replica_region!r} is the environment's own region; "
            "a disaster-recovery copy must be in another region"
        )
    data = config.data
    reach = contract.interval_reach_days(
        data.max_reading_age_days, data.baseline_days, data.baseload_nights
    )
    if data.interval_ttl_days <= reach:
        raise ConfigError(
            f"{where}.data.interval_ttl_days: must exceed data.max_reading_age_days + "
            f"data.baseline_days + data.baseload_nights + 1 ({reach}): a late reading must "
            "find its interval, and the days its alerts compare it with, still stored (the "
            "processor refuses to start otherwise)"
        )
    publish_minutes = config.fleet.readings_per_message * config.fleet.reading_interval_seconds / 60
    sweep_minutes = config.schedules.silence_sweep_minutes
    if data.silent_after_minutes < 2 * publish_minutes + sweep_minutes:
        raise ConfigError(
            f"{where}.data.silent_after_minutes: {data.silent_after_minutes} is too short: a "
            f"healthy meter publishes every {publish_minutes:g} minutes (fleet settings), so "
            f"it must be at least twice that plus schedules.silence_sweep_minutes "
            f"({sweep_minutes}), or meters that report would be called silent"
        )
    weekend_days = contract.weekend_days_within(data.baseline_days)
    if data.warmup_days > weekend_days:
        raise ConfigError(
            f"{where}.data.warmup_days: must be at most the {weekend_days} weekend days "
            f"that data.baseline_days ({data.baseline_days}) holds, or weekend intervals "
            "could never be judged (the processor refuses to start otherwise)"
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
