"""A whole run: build the world from the scenario, refit the forecasts the control arms share and run the arms
(in parallel processes, the refits beside the arms: each arm spends its time in its own warehouse), score
them and write the folder. The CLI, the Dagster job and the benchmark call `simulate`.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from demand_control.planning.policy import load_policy
from demand_control.twin import forecasts as fc
from demand_control.twin import report
from demand_control.twin.demand import World, build_world
from demand_control.twin.run import ARMS, ArmResult, run_arm
from demand_control.twin.scenario import Scenario, check_against_landscape
from demand_control.twin.scorecard import scorecard

DEFAULT_FORECAST_EVERY_WEEKS = 1


@dataclass
class Simulation:
    scenario: Scenario
    cards: dict[str, dict]
    files: dict[str, Path]
    seconds: dict[str, float]
    results: list[ArmResult]


def _worker(args: tuple) -> ArmResult:
    name, world, scenario, policy_path, work, forecasts, queue = args
    progress = (lambda arm, week: queue.put((arm, week))) if queue is not None else None
    result = run_arm(name, world, scenario, policy_path, work, forecasts, progress)
    result.twin.world = None  # the parent has it: do not send it back
    return result


def simulate(
    scenario: Scenario,
    out: Path,
    policy_path: str | None = None,
    arms: tuple[str, ...] = ARMS,
    forecast_every_weeks: int = DEFAULT_FORECAST_EVERY_WEEKS,
    jobs: int = 2,
    progress: Callable[[str, int], None] | None = None,
    log: Callable[[str], None] = print,
) -> Simulation:
    """Run `arms` of `scenario` on the same draws and write the scorecard folder `out`."""
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    out = Path(out)
    work = out / "work"
    world = build_world(scenario)
    frames = world.frames
    check_against_landscape(scenario, set(frames["supplier"]["supplier_id"]), set(frames["product"]["category"]), set(frames["product"]["sku"]))
    seconds["draws"] = time.perf_counter() - started
    control = [a for a in arms if a != "order_point"]
    forecasts: dict[int, Path] = {}
    results: dict[str, ArmResult] = {}
    threshold = load_policy(policy_path).thresholds.excess_days_of_cover
    cards: dict[str, dict] = {}
    draws: dict[str, Path] | None = None
    # Longest first: with two processes the event-driven arm (the longest) takes one, the weekly arm and then the
    # order-point arm share the other, so the run lasts about as long as its longest arm.
    order = sorted(arms, key=lambda a: ARMS.index(a) if a in ARMS else len(ARMS))
    tasks = len(order) + (1 if control else 0)
    if jobs > 1 and tasks > 1:
        # The forecast refits are queued first and computed one after the other in one process while the
        # event-driven arm starts in the other and waits for each refit file only if it gets there first; the
        # weekly arm then takes the refits' process. The refits used to run before every arm, with one core
        # idle for most of the run.
        forecasts = fc.plan_refits(world, forecast_every_weeks, work / "forecasts") if control else {}
        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager:
            queue = manager.Queue() if progress is not None else None
            with ProcessPoolExecutor(max_workers=min(jobs, tasks), mp_context=ctx) as pool:
                refits = pool.submit(fc.refit_in_order, world, forecasts) if control else None
                futures = {a: pool.submit(_worker, (a, world, scenario, policy_path, work, forecasts, queue)) for a in order}
                pending = [*futures.values(), *([refits] if refits is not None else [])]
                # This process idles while the arms run: it writes the draws no arm changes, and scores each arm
                # as it finishes (the weekly and order-point arms long before the event-driven one).
                draws = report.write_draws(out, world, scenario.seed)
                while True:
                    _drain(queue, progress)
                    for a, f in futures.items():
                        if a not in results and f.done():
                            results[a] = f.result()
                            results[a].twin.world = world
                            cards[a] = scorecard(results[a], threshold)
                    if all(f.done() for f in pending) and len(results) == len(futures):
                        break
                    time.sleep(0.2)
                _drain(queue, progress)
                if refits is not None:
                    seconds["forecasts"], _ = refits.result()
                    log(f"forecast refits: {len(forecasts)} in {seconds['forecasts']:.0f} s, beside the arms")
    else:
        if control:
            t = time.perf_counter()
            forecasts = fc.precompute(world, forecast_every_weeks, work / "forecasts", log=lambda m: None, jobs=jobs)
            seconds["forecasts"] = time.perf_counter() - t
            log(f"forecast refits: {len(forecasts)} in {seconds['forecasts']:.0f} s")
        for a in order:
            results[a] = run_arm(a, world, scenario, policy_path, work, forecasts, progress)
    ordered = [results[a] for a in arms]
    cards = {r.arm: cards[r.arm] if r.arm in cards else scorecard(r, threshold) for r in ordered}
    for r in ordered:
        seconds[r.arm] = r.seconds
    seconds["total"] = time.perf_counter() - started
    meta = {"scenario": scenario.source, "sku_locations": world.n, "weeks": scenario.weeks, "as_of": scenario.as_of.isoformat(),
            "seed": scenario.seed, "order_lines": int(((world.lines["promise_day"] >= 0) & (world.lines["promise_day"] < world.days)).sum()),
            "seconds": seconds}
    files = report.write(out, world, ordered, cards, meta, draws=draws)
    return Simulation(scenario=scenario, cards=cards, files=files, seconds=seconds, results=ordered)


def _drain(queue, progress) -> None:  # noqa: ANN001
    if queue is None or progress is None:
        return
    while not queue.empty():
        progress(*queue.get())


__all__ = ["Simulation", "World", "simulate"]
