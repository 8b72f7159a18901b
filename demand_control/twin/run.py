"""One arm through the simulated days, and every arm of a scenario on the same draws.

An arm is an object with `morning(day, known)` (plan and act at 06:00, after the receipts and the day's
supplier notices) and `workday(day)` (people decide); the engine moves goods around them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demand_control.twin.demand import World
from demand_control.twin.engine import Twin
from demand_control.twin.scenario import Scenario

ARMS = ("control_event", "control_weekly", "order_point")
PREFIX = {"control_event": "E", "control_weekly": "W", "order_point": "O"}

Progress = Callable[[str, int], None]


@dataclass
class ArmResult:
    """What an arm leaves for the scorecard."""

    arm: str
    twin: Twin
    touches: list[dict] = field(default_factory=list)  # human decisions: day, at, team, series, decision, item
    cases: Any = None  # the control arms' exception cases (a DataFrame), None for the order-point arm
    decisions: Any = None  # every decision on an action (human and policy), None for the order-point arm
    plans: list[dict] = field(default_factory=list)  # day, at, scope ("full"/"scoped"), sku_locations, seconds
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the arm's CPU time: on a shared machine, what its wall time would be idle


def make_arm(name: str, twin: Twin, policy_path: str | None, work: Path, forecasts: dict[int, Path] | None):  # noqa: ANN201
    if name == "order_point":
        from demand_control.twin.order_point import OrderPointArm

        return OrderPointArm(twin)
    from demand_control.twin.chain import ControlArm

    return ControlArm(twin, event_driven=name == "control_event", policy_path=policy_path, work=work / name, forecasts=forecasts or {})


def run_arm(name: str, world: World, scenario: Scenario, policy_path: str | None = None, work: Path | None = None,
            forecasts: dict[int, Path] | None = None, progress: Progress | None = None) -> ArmResult:
    """Simulate one arm over every day of the scenario."""
    started, cpu = time.perf_counter(), time.process_time()
    twin = Twin(world, scenario, name, PREFIX[name])
    arm = make_arm(name, twin, policy_path, work or Path("."), forecasts)
    for day in range(world.days):
        twin.receive(day)
        twin.open_book(day)
        known = twin.disruptions_of(day)
        arm.morning(day, known)
        arm.workday(day)
        twin.ship(day)
        twin.record(day)
        if progress is not None and (day + 1) % 7 == 0:
            progress(name, (day + 1) // 7)
    result = ArmResult(arm=name, twin=twin, touches=list(arm.touches))
    if hasattr(arm, "finish"):
        arm.finish(result)
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = time.process_time() - cpu
    return result
