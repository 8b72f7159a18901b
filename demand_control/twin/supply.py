"""The twin's supply draws: when a purchase line really arrives, whether an expedite works, and what the
supplier disruptions do to the lines they hit.

Common random numbers without a shared queue: every outcome is a pure function of the scenario seed, a
stream number and the line's SKU-location, order day and sequence (a counter-based generator, splitmix64),
so the line an arm places for SKU-location i on day d meets the same supplier luck in every arm, whatever
the arm did before. `supply_draws` tabulates them for re-scoring another policy.

A supplier is on time with probability `reliability` (the landscape's share on time): the line arrives on
its expected day or up to two days early. Otherwise it is late by 1 + an exponential number of days with
the lane's lead-time spread as mean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ON_TIME, EARLY, LATE, EXPEDITE, SELECT, SPREAD = 1, 2, 3, 4, 5, 6
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
        return x ^ (x >> np.uint64(31))


def uniform(seed: int, stream: int, *keys: np.ndarray | int) -> np.ndarray:
    """A uniform in [0, 1) per element, fixed by (seed, stream, keys); keys broadcast together."""
    arrays = np.broadcast_arrays(*[np.asarray(k, dtype=np.int64) for k in keys])
    with np.errstate(over="ignore"):
        h = _mix(np.full(arrays[0].shape, np.uint64(seed & 0xFFFFFFFFFFFFFFFF), dtype=np.uint64) ^ np.uint64(stream * 0x632BE59BD9B4E019 & 0xFFFFFFFFFFFFFFFF))
        for a in arrays:
            h = _mix(h ^ a.astype(np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def line_key(order_day: np.ndarray, sequence: np.ndarray) -> np.ndarray:
    """One integer per (order day, sequence of the line among that SKU-location's lines of the day)."""
    return np.asarray(order_day, dtype=np.int64) * 64 + np.asarray(sequence, dtype=np.int64)


def arrival_days(seed: int, series: np.ndarray, key: np.ndarray, planned_day: np.ndarray, reliability: np.ndarray,
                 lead_std: np.ndarray, earliest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true arrival day, on time) of purchase lines planned for `planned_day`; never before `earliest`."""
    on_time = uniform(seed, ON_TIME, series, key) < reliability
    early = np.floor(uniform(seed, EARLY, series, key) * 3).astype(np.int64)
    late = 1 + np.rint(-np.log1p(-uniform(seed, LATE, series, key)) * np.maximum(lead_std, 1.0)).astype(np.int64)
    arrival = np.where(on_time, planned_day - early, planned_day + late)
    return np.maximum(arrival, earliest), on_time


def expedite_works(seed: int, series: np.ndarray, day: int, reliability: np.ndarray) -> np.ndarray:
    """Whether the supplier pulls a line in when asked on `day`: with its reliability."""
    return uniform(seed, EXPEDITE, series, day) < reliability


def selected(seed: int, disruption: int, series: np.ndarray, key: np.ndarray, share: float) -> np.ndarray:
    """Whether a supplier_delay with this share hits a line (the same lines in every arm that has them)."""
    return uniform(seed, SELECT * 1000 + disruption, series, key) < share


def outage_spread(seed: int, disruption: int, series: np.ndarray, key: np.ndarray) -> np.ndarray:
    """0..3 days: the backlog after an outage does not all ship on its first day."""
    return np.floor(uniform(seed, SPREAD * 1000 + disruption, series, key) * 4).astype(np.int64)


def supply_draws(seed: int, series: pd.DataFrame, supplier: pd.DataFrame, days: int) -> pd.DataFrame:
    """The draw a purchase line of each SKU-location placed on each day (the first of the day) meets: its
    true lead time from the quoted one, whether it is on time and whether an expedite asked that day works."""
    n = len(series)
    rel = series["supplier_id"].map(supplier.set_index("supplier_id")["reliability"]).fillna(0.9).to_numpy(dtype=float)
    sid = np.repeat(np.arange(n), days)
    day = np.tile(np.arange(days), n)
    quoted = np.rint(series["lead_time_days"].fillna(14).to_numpy())[sid].astype(np.int64)
    arrival, on_time = arrival_days(seed, sid, line_key(day, 0), day + quoted, rel[sid], series["lead_time_std_days"].fillna(0).to_numpy()[sid], day + 1)
    return pd.DataFrame({
        "sku": series["sku"].to_numpy()[sid], "location_id": series["location_id"].to_numpy()[sid], "order_day": day,
        "quoted_lead_time_days": quoted, "true_lead_time_days": arrival - day, "on_time": on_time,
        "expedite_works": expedite_works(seed, sid, 0, rel[sid]) if days == 0 else uniform(seed, EXPEDITE, sid, day) < rel[sid],
    })
