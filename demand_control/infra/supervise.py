"""Run a process tree in the foreground and stop all of it on Ctrl-C or SIGTERM within a bounded time.

`dagster dev` stops its webserver and daemon through shutdown pipes and waits up to 60 s for each; the daemon's
code server and the warm-pool run workers are further down the tree. Started from a shell that ignores SIGINT
(a background job, some process managers), `dagster dev` inherits the ignore and maps SIGTERM onto it, so it
does not stop at all. `supervise` starts the command in its own process group with the default signal
handling, and on SIGINT, SIGTERM or SIGHUP: interrupts the whole group (what Ctrl-C in a terminal does), then
after `grace_seconds` terminates it, then kills whatever is left, so everything is gone within
`grace_seconds + kill_after_seconds`. When the command ends by itself, what it left behind in its group is
stopped the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _default_signals() -> None:
    # In the child, before exec: an ignored SIGINT (a background job) would otherwise be inherited.
    for number in FORWARDED:
        signal.signal(number, signal.SIG_DFL)


def _signal_group(group: int, number: int) -> bool:
    try:
        os.killpg(group, number)
        return True
    except ProcessLookupError:
        return False


def _proc_stats() -> dict[int, list[str]]:
    """Each process's /proc/<pid>/stat fields after the command name (state, ppid, pgrp, session, ...)."""
    stats: dict[int, list[str]] = {}
    if not os.path.isdir("/proc"):
        return stats
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    stats[int(entry)] = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
    return stats


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, parents first (just `pid` where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for child, fields in _proc_stats().items():
        children.setdefault(int(fields[1]), []).append(child)
    tree, pending = [], [pid]
    while pending:
        current = pending.pop(0)
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def _group_alive(group: int) -> bool:
    """Whether any process of the group still runs (zombies waiting for a parent to reap them do not count)."""
    if not os.path.isdir("/proc"):
        return _signal_group(group, 0)
    return any(int(fields[2]) == group and fields[0] != "Z" for fields in _proc_stats().values())


def stop_group(group: int, grace_seconds: float, kill_after_seconds: float, first: int = signal.SIGINT,
               is_done: Callable[[], bool] | None = None) -> None:
    """Interrupt the process group, terminate it after `grace_seconds`, kill it `kill_after_seconds` later;
    returns as soon as it is gone (`is_done`, else no live process in the group)."""
    done = is_done or (lambda: not _group_alive(group))
    started = time.monotonic()
    for number, at in ((first, 0.0), (signal.SIGTERM, grace_seconds), (signal.SIGKILL, grace_seconds + kill_after_seconds)):
        while time.monotonic() - started < at:
            if done():
                return
            time.sleep(0.1)
        if not _signal_group(group, number):
            return
    while _group_alive(group) and time.monotonic() - started < grace_seconds + kill_after_seconds + 2.0:
        time.sleep(0.1)


def supervise(argv: Sequence[str], env: Mapping[str, str] | None = None, grace_seconds: float = 6.0,
              kill_after_seconds: float = 2.0, echo: Callable[[str], None] = print) -> int:
    """Run `argv` in its own process group until it ends or this process receives SIGINT, SIGTERM or SIGHUP;
    then stop the whole group (see the module docstring). Returns the exit status: the command's, or
    128 + the signal that stopped it."""
    received: list[int] = []

    def forward(number: int, frame: object) -> None:
        received.append(number)

    previous = {number: signal.signal(number, forward) for number in FORWARDED}
    try:
        child = subprocess.Popen(list(argv), env=dict(env) if env is not None else None, process_group=0,
                                 preexec_fn=_default_signals)
        group = child.pid
        while child.poll() is None and not received:
            time.sleep(0.2)
        if received:
            echo(f"received {signal.Signals(received[0]).name}: stopping {argv[0]} and everything it started "
                 f"(at most {grace_seconds + kill_after_seconds:.0f} s)")
        # Also after a normal end: children left behind in the group (a code server, a run worker) go too.
        stop_group(group, grace_seconds, kill_after_seconds, first=signal.SIGINT if received else signal.SIGTERM)
        code = child.wait()
        return 128 + received[0] if received else code
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
