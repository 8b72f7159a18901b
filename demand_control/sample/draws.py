"""Vectorised draws and codes the landscape generator builds every frame with: categorical picks (one per
element or per row), code strings, joined labels and day offsets."""

from __future__ import annotations

import datetime as dt

import numpy as np


def as_date(value: dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def codes(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Vectorised `f"{prefix}{n:0{width}d}"` as an object array of str."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size == 0:
        return np.empty(0, dtype=object)
    digits = np.char.zfill(numbers.astype(str), width)
    return np.char.add(prefix, digits).astype(object)


def join_labels(*parts: np.ndarray | str) -> np.ndarray:
    out = np.asarray(parts[0]).astype(str)
    for part in parts[1:]:
        out = np.char.add(out, np.asarray(part).astype(str))
    return out.astype(object)


def draw_category(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    """n draws from a categorical distribution (vectorised inverse CDF)."""
    cdf = np.cumsum(np.asarray(probs, dtype=np.float64))
    return np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n), side="right"), len(cdf) - 1)


def draw_per_row(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of a (n, k) probability matrix."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cdf[:, -1:]
    return np.minimum((u >= cdf).sum(axis=1), probs.shape[1] - 1)


def days_after(base: dt.date, offsets: np.ndarray) -> np.ndarray:
    """base + offsets (days) as datetime64[ns]."""
    return (np.datetime64(base, "D") + np.asarray(offsets, dtype=np.int64)).astype("datetime64[ns]")
