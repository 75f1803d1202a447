"""Meter simulator: N apartments publishing cumulative-register readings over MQTT/TLS.

Simulated time runs `speed` times faster than the wall clock. Every `interval_s` of
simulated time each meter takes a reading (event time, import register in Wh with mWh
resolution, power in W); every `readings_per_message` readings it publishes them as one
message (`{"readings": [...]}`, or a bare reading when that is 1) to its own topic, as
JSON text or gzip-compressed (`fleet.payload_encoding`).

Faults are injected at configurable rates, and the ground truth records what the pipeline
must make of them (see `GroundTruth`):
- duplicate: a message is published twice (a device retrying after a lost PUBACK);
- late: a message is held back and published `late_delay_s` of simulated time later;
- reset: the meter is swapped for a new one whose register starts at zero;
- garbage: an extra message that is malformed (not JSON, a missing field, a wrong type,
  a negative register, a cut-off gzip stream); each garbage message holds exactly one
  reading's worth of input.

Labelled incidents (`devkit.simulator.incidents`) change what an apartment uses (a heater
left on for a night, a week away) or what its meter sends (silent for an hour: it keeps
reading and sends everything when it can again); `Simulation.incidents` lists them, with
the alert each must raise.

The same code publishes to AWS IoT Core (`--endpoint`, `--cert`, `--key`, `--ca`,
`--thing`) for one real device.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import heapq
import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as mqtt
from energy_runtime import contract, local_time
from energy_runtime.aggregate import LOOKBACK

from devkit.emulators.broker import TOPIC_PREFIX
from devkit.emulators.mqtt import connect, tls_client
from devkit.emulators.pki import CertificateAuthority
from devkit.runner.processes import wait_until
from devkit.settings import dev_config
from devkit.simulator import incidents as labelled
from devkit.simulator.profiles import DAY_S, ApartmentProfile, Event

GARBAGE_KINDS = ("not-json", "missing-field", "wrong-type", "negative-register", "cut-gzip")


def encode_payload(text: bytes, encoding: contract.PayloadEncoding) -> bytes:
    """A message as a meter of that encoding sends it. No timestamp in the gzip header
    (mtime=0): a retransmission is byte for byte the message it repeats."""
    return gzip.compress(text, mtime=0) if encoding == "gzip" else text


@dataclass(frozen=True, kw_only=True)
class Faults:
    duplicate_rate: float = 0.01  # per message
    late_rate: float = 0.005  # per message
    late_delay_s: int = 3600  # simulated seconds a late message is held back
    reset_rate: float = 0.05  # meter swaps per apartment and simulated day
    garbage_rate: float = 0.005  # extra malformed messages, per message

    def __post_init__(self) -> None:
        for name in ("duplicate_rate", "late_rate", "garbage_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"fault rate {name} must be within 0..1, got {value}")
        if not 0 <= self.reset_rate <= 100:
            raise ValueError(
                f"fault rate reset_rate must be within 0..100 per day, got {self.reset_rate}"
            )
        if self.late_delay_s < 0:
            raise ValueError(f"late_delay_s must be >= 0, got {self.late_delay_s}")


FLEET = dev_config().fleet  # cdk.json's `fleet` settings: what the meters do
TIME_ZONE = dev_config().data.time_zone  # the buildings' zone unless a scenario names others


@dataclass(frozen=True, kw_only=True)
class Scenario:
    apartments: int = 50
    days: float = 1.0
    interval_s: int = FLEET.reading_interval_seconds
    readings_per_message: int = FLEET.readings_per_message
    payload_encoding: contract.PayloadEncoding = FLEET.payload_encoding
    speed: float = 1440.0  # simulated seconds per wall-clock second
    start_epoch_s: int = 0  # 0: midnight UTC, `days` before today
    seed: int = 7
    faults: Faults = field(default_factory=Faults)
    things: tuple[str, ...] = ()  # real thing names instead of apt-0001...; one per apartment
    apartments_per_building: int = 10
    # The buildings' IANA zones, taken in turn (building 1 the first): residents live by
    # their wall clock, so the load profiles and the incidents follow it, summer time too.
    time_zones: tuple[str, ...] = (TIME_ZONE,)
    incidents: labelled.IncidentRates = field(default_factory=labelled.IncidentRates)

    def __post_init__(self) -> None:
        checks = {
            "apartments": self.apartments >= 1,
            "days": self.days > 0,
            "interval_s": self.interval_s >= 1,
            "readings_per_message": self.readings_per_message >= 1,
            "payload_encoding": self.payload_encoding in contract.PAYLOAD_ENCODINGS,
            "speed": self.speed > 0,
            "apartments_per_building": self.apartments_per_building >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"scenario setting {name} is out of range: {getattr(self, name)}")
        unknown = [name for name in self.time_zones if not local_time.is_zone(name)]
        if unknown or not self.time_zones:
            raise ValueError(f"scenario time_zones must be IANA zones, got {self.time_zones}")
        if self.things and len(self.things) != self.apartments:
            raise ValueError(f"{len(self.things)} thing names for {self.apartments} apartments")

    @property
    def duration_s(self) -> int:
        return int(self.days * DAY_S)

    def resolved_start(self) -> int:
        if self.start_epoch_s:
            return self.start_epoch_s
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return int(today.timestamp()) - int(-(-self.duration_s // DAY_S)) * DAY_S

    def device_ids(self) -> list[str]:
        if self.things:
            return list(self.things)
        return [f"apt-{i:04d}" for i in range(1, self.apartments + 1)]

    def places(self) -> dict[str, dict[str, str]]:
        """Each meter's thing attributes (`contract.PLACE_ATTRIBUTES`), as the installer's
        roster gives them: apartments numbered within buildings of a fixed size."""
        per, zones = self.apartments_per_building, self.time_zones
        return {
            device: {
                "building": f"b-{index // per + 1:02d}",
                "apartment": str(index % per + 1),
                contract.TIME_ZONE_ATTRIBUTE: zones[index // per % len(zones)],
            }
            for index, device in enumerate(self.device_ids())
        }


@dataclass
class DeviceTruth:
    """What one meter sent, and the energy the pipeline must report for it."""

    readings: int = 0  # distinct genuine readings (each event time once)
    duplicate_readings: int = 0  # extra copies sent by duplicated messages
    late_readings: int = 0  # genuine readings that were published late
    garbage_messages: int = 0
    resets: int = 0
    physical_energy_wh: float = 0.0  # register rises between first and last reading
    expected_energy_wh: float = 0.0  # physical minus the documented meter-swap loss
    first_ts: int = 0
    last_ts: int = 0
    # Per meter (a swap starts a new one): (event time, register in mWh) of each reading.
    _segments: list[list[tuple[int, int]]] = field(default_factory=list, repr=False)

    def finish(self, missing: frozenset[int] = frozenset()) -> None:
        """The energies, from every reading but the `missing` event times (readings that
        never left the meter: `verify` calls this again for them)."""
        physical = expected = 0
        for index, segment in enumerate(self._segments):
            registers = [register for ts, register in segment if ts not in missing]
            if not registers:
                continue
            physical += registers[-1] - registers[0]
            # A swap to a lower register counts nothing until LOOKBACK readings of the new
            # meter are in (energy_runtime.aggregate): the new segment counts from there.
            counted_from = 0 if index == 0 else LOOKBACK - 1
            if len(registers) > counted_from:
                expected += registers[-1] - registers[counted_from]
        self.physical_energy_wh = physical / 1000
        self.expected_energy_wh = expected / 1000

    def public(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


@dataclass(frozen=True)
class Message:
    publish_at: float  # simulated epoch seconds
    device_id: str
    payload: bytes
    readings: int  # reading-equivalents in the payload
    last_ts: int  # event time of its newest reading (0 for garbage)
    kind: str  # "readings", "duplicate", "late" or a garbage kind

    @property
    def text(self) -> bytes:
        """The payload's JSON text, whichever encoding carried it (readings only: garbage
        need not inflate)."""
        if self.payload[:2] == contract.GZIP_MAGIC:
            return gzip.decompress(self.payload)
        return self.payload


class Publisher(Protocol):
    def publish(self, message: Message) -> None: ...

    def close(self) -> None: ...


def _reading(
    ts: int, register_mwh: int, power_w: float, seq: int, rng: random.Random
) -> dict[str, object]:
    voltage = round(rng.gauss(230.0, 1.5), 1)
    pf = round(rng.uniform(0.9, 0.99), 2)
    return {
        "ts": ts,
        "energy_wh": register_mwh / 1000,
        "power_w": round(power_w, 1),
        "voltage_v": voltage,
        "current_a": round(power_w / (voltage * pf), 2),
        "power_factor": pf,
        "frequency_hz": round(rng.gauss(50.0, 0.02), 2),
        "seq": seq,
    }


def _garbage(kind: str, ts: int, encoding: contract.PayloadEncoding) -> bytes:
    if kind == "not-json":
        return b"\x00\xff{not json"
    if kind == "cut-gzip":  # a stream cut short, whatever the meter's encoding
        return gzip.compress(json.dumps({"ts": ts, "energy_wh": 1.0}).encode(), mtime=0)[:-6]
    if kind == "missing-field":
        text = json.dumps({"ts": ts, "power_w": 120.0}).encode()
    elif kind == "wrong-type":
        text = json.dumps({"ts": ts, "energy_wh": "lots", "power_w": 120.0}).encode()
    else:
        text = json.dumps({"ts": ts, "energy_wh": -5.0, "power_w": 120.0}).encode()
    return encode_payload(text, encoding)


class Simulation:
    """Generates every message of a scenario in publish order, and its ground truth."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.start = scenario.resolved_start()
        weekday = dt.datetime.fromtimestamp(self.start, dt.UTC).weekday()
        self.devices = scenario.device_ids()
        self.profiles = {
            device: ApartmentProfile(
                seed=scenario.seed * 100_003 + i,
                days=int(-(-scenario.days // 1)),
                start_weekday=weekday,
            )
            for i, device in enumerate(self.devices)
        }
        self.truth = {device: DeviceTruth() for device in self.devices}
        self.duplicated: set[tuple[str, bytes]] = set()  # (device, payload) sent twice
        places = scenario.places()
        self.zones = {d: local_time.zone(places[d][contract.TIME_ZONE_ATTRIBUTE]) for d in places}
        self._offsets: dict[tuple[str, int], int] = {}
        # The ones that follow the residents' day are planned by the wall clock (a heater
        # from 23:00 local) and labelled in true time; a meter's faults come at any time.
        planned = labelled.plan(
            scenario.incidents,
            self.devices,
            start_s=self.start,
            duration_s=scenario.duration_s,
            seed=scenario.seed,
        )
        last = self.start + scenario.duration_s - labelled.SETTLE_S
        labelled_as = [
            (wall, replace(wall, start_s=self._true_s(wall.device_id, wall.start_s),
                           end_s=min(self._true_s(wall.device_id, wall.end_s), last))
             if wall.kind in labelled.WALL_CLOCK_KINDS else wall)
            for wall in planned
        ]  # fmt: skip
        labelled_as.sort(key=lambda pair: (pair[1].start_s, pair[1].device_id))
        self.incidents = [incident for _wall, incident in labelled_as]
        self.silences: dict[str, list[tuple[int, int]]] = {}
        self.stuck: dict[str, list[tuple[int, int]]] = {}
        self.frozen_power: dict[str, list[tuple[int, int]]] = {}
        for wall, incident in labelled_as:
            start, end = wall.start_s - self.start, wall.end_s - self.start
            profile = self.profiles[incident.device_id]
            if incident.kind in (labelled.HEATER_NIGHT, labelled.BASELOAD_STEP):
                profile.events.append(Event(start, end, incident.power_w))
            elif incident.kind == labelled.VACATION:
                profile.away.append((start, end))
            elif incident.kind == labelled.METER_SILENT:
                spans = self.silences.setdefault(incident.device_id, [])
                spans.append((incident.start_s, incident.end_s))
            elif incident.kind == labelled.METER_STUCK:
                spans = self.stuck.setdefault(incident.device_id, [])
                spans.append((incident.start_s, incident.end_s))
            elif incident.kind == labelled.POWER_STUCK:
                spans = self.frozen_power.setdefault(incident.device_id, [])
                spans.append((incident.start_s, incident.end_s))

    def _silent_until(self, device: str, ts: int) -> int | None:
        """When the meter can send again, if it cannot at `ts`."""
        for start, end in self.silences.get(device, ()):
            if start <= ts < end:
                return end
        return None

    def _true_s(self, device: str, wall_s: int) -> int:
        """The instant the device's building's clocks show `wall_s` (read as UTC)."""
        naive = dt.datetime.fromtimestamp(wall_s, dt.UTC).replace(tzinfo=None)
        return int(naive.replace(tzinfo=self.zones[device]).timestamp())

    def wall_s(self, device: str, ts: int) -> int:
        """Seconds since the scenario's start by the building's wall clock (what a load
        profile is in): the true time plus the zone's offset then."""
        key = (device, ts // 900)  # offsets change on quarter hours at most
        offset = self._offsets.get(key)
        if offset is None:
            delta = dt.datetime.fromtimestamp(ts, self.zones[device]).utcoffset()
            offset = int(delta.total_seconds()) if delta else 0
            self._offsets[key] = offset
        return ts + offset - self.start

    def _reported_power(self, device: str, ts: int, power_w: float) -> float:
        """What the meter reports as its power: the true power, or the value it froze at."""
        for start, end in self.frozen_power.get(device, ()):
            if start < ts <= end:
                return self.profiles[device].power_w(self.wall_s(device, start))
        return power_w

    def messages(self) -> Iterator[Message]:
        sc, faults = self.scenario, self.scenario.faults
        rng = random.Random(sc.seed)
        registers = {d: rng.randint(1_000_000, 40_000_000) for d in self.devices}
        seqs = dict.fromkeys(self.devices, 0)
        pending: dict[str, list[dict[str, object]]] = {d: [] for d in self.devices}
        held: list[tuple[float, int, Message]] = []  # late messages, by publish time
        order = 0
        steps = sc.duration_s // sc.interval_s
        # Keep the first and last messages of each device on time: they bound the truth.
        late_window = (
            sc.readings_per_message * sc.interval_s * 2,
            sc.duration_s - faults.late_delay_s - 60,
        )
        for truth in self.truth.values():
            truth._segments.append([])
        for step in range(steps + 1):
            t_rel = step * sc.interval_s
            ts = self.start + t_rel
            while held and held[0][0] <= ts:
                yield heapq.heappop(held)[2]
            for device in self.devices:
                truth = self.truth[device]
                profile = self.profiles[device]
                if (
                    step
                    and rng.random() < faults.reset_rate * sc.interval_s / DAY_S
                    and (late_window[0] < t_rel < late_window[1])
                ):
                    registers[device] = 0  # meter swap: the new meter starts at zero
                    truth.resets += 1
                    truth._segments.append([])
                power = profile.power_w(self.wall_s(device, ts))
                stuck = any(start < ts <= end for start, end in self.stuck.get(device, ()))
                if step and not stuck:
                    registers[device] += round(power * sc.interval_s / 3.6)
                seqs[device] += 1
                reported = self._reported_power(device, ts, power)
                reading = _reading(ts, registers[device], reported, seqs[device], rng)
                truth.readings += 1
                truth._segments[-1].append((ts, registers[device]))
                truth.first_ts = truth.first_ts or ts
                truth.last_ts = ts
                batch = pending[device]
                batch.append(reading)
                if len(batch) < sc.readings_per_message and step < steps:
                    continue
                pending[device] = []
                body = batch[0] if len(batch) == 1 else {"readings": batch}
                payload = encode_payload(
                    json.dumps(body, separators=(",", ":")).encode(), sc.payload_encoding
                )
                message = Message(ts, device, payload, len(batch), ts, "readings")
                silent_until = self._silent_until(device, ts)
                if silent_until is not None:  # kept, and sent when it can send again
                    order += 1
                    kept = Message(silent_until, device, payload, len(batch), ts, "silenced")
                    heapq.heappush(held, (kept.publish_at, order, kept))
                    continue
                near_swap = truth.resets and len(truth._segments[-1]) <= LOOKBACK + len(batch)
                if (
                    late_window[0] < t_rel < late_window[1]
                    and not near_swap
                    and rng.random() < faults.late_rate
                ):
                    truth.late_readings += len(batch)
                    order += 1
                    late = Message(
                        ts + faults.late_delay_s, device, payload, len(batch), ts, "late"
                    )
                    heapq.heappush(held, (late.publish_at, order, late))
                else:
                    yield message
                if rng.random() < faults.duplicate_rate:
                    truth.duplicate_readings += len(batch)
                    self.duplicated.add((device, payload))
                    yield Message(ts, device, payload, len(batch), ts, "duplicate")
                if rng.random() < faults.garbage_rate:
                    kind = rng.choice(GARBAGE_KINDS)
                    truth.garbage_messages += 1
                    garbage = _garbage(kind, ts, sc.payload_encoding)
                    yield Message(ts, device, garbage, 1, 0, kind)
        while held:
            yield heapq.heappop(held)[2]
        for truth in self.truth.values():
            truth.finish()


class MqttPublisher:
    """One TLS connection per device, each with its own certificate (QoS 1).

    A meter that has lost its connection keeps taking readings: its messages wait in an
    offline buffer of at most `buffer_readings` readings (the oldest message goes when a
    new one does not fit; `dropped` lists them) and are published, oldest first, as soon
    as the meter is connected again. Messages already handed to the client when the
    connection dropped are resent by the MQTT session itself (QoS 1).
    """

    def __init__(
        self,
        host: str,
        port: int,
        credentials: Callable[[str], tuple[Path, Path, Path]],
        *,
        topic: Callable[[str], str] = lambda device: TOPIC_PREFIX + device,
        buffer_readings: int = FLEET.offline_buffer_readings,
    ) -> None:
        self.host, self.port = host, port
        self.credentials = credentials
        self.topic = topic
        self.buffer_readings = buffer_readings
        self.clients: dict[str, mqtt.Client] = {}
        self.sent: Counter[str] = Counter()
        self.acknowledged: Counter[str] = Counter()  # PUBACKs, success or refusal
        self.buffers: dict[str, deque[Message]] = {}
        self.dropped: list[Message] = []
        self.buffered = 0  # messages that waited in an offline buffer
        self.buffered_peak_readings = 0
        self.refused = 0
        self.reconnects = 0
        self._lock = threading.Lock()

    def connect(self, device: str) -> None:
        self._client(device)

    def _client(self, device: str) -> mqtt.Client:
        client = self.clients.get(device)
        if client is None:
            cert, key, ca = self.credentials(device)
            client = tls_client(device, cert=cert, key=key, ca=ca)
            connects = [0]

            def on_publish(_c: object, _u: object, _mid: int, reason: object, _p: object) -> None:
                with self._lock:
                    self.acknowledged[device] += 1
                    if getattr(reason, "is_failure", False):
                        self.refused += 1

            def on_connect() -> None:
                connects[0] += 1
                if connects[0] > 1:
                    with self._lock:
                        self.reconnects += 1

            client.on_publish = on_publish
            connect(client, self.host, self.port, on_every_connect=on_connect)
            self.clients[device] = client
            self.buffers[device] = deque()
        return client

    def publish(self, message: Message) -> None:
        client = self._client(message.device_id)
        buffer = self.buffers[message.device_id]
        if not client.is_connected():
            self._keep(buffer, message)
            return
        while buffer:
            self._send(client, buffer.popleft())
        self._send(client, message)

    def _keep(self, buffer: deque[Message], message: Message) -> None:
        buffer.append(message)
        self.buffered += 1
        held = sum(m.readings for m in buffer)
        while buffer and held > self.buffer_readings:
            oldest = buffer.popleft()
            held -= oldest.readings
            self.dropped.append(oldest)
        self.buffered_peak_readings = max(self.buffered_peak_readings, held)

    def _send(self, client: mqtt.Client, message: Message) -> None:
        with self._lock:
            self.sent[message.device_id] += 1
        info = client.publish(self.topic(message.device_id), message.payload, qos=1)
        # NO_CONN: the connection dropped since is_connected(); the client queued the
        # message and sends it on reconnect (QoS 1).
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise RuntimeError(
                f"publish for {message.device_id} failed: {mqtt.error_string(info.rc)}"
            )

    def flush(self, timeout: float = 60.0) -> None:
        """Publish what waits in the offline buffers once their meters are connected."""
        deadline = time.monotonic() + timeout
        while any(self.buffers.values()):
            for device, buffer in self.buffers.items():
                client = self.clients[device]
                while buffer and client.is_connected():
                    self._send(client, buffer.popleft())
            if time.monotonic() > deadline:
                waiting = sum(len(b) for b in self.buffers.values())
                raise TimeoutError(f"{waiting} buffered messages: meters did not reconnect")
            time.sleep(0.05)

    def close(self, timeout: float = 60.0) -> None:
        """Publish what is buffered, wait for every PUBACK, disconnect."""
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        wait_until(self._all_acknowledged, timeout=max(0.0, deadline - time.monotonic()))
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()

    def _all_acknowledged(self) -> bool:
        with self._lock:
            return all(self.acknowledged[d] >= n for d, n in self.sent.items())

    @property
    def dropped_readings(self) -> int:
        return sum(m.readings for m in self.dropped)


@dataclass
class RunStats:
    messages: int = 0
    readings: int = 0  # reading-equivalents, including duplicates and garbage
    payload_bytes: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    publish_log: list[tuple[str, int, float]] = field(default_factory=list)  # device, last_ts, wall
    wall_s: float = 0.0


def run(
    simulation: Simulation,
    publisher: Publisher,
    *,
    progress: Callable[[RunStats, float], None] | None = None,
    stop: threading.Event | None = None,
    stats: RunStats | None = None,
) -> RunStats:
    """Publish every message, pacing simulated time at the scenario's speed."""
    stats = stats if stats is not None else RunStats()
    speed = simulation.scenario.speed
    wall0 = time.monotonic()
    next_report = wall0
    total = simulation.scenario.duration_s
    for message in simulation.messages():
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt("simulation stopped")
        due = wall0 + (message.publish_at - simulation.start) / speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        publisher.publish(message)
        stats.messages += 1
        stats.readings += message.readings
        stats.payload_bytes += len(message.payload)
        stats.by_kind[message.kind] = stats.by_kind.get(message.kind, 0) + 1
        if message.last_ts:
            stats.publish_log.append((message.device_id, message.last_ts, time.time()))
        now = time.monotonic()
        if progress is not None and now >= next_report:
            progress(stats, min(1.0, (message.publish_at - simulation.start) / total))
            next_report = now + 1.0
    publisher.close()
    stats.wall_s = time.monotonic() - wall0
    return stats


def _aws_main(args: argparse.Namespace, scenario: Scenario) -> None:
    # One real device: its thing name, certificate and key as AWS IoT issued them.
    host, _, port = args.endpoint.partition(":")
    scenario = Scenario(
        **{**asdict(scenario), "apartments": 1, "faults": scenario.faults, "things": (args.thing,)}
    )
    simulation = Simulation(scenario)
    publisher = MqttPublisher(host, int(port or 8883), lambda _d: (args.cert, args.key, args.ca))
    stats = run(simulation, publisher)
    print(
        json.dumps(
            {
                "messages": stats.messages,
                "readings": stats.readings,
                "truth": simulation.truth[args.thing].public(),
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--apartments", type=int, default=5)
    parser.add_argument("--days", type=float, default=1 / 24)
    parser.add_argument(
        "--interval",
        type=int,
        default=FLEET.reading_interval_seconds,
        help="seconds between readings",
    )
    parser.add_argument("--readings-per-message", type=int, default=FLEET.readings_per_message)
    parser.add_argument(
        "--payload-encoding", choices=contract.PAYLOAD_ENCODINGS, default=FLEET.payload_encoding
    )
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per second")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--endpoint", help="AWS IoT endpoint host[:port] (ATS)")
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    parser.add_argument("--ca", type=Path, help="Amazon Root CA 1")
    parser.add_argument("--thing", help="the thing name the certificate is attached to")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="local broker port")
    parser.add_argument("--pki", type=Path, help="local CA directory (ca.pem, *.crt, *.key)")
    args = parser.parse_args(argv)
    scenario = Scenario(
        apartments=args.apartments,
        days=args.days,
        interval_s=args.interval,
        readings_per_message=args.readings_per_message,
        payload_encoding=args.payload_encoding,
        speed=args.speed,
        seed=args.seed,
        faults=Faults(duplicate_rate=0, late_rate=0, reset_rate=0, garbage_rate=0)
        if args.endpoint
        else Faults(),
    )
    if args.endpoint:
        if not (args.cert and args.key and args.ca and args.thing):
            parser.error("--endpoint needs --cert, --key, --ca and --thing")
        _aws_main(args, scenario)
        return
    if not (args.port and args.pki):
        parser.error("a local run needs --port and --pki (or use python -m devkit.demo.run)")
    pki: Path = args.pki
    ca = pki / "ca.pem"
    simulation = Simulation(scenario)
    stats = run(
        simulation,
        MqttPublisher(args.host, args.port, lambda d: (pki / f"{d}.crt", pki / f"{d}.key", ca)),
    )
    print(json.dumps({"messages": stats.messages, "readings": stats.readings}))


if __name__ == "__main__":
    main()

__all__ = [
    "CertificateAuthority",
    "Faults",
    "Message",
    "MqttPublisher",
    "Scenario",
    "Simulation",
    "run",
]
