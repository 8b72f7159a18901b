"""Benchmark: generate the sample landscape and export it to Parquet at 100k SKU-locations.

    python benchmarks/landscape.py [--skus 25000 --locations 4 --weeks 156 --seed 42]

The run happens in a child process so the peak RSS reported is that run's own
(`getrusage(RUSAGE_CHILDREN).ru_maxrss`). Target: generation + export in at most 60 s. A second child then
reads the written demand history back and reports its measured Syntetos-Boylan class mix.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 60.0
AS_OF = "2025-06-04"


def _child_run(args: argparse.Namespace) -> None:
    from demand_control.sample import generate_landscape, write_landscape

    start = time.perf_counter()
    frames = generate_landscape(args.skus, args.locations, args.weeks, args.seed, dt.date.fromisoformat(AS_OF))
    generated = time.perf_counter()
    paths = write_landscape(frames, Path(args.out), "parquet")
    exported = time.perf_counter()
    print(
        json.dumps(
            {
                "generate_s": generated - start,
                "export_s": exported - generated,
                "rows": {name: len(frame) for name, frame in frames.items()},
                "bytes": {name: path.stat().st_size for name, path in paths.items()},
            }
        )
    )


def _child_mix(args: argparse.Namespace) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    qty = pq.read_table(Path(args.out) / "demand_history.parquet", columns=["qty"])["qty"].to_numpy()
    panel = qty.reshape(-1, args.weeks)
    nonzero = panel > 0
    n = nonzero.sum(axis=1)
    weeks = np.arange(args.weeks)
    first = np.where(nonzero, weeks, args.weeks).min(axis=1)
    last = np.where(nonzero, weeks, -1).max(axis=1)
    adi = np.where(n >= 2, (last - first) / np.maximum(n - 1, 1), np.inf)
    mean = panel.sum(axis=1) / np.maximum(n, 1)
    cv2 = ((panel**2).sum(axis=1) / np.maximum(n, 1) - mean**2) / np.maximum(mean, 1e-12) ** 2
    cls = np.where(adi < 1.32, np.where(cv2 < 0.49, 0, 1), np.where(cv2 < 0.49, 2, 3))
    share = np.bincount(cls, minlength=4) / len(cls)
    print(json.dumps(dict(zip(("smooth", "erratic", "intermittent", "lumpy"), share.round(4).tolist()))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=25_000)
    parser.add_argument("--locations", type=int, default=4)
    parser.add_argument("--weeks", type=int, default=156)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-mix", action="store_true", help="skip the class-mix measurement")
    parser.add_argument("--child", choices=("run", "mix"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "run":
        _child_run(args)
        return 0
    if args.child == "mix":
        _child_mix(args)
        return 0

    sizes = ["--skus", str(args.skus), "--locations", str(args.locations), "--weeks", str(args.weeks)]
    with tempfile.TemporaryDirectory(prefix="landscape-bench-") as out:
        command = [sys.executable, __file__, *sizes, "--seed", str(args.seed), "--out", out]
        start = time.perf_counter()
        done = subprocess.run([*command, "--child", "run"], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        result = json.loads(done.stdout)
        mix = None
        if not args.no_mix:
            mixed = subprocess.run([*command, "--child", "mix"], capture_output=True, text=True, check=True)
            mix = json.loads(mixed.stdout)

    series = args.skus * args.locations
    measured = result["generate_s"] + result["export_s"]
    print(f"sample landscape: {args.skus} SKUs x {args.locations} DCs = {series:,} SKU-locations, {args.weeks} weeks")
    print(f"  generate            {result['generate_s']:8.2f} s")
    print(f"  export (parquet)    {result['export_s']:8.2f} s")
    print(f"  generate + export   {measured:8.2f} s")
    print(f"  child wall clock    {wall:8.2f} s  (incl. interpreter start and imports)")
    print(f"  peak RSS            {peak_mb:8.0f} MB")
    print("  rows per object:")
    for name, rows in result["rows"].items():
        print(f"    {name:<22}{rows:>12,}  {result['bytes'][name] / 1e6:8.1f} MB")
    if mix:
        print("  measured class mix:  " + ", ".join(f"{k} {v:.1%}" for k, v in mix.items()))
    verdict = "PASS" if wall <= TARGET_SECONDS else "FAIL"
    print(f"target: generate + export <= {TARGET_SECONDS:.0f} s -> {verdict} (wall / target = {wall / TARGET_SECONDS:.3f})")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
