"""Benchmark: the digital twin on the default scenario (all three arms) and at scale (the control_event arm).

Targets (issue 12): the default scenario (200 SKUs x 3 DCs, 52 weeks), all three arms, in at most 10 minutes
and 4 GB on this 2-core machine; 10,000 SKU-locations x 52 weeks of the control_event arm in at most 60
minutes. Each run happens in a child process so its peak RSS (its arm workers included) is its own; the
scale run prints its time as a ratio to the control_event arm of the default run, beside the ratio of
SKU-locations, so the scaling is visible.

    .venv/bin/python benchmarks/twin.py [--skip-default] [--skip-scale] [--scale-skus 3334] [--scale-weeks 52]
        [--forecast-every 4] [--out DIR]

`--scale-weeks` below 52 runs fewer weeks and extrapolates linearly to 52 (said so in the output).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_TARGET_S, DEFAULT_TARGET_GB = 600.0, 4.0
SCALE_TARGET_S = 3600.0


def _child(kind: str, out: str, skus: int, weeks: int, forecast_every: int) -> None:
    from demand_control.twin.scenario import load_scenario
    from demand_control.twin.simulate import simulate

    scenario = load_scenario()
    if kind == "default":
        sim = simulate(scenario, Path(out), log=lambda m: None)
    else:
        scenario = scenario.model_copy(update={"skus": skus, "weeks": weeks, "disruptions": [d for d in scenario.disruptions if d.start_week < weeks]})
        sim = simulate(scenario, Path(out), arms=("control_event",), forecast_every_weeks=forecast_every, jobs=1, log=lambda m: None)
    n = len(sim.results[0].twin.world.series)
    cpu = {r.arm: r.cpu_seconds for r in sim.results}
    print(json.dumps({"seconds": sim.seconds, "cpu": cpu, "sku_locations": n, "cards": sim.cards}))


def _run(kind: str, out: Path, skus: int, weeks: int, forecast_every: int) -> tuple[dict, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(out), str(skus), str(weeks), str(forecast_every)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        raise SystemExit(proc.returncode)
    peak_gb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024**2
    return json.loads(proc.stdout.strip().splitlines()[-1]), peak_gb


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-default", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--scale-skus", type=int, default=3334, help="SKUs at 3 DCs (3334: 10,002 SKU-locations)")
    parser.add_argument("--scale-weeks", type=int, default=52)
    parser.add_argument("--forecast-every", type=int, default=4, help="forecast refit cadence of the scale run, in weeks")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="twin-bench-"))
    base_arm, base_n = None, 600
    if not args.skip_default:
        started = time.perf_counter()
        out, peak = _run("default", root / "default", 0, 52, 1)
        wall = time.perf_counter() - started
        base_arm, base_n = out["seconds"]["control_event"], out["sku_locations"]
        s = out["seconds"]
        print(f"twin, default scenario ({out['sku_locations']} SKU-locations x 52 weeks, 3 arms): {wall:.0f} s wall, peak RSS {peak:.2f} GB")
        print(f"  draws {s['draws']:.1f} s, forecast refits {s.get('forecasts', 0):.0f} s (beside the arms), control_event {s['control_event']:.0f} s, "
              f"control_weekly {s['control_weekly']:.0f} s (in parallel), order_point {s['order_point']:.1f} s")
        print("  CPU seconds per arm (close to its wall time on an idle machine): "
              + ", ".join(f"{arm} {v:.0f} s" for arm, v in out["cpu"].items()) + f"; load average {os.getloadavg()[0]:.1f} at the end")
        met = wall <= DEFAULT_TARGET_S and peak <= DEFAULT_TARGET_GB
        print(f"  target <= {DEFAULT_TARGET_S:.0f} s and <= {DEFAULT_TARGET_GB:.0f} GB -> {'MET' if met else 'NOT MET'}")
        for arm, card in out["cards"].items():
            print(f"  {arm:<15} line fill {card['line_fill_rate']}, inventory {card['avg_inventory_value']:,.0f}, "
                  f"touches/100/wk {card['human_touches_per_100_per_week']}")
    if not args.skip_scale:
        started = time.perf_counter()
        out, peak = _run("scale", root / "scale", args.scale_skus, args.scale_weeks, args.forecast_every)
        wall = time.perf_counter() - started
        full = wall * 52 / args.scale_weeks
        note = "" if args.scale_weeks == 52 else f" (ran {args.scale_weeks} weeks in {wall:.0f} s, extrapolated linearly to 52)"
        print(f"twin at scale: control_event, {out['sku_locations']:,} SKU-locations x 52 weeks: {full:.0f} s{note}, peak RSS {peak:.2f} GB, "
              f"forecast refit every {args.forecast_every} weeks")
        if base_arm:
            arm_full = out["seconds"]["control_event"] * 52 / args.scale_weeks
            print(f"  ratio to the default run's control_event arm: {arm_full / base_arm:.1f}x for {out['sku_locations'] / base_n:.1f}x the SKU-locations")
        print(f"  target <= {SCALE_TARGET_S:.0f} s -> {'MET' if full <= SCALE_TARGET_S else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
