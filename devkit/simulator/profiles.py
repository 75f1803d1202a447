"""Load profiles of simulated apartments: what a meter would measure, second by second.

An apartment's power is the sum of a base load (standby, ventilation), a fridge that
cycles, occupancy-driven use with morning and evening peaks (later and flatter at the
weekend), cooking and kettle events around meals, a washing machine on some days, and for
a few heavy users an electric-vehicle charger or a heater at night. Everything is drawn
from a per-apartment seed, so a scenario is reproducible.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

DAY_S = 86_400


@dataclass(frozen=True)
class Event:
    start_s: int  # seconds since scenario start
    end_s: int
    power_w: float


@dataclass
class ApartmentProfile:
    """Power draw over time for one apartment (deterministic for a given seed)."""

    seed: int
    days: int
    start_weekday: int  # 0 = Monday, of the scenario's first day
    base_w: float = 0.0
    occupancy_w: float = 0.0
    heavy_user: bool = False
    events: list[Event] = field(default_factory=list)
    # (start, end) in seconds since scenario start: nobody home (base load and fridge only).
    away: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.base_w = rng.uniform(60, 220)
        self.occupancy_w = rng.uniform(150, 650)
        self.fridge_phase = rng.uniform(0, 2700)
        self.heavy_user = rng.random() < 0.1
        for day in range(self.days):
            day0 = day * DAY_S
            weekend = (self.start_weekday + day) % 7 >= 5
            for meal_hour, chance in (
                (7.5, 0.5),
                (12.5, 0.35 if not weekend else 0.8),
                (19.0, 0.85),
            ):
                if rng.random() < chance:
                    start = day0 + int((meal_hour + rng.gauss(0, 0.6)) * 3600)
                    self.events.append(
                        Event(start, start + rng.randint(900, 3600), rng.uniform(1200, 2800))
                    )
            for _ in range(rng.randint(1, 4)):  # kettle
                start = day0 + rng.randint(6 * 3600, 22 * 3600)
                self.events.append(Event(start, start + rng.randint(120, 240), 2000.0))
            if rng.random() < (0.5 if weekend else 0.25):  # washing machine
                start = day0 + rng.randint(9 * 3600, 20 * 3600)
                self.events.append(Event(start, start + 5400, rng.uniform(400, 2000)))
            if self.heavy_user:
                start = day0 + rng.randint(0, 3 * 3600) + (22 * 3600 if rng.random() < 0.5 else 0)
                self.events.append(
                    Event(start, start + rng.randint(2, 4) * 3600, rng.choice([3700.0, 7400.0]))
                )

    def occupancy(self, t_s: float) -> float:
        """0..1: how much the residents are using things at this time of day."""
        day = int(t_s // DAY_S)
        hour = (t_s % DAY_S) / 3600
        weekend = (self.start_weekday + day) % 7 >= 5
        morning = 7.0 if not weekend else 9.0
        peaks = math.exp(-(((hour - morning) / 1.2) ** 2)) + 1.4 * math.exp(
            -(((hour - 20.0) / 2.0) ** 2)
        )
        daytime = 0.35 if weekend and 10 <= hour <= 18 else 0.08
        night = 0.02 if hour < 6 else 0.0
        return min(1.0, peaks + daytime + night)

    def power_w(self, t_s: float) -> float:
        fridge = 110.0 if ((t_s + self.fridge_phase) % 2700) < 900 else 0.0
        if any(start <= t_s < end for start, end in self.away):
            return self.base_w + fridge
        power = self.base_w + fridge + self.occupancy_w * self.occupancy(t_s)
        for event in self.events:
            if event.start_s <= t_s < event.end_s:
                power += event.power_w
        return power
