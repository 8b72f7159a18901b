"""Jobs the run-launcher tests execute in warm workers (importable by the workers, which load jobs by origin):
one that never ends until interrupted, one that swallows interrupts (stuck as if in C code), one quick."""

from __future__ import annotations

import time

import dagster as dg


@dg.op
def wait_until_interrupted() -> None:
    while True:
        time.sleep(0.2)


@dg.job
def stuck_job() -> None:
    wait_until_interrupted()


@dg.op
def ignore_interrupts() -> None:
    while True:
        try:
            time.sleep(0.2)
        except BaseException:  # noqa: BLE001 - what a run stuck outside Python looks like to a signal
            continue


@dg.job
def deaf_job() -> None:
    ignore_interrupts()


@dg.op
def answer() -> int:
    return 42


@dg.job
def quick_job() -> None:
    answer()


# The code location the stopping tests serve (tests/infra/test_stopping.py).
defs = dg.Definitions(jobs=[stuck_job, deaf_job, quick_job])
