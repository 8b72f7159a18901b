"""The seasonal inputs of the long-history forecast: the pooled seasonal index per category (else class),
its phase for each horizon step, the validated shapes a segment may use, and the split of a class into
seasonal and non-seasonal segments."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from demand_control.planning.candidates import (
    SEASON_INDEX_COLUMN,
)
from demand_control.planning.forecast_inputs import ForecastSettings, period_number
from demand_control.planning.seasonality import (
    PooledSeasonality,
    SeasonSettings,
    phase_of_period,
    pooled_seasonality,
    season_phase,
)
from demand_control.planning.short_history import IndexFn


def phase_matrix(last_period: np.ndarray, before: int, after: int, settings: ForecastSettings) -> np.ndarray:
    """Season phase of the `before` buckets up to each series' last one and the `after` buckets past it."""
    offsets = np.arange(-(before - 1), after + 1)
    return phase_of_period(last_period[:, None] + offsets[None, :], settings.sf_freq, settings.season_length)


def category_labels(ids: np.ndarray, mapping: pd.Series | None) -> np.ndarray:
    if mapping is None:
        return np.full(len(ids), "", dtype=object)
    return pd.Series(ids).map(mapping).fillna("").astype(str).to_numpy(dtype=object)


@dataclass
class SeasonalityInputs:
    """The pooled seasonal indices of one run: on all data, and without each series' last k periods."""

    panel: pd.DataFrame
    period: np.ndarray
    phase: np.ndarray
    settings: SeasonSettings
    categories: pd.Series | None
    classes: pd.Series
    cache: dict[int, PooledSeasonality] = field(default_factory=dict)

    def pooled(self, exclude_last: int = 0) -> PooledSeasonality:
        if exclude_last not in self.cache:
            self.cache[exclude_last] = pooled_seasonality(
                self.panel, self.period, self.phase, self.settings, self.categories, self.classes, exclude_last
            )
        return self.cache[exclude_last]

    def honest(self, exclude_last: int) -> IndexFn | None:
        """The index estimated without each series' last `exclude_last` periods, or None when nothing is seasonal."""
        pooled = self.pooled(exclude_last)
        return pooled.series_index if pooled.detected else None


def with_season_index(
    group: pd.DataFrame, settings: ForecastSettings, exclude_last: int = 0, categories: pd.Series | None = None,
    pooled: PooledSeasonality | None = None, allowed: dict[tuple[str, str], str] | None = None,
) -> pd.DataFrame:
    """`group` (validated, sorted by series and date) with the pooled seasonal index of each row's bucket as
    column `SEASON_INDEX_COLUMN`, estimated without each series' last `exclude_last` periods (the backtest
    windows, so the backtest does not see its own future); every group shape counts (the backtest decides),
    restricted to the `allowed` groups and shape kinds when given; unchanged when no series has a shape."""
    phase = season_phase(group["ds"], settings.sf_freq, settings.season_length)
    if pooled is None:
        period = period_number(group["ds"], settings.freq)
        pooled = pooled_seasonality(group, period, phase, settings.season_settings(), categories, None, exclude_last)
    if not pooled.coefs:
        return group
    index = pooled.series_index(group["unique_id"].to_numpy(), phase, detected_only=False, allowed=allowed)
    if np.allclose(index, 1.0):
        return group
    return group.assign(**{SEASON_INDEX_COLUMN: index})


def validated_shapes(honest: PooledSeasonality, final: PooledSeasonality) -> dict[tuple[str, str], str]:
    """The groups whose final shape the backtest validated, each with the kind of shape to use. A group the
    backtest saw a shape for keeps one while it is still detected seasonal on all data, of the kind the data
    supports best (harmonic or classical, by BIC); a group not detected keeps its classical shape only where
    the backtest saw a classical one too (long histories, where the backtest rather than the test decides).
    A shape detected on a season and a half but gone on all data was noise, and a shape the backtest never
    saw is not used."""
    def kinds(pooled: PooledSeasonality) -> dict[tuple[str, str], str]:
        return dict(zip(zip(pooled.groups["level"], pooled.groups["group"]), pooled.groups["shape"]))

    seen, now = kinds(honest), kinds(final)
    out: dict[tuple[str, str], str] = {}
    for key in final.coefs:
        if key not in honest.coefs:
            continue
        if key in final.detected:
            out[key] = now.get(key) or "harmonic"
        elif seen.get(key) == "classical" and now.get(key) == "classical":
            out[key] = "classical"
    return out


def seasonal_segments(flags: np.ndarray, min_size: int = 50) -> list[np.ndarray]:
    """Row sets for a per-segment selection: seasonal and non-seasonal series apart when both are big enough."""
    on, off = np.flatnonzero(flags), np.flatnonzero(~flags)
    if len(on) >= min_size and len(off) >= min_size:
        return [on, off]
    return [np.arange(len(flags))]
