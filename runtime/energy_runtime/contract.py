"""Every name the parts of the project share, defined once: the contract between them.

The CDK stacks, the Lambda handlers, the local pipeline, the benchmark and the tests
import these instead of retyping them: the S3 layout of the archive, the environment
variables the functions read (with each one's default and limits, which the CDK
configuration takes from here), the table's key schema and item kinds, the metric names
and dimensions, and the Parquet/Glue columns. Plain Python only, cheap to import: the
Lambda functions load it at cold start and the CDK app imports it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, get_args

# --- the functions ---------------------------------------------------------------------

BATCHING: Final = "batching"
PROCESSOR: Final = "processor"
FUNCTIONS: Final = (BATCHING, PROCESSOR)
# POWERTOOLS_SERVICE_NAME of each function: the `service` dimension of its metrics.
SERVICES: Final = {BATCHING: "energy-batching", PROCESSOR: "energy-processor"}
BATCHING_SERVICE: Final = SERVICES[BATCHING]
PROCESSOR_SERVICE: Final = SERVICES[PROCESSOR]
HANDLERS: Final = {
    BATCHING: "energy_runtime.batching.handler",
    PROCESSOR: "energy_runtime.processor.handler",
}


# --- the device topic ------------------------------------------------------------------

# An AWS IoT thing name: the meter's device id everywhere (topic level, key, file name).
THING_NAME_PATTERN: Final = r"[A-Za-z0-9:_-]{1,128}"

# A meter publishes to `<root>/<thing name>`: the topic, not the payload, names it.
TOPIC_ROOT: Final = "energy/consumption"


def topic_root(prefix: str = "") -> str:
    """The root a deployment's meters publish under: a prefixed copy of an environment in
    a shared account gets its own (`alice/energy/consumption`), so copies never read each
    other's meters."""
    return f"{prefix}/{TOPIC_ROOT}" if prefix else TOPIC_ROOT


# A topic template (a stack output) names the meter's level by this placeholder.
THING_NAME_PLACEHOLDER: Final = "<thing-name>"

# The thing attributes that place a meter (set by `energy-monitoring fleet register`), and
# the SNS message attributes an alert carries, for subscription filter policies.
TIME_ZONE_ATTRIBUTE: Final = "time_zone"  # a thing's building's zone (IANA), if not the default
PLACE_ATTRIBUTES: Final = ("building", "apartment", TIME_ZONE_ATTRIBUTE)
ALERT_MESSAGE_ATTRIBUTES: Final = (
    "building", "apartment", "kind", "severity", "status", "device_id",
)  # fmt: skip
# The input the silence sweep's schedule invokes the processor with (stacks/processing.py):
# the handler tells it from an SQS event by this, and the local pipeline sends it too.
SILENCE_SWEEP_EVENT: Final = {"sweep": "silent_meters"}


# --- the stacks and their outputs ------------------------------------------------------
# The command line finds an environment's stacks and reads their outputs by these names.

STACK_IDS: Final = ("Storage", "Ingest", "Processing", "Observability")


def stage_name(environment: str, prefix: str = "") -> str:
    """`energy-<env>`, or `<prefix>-energy-<env>`: the stacks are `<stage_name>-<stack id>`."""
    base = f"energy-{environment}"
    return f"{prefix}-{base}" if prefix else base


class Output:
    """Stack outputs other tools read (docs/deploy.md lists them all)."""

    TABLE_NAME: Final = "TableName"
    IOT_POLICY_NAME: Final = "IotPolicyName"
    THING_TYPE_NAME: Final = "ThingTypeName"
    THING_GROUP_NAME: Final = "ThingGroupName"
    METER_TOPIC_TEMPLATE: Final = "MeterTopicTemplate"
    BASIC_INGEST_TOPIC_TEMPLATE: Final = "BasicIngestTopicTemplate"
    # Storage: what the analyst's commands (query, quicksight setup) read.
    ARCHIVE_BUCKET_NAME: Final = "ArchiveBucketName"
    ATHENA_WORKGROUP_NAME: Final = "AthenaWorkgroupName"
    GLUE_DATABASE_NAME: Final = "GlueDatabaseName"
    RAW_TABLE_NAME: Final = "RawTableName"
    INTERVAL_TABLE_NAME: Final = "IntervalTableName"
    PROCESSED_READER_POLICY_ARN: Final = "ProcessedReaderPolicyArn"
    RAW_READER_POLICY_ARN: Final = "RawReaderPolicyArn"
    # Processing: what `replay` re-drives.
    HANDOFF_QUEUE_URL: Final = "HandoffQueueUrl"
    HANDOFF_DEAD_LETTER_QUEUE_URL: Final = "HandoffDeadLetterQueueUrl"
    STREAM_FAILURE_QUEUE_URL: Final = "StreamFailureQueueUrl"
    BATCHING_FUNCTION_NAME: Final = "BatchingFunctionName"
    PROCESSOR_FUNCTION_NAME: Final = "ProcessorFunctionName"


# --- what a meter may send ------------------------------------------------------------------
# Every value that becomes a number or a key is bounded here, before anything stores it:
# out of these ranges a reading is quarantined with its reason, never failing a batch.

MAX_ENERGY_WH: Final = 1e12  # ~100,000 apartment-years: beyond is garbage (and overflows)
MAX_ABS_EPOCH_S: Final = 1e13  # ~300,000 years (milliseconds sent as seconds still read)
# Optional fields' plausible ranges. Beyond them a value is garbage, and some could not be
# stored at all (DynamoDB numbers lie between 1e-130 and 1e126): a non-zero value must
# also be at least OPTIONAL_MIN_MAGNITUDE.
OPTIONAL_FIELD_RANGES: Final[dict[str, tuple[float, float]]] = {
    "voltage_v": (0, 1_000),  # mains is 230/400 V
    "current_a": (0, 1_000),  # an apartment's main fuse is tens of amperes
    "power_factor": (0, 1),
    "frequency_hz": (0, 1_000),  # 50/60 Hz mains
    "seq": (0, 2**63 - 1),  # a signed 64-bit counter
}
OPTIONAL_MIN_MAGNITUDE: Final = 1e-9
# The topic rule's receive time (epoch ms): from 2020 to a day ahead of the batch's clock.
# A replay carries the original value; age rules compare a reading with it, never with now.
MIN_RECEIVED_AT_MS: Final = 1_577_836_800_000  # 2020-01-01T00:00:00Z
MAX_RECEIVED_AT_AHEAD_MS: Final = 86_400_000
# A payload is one reading or {"readings": [...]}: three levels. Deeper input is refused
# before it is parsed (a deep enough nest makes any recursive parser or encoder fail).
MAX_NESTING_DEPTH: Final = 4
# A message is JSON text, or that text gzip-compressed (RFC 1952, one member): a meter that
# can compress sends about a sixth of the bytes. The gzip magic cannot begin a JSON text, so
# each message names its own encoding, and meters of either kind share a fleet. A compressed
# payload is held to MAX_PAYLOAD_BYTES once inflated too (inflation stops there).
PayloadEncoding = Literal["gzip", "json"]
PAYLOAD_ENCODINGS: Final = get_args(PayloadEncoding)
GZIP_MAGIC: Final = b"\x1f\x8b"
# A message inflating beyond this multiple of its size is oversized whatever its text: the
# most compressible honest messages (a register standing still, hundreds of readings per
# message) inflate under 32 times (tests/runtime/test_readings.py); a bomb hundreds of times.
MAX_INFLATION_RATIO: Final = 64
# The JSON text a batch parses, per MB of the function's memory: the readings parsed from a
# byte of text take about 3.5 bytes, so at most about half the memory goes to them, however
# far the messages inflate. One device reads at most a quarter of it, so a meter can neither
# exhaust the function nor crowd out the other meters of its batch. A record beyond either
# is quarantined unread (TEXT_BUDGET). At the default 1,024 MB that is 128 MiB per batch and
# 32 MiB per device, above what honest meters send: a meter's 7-day backlog is about 9 MB
# (60,480 readings), and a 6 MB event (Lambda's limit) of messages inflating 32 times at
# most holds at most 6 MB x 9/16 (base64 twice) x 32 = 108 MB.
BATCH_TEXT_BYTES_PER_MEMORY_MB: Final = 131_072
DEVICE_SHARE_OF_BATCH_TEXT: Final = 4
# A rejected reading holds about 1 KB until its quarantine line is written (the rejection,
# its line, the object's body), whatever little text it was: each one kept is charged to the
# same budget as this many bytes of text and its own (cut to RAW_EXCERPT_BYTES; the rejection
# keeps that text, not the parsed object), so a meter sending millions of tiny defective
# readings is held to the memory valid ones would take. Past its device's room, a record's
# further rejected readings (or an interval's further rate-limited ones) are kept as one
# line that counts them (QUARANTINE_COUNT), with the first of them; an excerpt of inflated
# text is charged too, and cut to SHORT_EXCERPT_BYTES past the room.
REJECTION_TEXT_BYTES: Final = 256
# Each entry of a message's list is charged at least this much text (the smallest valid
# reading is about 40 bytes, and an entry of 2, `0,`, costs the decoder the time of one),
# and each object or list beyond an entry's own as much as it takes parsed (`{},` is 72
# bytes for 3 of text). A record that costs more than the room is quarantined whole.
MIN_ENTRY_TEXT_BYTES: Final = 32
CONTAINER_TEXT_BYTES: Final = 80
# A rejection's detail, and a rejected reading's text in its line, are cut to these (with
# the excerpt mark): an honest reading is a few hundred bytes.
MAX_DETAIL_CHARS: Final = 200
SHORT_EXCERPT_BYTES: Final = 256
LAMBDA_MEMORY_VARIABLE: Final = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"  # set by Lambda itself
DEFAULT_LAMBDA_MEMORY_MB: Final = 1024  # where that is not set (locally, and config's default)
# The encoded size of one reading (codec.py) at most: time, register and power deltas as
# varints of their largest possible values. It bounds every item by construction.
MAX_POINT_BYTES: Final = 16
DYNAMODB_ITEM_LIMIT_BYTES: Final = 400 * 1024


# Why a reading was quarantined: the `reason` of each quarantine line and the `reason`
# dimension of QuarantinedByReason (docs/data-quality.md explains each).
class QuarantineReason:
    """Quarantine reasons (the `reason` metric dimension): a short, fixed vocabulary."""

    BAD_ENVELOPE = "bad_envelope"  # Kinesis data is not the topic rule's JSON
    OVERSIZED = "oversized_payload"  # beyond MAX_PAYLOAD_BYTES, or MAX_INFLATION_RATIO
    TEXT_BUDGET = "over_text_budget"  # its batch, or its device, read all the text it may
    BAD_COMPRESSION = "bad_compression"  # begins as gzip, but does not inflate whole
    NOT_UTF8 = "not_utf8"
    MALFORMED_JSON = "malformed_json"
    NOT_A_READING = "not_a_reading"  # JSON, but neither a reading nor {"readings": [...]}
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NON_FINITE = "non_finite"
    NEGATIVE_VALUE = "negative_value"
    OUT_OF_RANGE = "out_of_range"
    IMPLAUSIBLE_POWER = "implausible_power"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    ANCIENT_TIMESTAMP = "ancient_timestamp"
    TOO_DEEP = "nested_too_deep"  # JSON nested beyond MAX_NESTING_DEPTH, refused unparsed
    BAD_RECEIVED_AT = "bad_received_at"  # the record's receive time is not a plausible epoch
    RATE_LIMITED = "rate_limited"  # beyond MAX_READINGS_PER_INTERVAL for its interval
    UNWRITABLE = "unwritable"  # the processor could not store it (an error no retry cures)
    BAD_HANDOFF_MESSAGE = "bad_handoff_message"  # a queue message that is no hand-off


QUARANTINE_REASONS: Final = tuple(
    value for name, value in vars(QuarantineReason).items() if not name.startswith("_")
)


# A quarantine line keeps the input as text (`raw`), cut at RAW_EXCERPT_BYTES and marked
# with its size (such a line cannot be replayed; raw/ has the whole record). A gzip payload
# refused before it inflated is kept as base64 instead, and the line says so in
# QUARANTINE_RAW_ENCODING, so a replay sends the bytes the meter sent.
RAW_EXCERPT_BYTES: Final = 4096
EXCERPT_MARK: Final = " bytes]"  # ends an excerpt: "...[<size> bytes]"
QUARANTINE_RAW_ENCODING: Final = "raw_encoding"
QUARANTINE_RAW_BASE64: Final = "base64"
QUARANTINE_COUNT: Final = "count"  # on a line that stands for more than one reading


# --- the archive bucket --------------------------------------------------------------------

RAW_PREFIX: Final = "raw/"  # Firehose: the Kinesis records, Parquet
PROCESSED_PREFIX: Final = "processed/"
INTERVALS_SUBPREFIX: Final = "intervals/"
INTERVALS_PREFIX: Final = f"{PROCESSED_PREFIX}{INTERVALS_SUBPREFIX}"  # the interval rows
QUARANTINE_PREFIX: Final = "quarantine/"
FIREHOSE_ERRORS_PREFIX: Final = "firehose-errors/"  # records Firehose could not convert
IOT_ERRORS_PREFIX: Final = "iot-errors/"  # messages the topic rule could not deliver
# Every top-level prefix of the archive, for lifecycle rules and access grants.
ARCHIVE_PREFIXES: Final = (
    RAW_PREFIX,
    PROCESSED_PREFIX,
    QUARANTINE_PREFIX,
    FIREHOSE_ERRORS_PREFIX,
    IOT_ERRORS_PREFIX,
)

# Hive-style time partitions (UTC), in this order, under every prefix but the error ones.
PARTITION_NAMES: Final = ("year", "month", "day", "hour")
_PARTITION_FORMATS: Final = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H"}


def partition_path(epoch_ms: int | float) -> str:
    """'year=YYYY/month=MM/day=DD/hour=HH/' of a moment given in epoch milliseconds."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return "".join(
        f"{name}={moment.strftime(_PARTITION_FORMATS[name])}/" for name in PARTITION_NAMES
    )


def partition_strftime() -> str:
    """The same path as one strftime pattern (for writers that format many moments)."""
    return "".join(f"{name}={_PARTITION_FORMATS[name]}/" for name in PARTITION_NAMES)


# --- environment variables ---------------------------------------------------------------

Value = int | float | str


@dataclass(frozen=True, slots=True, kw_only=True)
class Variable:
    """One environment variable of the functions: who reads it, its type and bounds.

    `default` is what the CDK configuration defaults to; the runtime never falls back to
    it (a function deployed without a variable refuses to start), so the rules a function
    applies are always the ones configured. None: the stack passes a resource's name.
    """

    name: str
    kind: type[int] | type[float] | type[str]
    description: str
    functions: tuple[str, ...]
    default: Value | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    choices: tuple[int, ...] | None = None


BOTH: Final = (BATCHING, PROCESSOR)

# Read by Powertools itself; the stacks set them on both functions.
SERVICE_NAME = Variable(
    name="POWERTOOLS_SERVICE_NAME", kind=str, functions=BOTH,
    description="the function's service name: the `service` dimension of its metrics",
)  # fmt: skip
METRICS_NAMESPACE_VARIABLE = Variable(
    name="POWERTOOLS_METRICS_NAMESPACE", kind=str, functions=BOTH,
    description="CloudWatch namespace of the functions' metrics",
)  # fmt: skip
LOG_LEVEL = Variable(
    name="POWERTOOLS_LOG_LEVEL", kind=str, functions=BOTH, default="INFO",
    description="Powertools log level",
)  # fmt: skip

HANDOFF_QUEUE_URL = Variable(
    name="HANDOFF_QUEUE_URL", kind=str, functions=(BATCHING,),
    description="SQS queue the partial aggregates are sent to",
)  # fmt: skip
ARCHIVE_BUCKET = Variable(
    name="ARCHIVE_BUCKET", kind=str, functions=BOTH, description="archive bucket name"
)
QUARANTINE_PREFIX_VARIABLE = Variable(
    name="QUARANTINE_PREFIX", kind=str, functions=BOTH, default=QUARANTINE_PREFIX,
    description="where rejected readings (and hand-off messages) are kept",
)  # fmt: skip
PROCESSED_PREFIX_VARIABLE = Variable(
    name="PROCESSED_PREFIX", kind=str, functions=(PROCESSOR,), default=PROCESSED_PREFIX,
    description="where the processed Parquet aggregates go",
)  # fmt: skip
TABLE_NAME = Variable(
    name="TABLE_NAME", kind=str, functions=(PROCESSOR,), description="DynamoDB table"
)
ALERT_TOPIC_ARN = Variable(
    name="ALERT_TOPIC_ARN", kind=str, functions=(PROCESSOR,),
    description="SNS topic of high-usage and unusual-usage alerts",
)  # fmt: skip
INTERVAL_MINUTES = Variable(
    name="INTERVAL_MINUTES", kind=int, functions=BOTH, default=15,
    choices=(1, 5, 10, 15, 30, 60), description="aggregate interval (divides an hour)",
)  # fmt: skip
MAX_PAYLOAD_BYTES = Variable(
    name="MAX_PAYLOAD_BYTES", kind=int, functions=(BATCHING,), default=131_072,
    minimum=256, maximum=131_072,
    description="larger MQTT payloads are quarantined unread (IoT Core's limit is 128 KB)",
)  # fmt: skip
MAX_POWER_W = Variable(
    name="MAX_POWER_W", kind=int, functions=BOTH, default=50_000, minimum=1,
    maximum=10_000_000,
    description="readings above this power are quarantined (far above an apartment's fuse)",
)  # fmt: skip
MAX_FUTURE_SKEW_S = Variable(
    name="MAX_FUTURE_SKEW_S", kind=int, functions=BOTH, default=300, minimum=0,
    maximum=86_400,
    description="readings this far ahead of the rule's receive time are quarantined",
)  # fmt: skip
MAX_READING_AGE_DAYS = Variable(
    name="MAX_READING_AGE_DAYS", kind=int, functions=BOTH, default=7, minimum=1, maximum=365,
    description="readings older than this (against their receive time) are quarantined",
)  # fmt: skip
HIGH_USAGE_THRESHOLD_WH = Variable(
    name="HIGH_USAGE_THRESHOLD_WH", kind=float, functions=(PROCESSOR,), default=2000.0,
    minimum=1, maximum=1_000_000, description="energy per interval that raises an alert",
)  # fmt: skip
UNUSUAL_MIN_Z = Variable(
    name="UNUSUAL_MIN_Z", kind=float, functions=(PROCESSOR,), default=4.0, minimum=1,
    maximum=100,
    description="robust z-score (against the median of the same interval on earlier days, "
    "in robust sigmas: MAD's or IQR's, the larger) at which an interval's use is unusual",
)  # fmt: skip
UNUSUAL_MIN_EXCESS_WH = Variable(
    name="UNUSUAL_MIN_EXCESS_WH", kind=float, functions=(PROCESSOR,), default=300.0,
    minimum=1, maximum=1_000_000,
    description="energy above the device's usual for that interval below which nothing is "
    "unusual (300 Wh: 1.2 kW more for 15 minutes; a kettle is about 100 Wh)",
)  # fmt: skip
UNUSUAL_SUSTAIN_INTERVALS = Variable(
    name="UNUSUAL_SUSTAIN_INTERVALS", kind=int, functions=(PROCESSOR,), default=8, minimum=1,
    maximum=96,
    description="consecutive unusual intervals before unusual usage alerts, once per such "
    "run (8 at 15 minutes: two hours; a meal, a wash or a kettle is shorter)",
)  # fmt: skip
UNUSUAL_TOLERANCE_MINUTES = Variable(
    name="UNUSUAL_TOLERANCE_MINUTES", kind=int, functions=(PROCESSOR,), default=120,
    minimum=0, maximum=720,
    description="how far from the same time of day an earlier day's use still makes an "
    "interval usual (120: a nightly car charge that starts an hour or two earlier or later "
    "each night is usual); 0 compares the same interval only",
)  # fmt: skip
TIME_ZONE = Variable(
    name="TIME_ZONE", kind=str, functions=(PROCESSOR,), default="UTC",
    description="the IANA time zone of the environment's buildings (a building's own "
    "`time_zone` thing attribute overrides it): the days, times of day, weekdays and nights "
    "the alerts compare follow its clock, daylight-saving changes included",
)  # fmt: skip
BASELINE_DAYS = Variable(
    name="BASELINE_DAYS", kind=int, functions=(PROCESSOR,), default=14, minimum=7,
    maximum=60,
    description="earlier days whose same interval makes a device's usual (those of the "
    "same kind: weekdays for a weekday, weekend days for a weekend day)",
)  # fmt: skip
WARMUP_DAYS = Variable(
    name="WARMUP_DAYS", kind=int, functions=(PROCESSOR,), default=3, minimum=1, maximum=16,
    description="earlier days of the same kind a device needs before it can be unusual "
    "(at most the weekend days BASELINE_DAYS holds)",
)  # fmt: skip
INTERVAL_TTL_DAYS = Variable(
    name="INTERVAL_TTL_DAYS", kind=int, functions=(PROCESSOR,), default=35, minimum=2,
    maximum=3650,
    description="TTL of interval items in DynamoDB (older ranges are read from the archive; "
    "must exceed MAX_READING_AGE_DAYS + BASELINE_DAYS + BASELOAD_NIGHTS + 1: a late "
    "reading must find its interval, and the days its alerts compare it with, still stored)",
)  # fmt: skip
METER_GROUP_NAME = Variable(
    name="METER_GROUP_NAME", kind=str, functions=(PROCESSOR,),
    description="the IoT thing group of the environment's meters: the silence sweep lists "
    "its members",
)  # fmt: skip
SILENT_AFTER_MINUTES = Variable(
    name="SILENT_AFTER_MINUTES", kind=int, functions=(PROCESSOR,), default=15, minimum=5,
    maximum=1440,
    description="a meter whose newest reading is this much older than the fleet's is "
    "silent (the fleet's: the 90th percentile of the meters' newest readings)",
)  # fmt: skip
METER_STUCK_MIN_WH = Variable(
    name="METER_STUCK_MIN_WH", kind=float, functions=(PROCESSOR,), default=25.0, minimum=1,
    maximum=1_000_000,
    description="energy an interval's power readings say was used above which a register "
    "that did not advance over them is stuck (25 Wh: 100 W for 15 minutes)",
)  # fmt: skip
BASELOAD_MIN_STEP_W = Variable(
    name="BASELOAD_MIN_STEP_W", kind=float, functions=(PROCESSOR,), default=100.0, minimum=1,
    maximum=100_000,
    description="how far a device's overnight minimum (01:00-05:00) must rise above its "
    "usual, in watts, for a baseload change (100 W: a heater or a second fridge)",
)  # fmt: skip
BASELOAD_NIGHTS = Variable(
    name="BASELOAD_NIGHTS", kind=int, functions=(PROCESSOR,), default=2, minimum=1,
    maximum=14,
    description="nights in a row the overnight minimum must stay up before a baseload change "
    "alerts (2: a heater left on for one night is not a step)",
)  # fmt: skip
ALERT_PERIOD_MINUTES = Variable(
    name="ALERT_PERIOD_MINUTES", kind=int, functions=(PROCESSOR,), default=60, minimum=1,
    maximum=7 * 24 * 60,
    description="at most one alert per device and kind in this period",
)  # fmt: skip

MAX_READINGS_PER_INTERVAL = Variable(
    name="MAX_READINGS_PER_INTERVAL", kind=int, functions=BOTH, default=1800, minimum=1,
    maximum=20_000,
    description="readings kept per device and interval (1800: 2 per second at 15 minutes); "
    "more are quarantined as rate_limited, so no item can outgrow DynamoDB's 400 KB",
)  # fmt: skip

# Read by Powertools (with defaults of its own), not by the runtime's settings.
POWERTOOLS_VARIABLES: Final = (SERVICE_NAME, METRICS_NAMESPACE_VARIABLE, LOG_LEVEL)

VARIABLES: Final = (
    SERVICE_NAME, METRICS_NAMESPACE_VARIABLE, LOG_LEVEL, HANDOFF_QUEUE_URL, ARCHIVE_BUCKET,
    QUARANTINE_PREFIX_VARIABLE, PROCESSED_PREFIX_VARIABLE, TABLE_NAME, ALERT_TOPIC_ARN,
    INTERVAL_MINUTES, MAX_PAYLOAD_BYTES, MAX_POWER_W, MAX_FUTURE_SKEW_S, MAX_READING_AGE_DAYS,
    HIGH_USAGE_THRESHOLD_WH, UNUSUAL_MIN_Z, UNUSUAL_MIN_EXCESS_WH, UNUSUAL_SUSTAIN_INTERVALS,
    UNUSUAL_TOLERANCE_MINUTES, TIME_ZONE, BASELINE_DAYS,
    WARMUP_DAYS, INTERVAL_TTL_DAYS, METER_GROUP_NAME, SILENT_AFTER_MINUTES, METER_STUCK_MIN_WH,
    BASELOAD_MIN_STEP_W, BASELOAD_NIGHTS, ALERT_PERIOD_MINUTES, MAX_READINGS_PER_INTERVAL,
)  # fmt: skip


def interval_reach_days(max_reading_age_days: int, baseline_days: int, nights: int) -> int:
    """How old an interval item the processor may still need: a reading up to the maximum
    age lands in its interval, which is compared with the `baseline_days` before it; a
    night's base load with the `nights` in a row and the baseline before those (+1: the
    night that ends today began yesterday). INTERVAL_TTL_DAYS must exceed it."""
    return max_reading_age_days + baseline_days + nights + 1


def weekend_days_within(days: int) -> int:
    """The fewest weekend days any `days` consecutive days hold (WARMUP_DAYS' limit)."""
    return min(sum((first + k) % 7 >= 5 for k in range(days)) for first in range(7))


def variables_of(function: str) -> tuple[Variable, ...]:
    """The variables `function` (BATCHING or PROCESSOR) reads."""
    return tuple(variable for variable in VARIABLES if function in variable.functions)


def default_environment(function: str, **names: str) -> dict[str, str]:
    """A complete environment for `function`: every default, plus the resource names
    given (by variable name); for the local pipeline, the benchmark and the tests."""
    environment = {
        variable.name: format_value(variable.default)
        for variable in variables_of(function)
        if variable.default is not None
    }
    environment[SERVICE_NAME.name] = SERVICES[function]
    environment[METRICS_NAMESPACE_VARIABLE.name] = METRICS_NAMESPACE
    environment.update(names)
    return environment


def format_value(value: Value) -> str:
    """2000.0 -> '2000', 12.5 -> '12.5': what a person would write in the variable."""
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


# --- metrics -----------------------------------------------------------------------------

METRICS_NAMESPACE: Final = "EnergyMonitoring"
SERVICE_DIMENSION: Final = "service"
REASON_DIMENSION: Final = "reason"
READINGS_RECEIVED: Final = "ReadingsReceived"
READINGS_ACCEPTED: Final = "ReadingsAccepted"
READINGS_QUARANTINED: Final = "ReadingsQuarantined"
QUARANTINED_BY_REASON: Final = "QuarantinedByReason"  # with the `reason` dimension
AGGREGATES_WRITTEN: Final = "AggregatesWritten"
ALERTS_SENT: Final = "AlertsSent"
METERS_SILENT: Final = "MetersSilent"  # per silence sweep: meters found silent
# (metric, function) pairs the handlers emit, each with the one `service` dimension.
EMITTED_METRICS: Final = (
    (READINGS_RECEIVED, BATCHING),
    (READINGS_ACCEPTED, BATCHING),
    (READINGS_QUARANTINED, BATCHING),
    (READINGS_QUARANTINED, PROCESSOR),  # hand-off messages it could not read
    (AGGREGATES_WRITTEN, PROCESSOR),
    (ALERTS_SENT, PROCESSOR),
    (METERS_SILENT, PROCESSOR),
)


# --- Parquet files and the Glue tables over them ---------------------------------------------

# (column name, Glue/Hive type): the storage stack builds the Glue tables from these and
# the Parquet writers (processor, local Firehose) their Arrow schemas.
Column = tuple[str, str]

PARTITION_KEYS: Final[tuple[Column, ...]] = tuple((name, "string") for name in PARTITION_NAMES)

# The Kinesis records exactly as the topic rule wrote them (lossless landing zone).
RAW_COLUMNS: Final[tuple[Column, ...]] = (
    ("device_id", "string"),
    ("received_at", "bigint"),  # epoch milliseconds, set by the topic rule
    ("payload", "string"),  # base64 of the MQTT payload as the device sent it
)

# One row per device and interval, as the processor wrote it.
INTERVAL_COLUMNS: Final[tuple[Column, ...]] = (
    ("device_id", "string"),
    ("interval_start", "timestamp"),
    ("interval_minutes", "int"),
    ("energy_wh", "double"),
    ("reading_count", "int"),
    ("power_min_w", "double"),
    ("power_max_w", "double"),
    ("power_mean_w", "double"),
    ("first_ts", "timestamp"),
    ("last_ts", "timestamp"),
    # Rises each time the interval's aggregate changes; keep the highest per
    # (device_id, interval_start): see docs/data-model.md.
    ("revision", "bigint"),
)


# --- the table ---------------------------------------------------------------------------

PARTITION_KEY: Final = "pk"  # always the device id: never a date-only partition key
SORT_KEY: Final = "sk"  # tells the item kinds apart (see docs/data-model.md)
TTL_ATTRIBUTE: Final = "expires_at"
KEY_SCHEMA: Final = (
    {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
    {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
)
KEY_ATTRIBUTES: Final = (
    {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
    {"AttributeName": SORT_KEY, "AttributeType": "S"},
)

# Every item of a device lives under pk = the device id; `sk` tells the kinds apart
# (docs/data-model.md):
# - LATEST: the device's hot item (latest reading, the open interval, context before it);
# - INT#<interval start, ISO UTC>: a closed interval (readings + aggregates), TTL;
# - LDAY#<YYYY-MM-DD>: a closed local day's total (the building's zone), written once when
#   the day closes (no TTL); DAY#<YYYY-MM-DD>: a UTC day's, as versions before local days
#   wrote them (read, never written: a versioned change, see docs/data-model.md);
# - ALERT#<kind>#<period>: one alert per device, kind and period (pending, then sent), TTL.
LATEST_SK: Final = "LATEST"
INTERVAL_SK_PREFIX: Final = "INT#"
DAY_SK_PREFIX: Final = "LDAY#"
UTC_DAY_SK_PREFIX: Final = "DAY#"  # legacy: not a prefix of DAY_SK_PREFIX, queries tell them apart
ALERT_SK_PREFIX: Final = "ALERT#"

# Optional reading fields kept on the latest reading only (not needed for aggregates).
OPTIONAL_FIELDS: Final = ("voltage_v", "current_a", "power_factor", "frequency_hz", "seq")


def iso_utc(ts_ms: int) -> str:
    """ISO-8601 UTC with a Z suffix; millisecond precision only when needed (the format
    of sort keys, hand-off messages and every timestamp the queries return)."""
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    if ts_ms % 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_ms(iso: str) -> int:
    """The instant of an ISO-8601 time with its offset (iso_utc's inverse)."""
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


def interval_sk(start_ms: int) -> str:
    return INTERVAL_SK_PREFIX + iso_utc(start_ms)


def day_sk(day: str) -> str:
    return DAY_SK_PREFIX + day


def alert_sk(kind: str, period: str) -> str:
    return f"{ALERT_SK_PREFIX}{kind}#{period}"
