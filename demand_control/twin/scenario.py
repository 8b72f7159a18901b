"""The scenario file of the digital twin: what distributor to simulate, for how long, what goes wrong and when,
and how fast the planners answer. YAML, validated at load; a bad file fails with one `ScenarioError` that
names the file, the field (`disruptions[2].days`), its line and the bad value.
"""

from __future__ import annotations

import datetime as dt
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from demand_control.planning.policy.loading import yaml_line

DEFAULT_SCENARIO = "default.yaml"
# A fixed Monday, so that a scenario without `as_of` gives the same run on any day it is run.
DEFAULT_AS_OF = dt.date(2026, 11, 23)

Week = Annotated[int, Field(ge=0)]
Share = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1)]


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and every bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SupplierDelay(_Strict):
    """On the Wednesday of `start_week` the supplier announces that `share` of its open purchase lines ship
    `days` days later than it had said."""

    type: Literal["supplier_delay"]
    supplier: Name
    start_week: Week
    days: Annotated[int, Field(ge=1, le=365)]
    share: Share


class SupplierOutage(_Strict):
    """From the Wednesday of `start_week`, for `weeks` weeks, the supplier ships nothing; what falls due in
    the outage, or is ordered during it, ships after it. Announced on its first day."""

    type: Literal["supplier_outage"]
    supplier: Name
    start_week: Week
    weeks: Annotated[int, Field(ge=1, le=52)]


class Shortfall(_Strict):
    """On the Wednesday of `start_week` the supplier announces it will deliver only 1 - `share` of every
    line it has open."""

    type: Literal["shortfall"]
    supplier: Name
    start_week: Week
    share: Share


class DemandSpike(_Strict):
    """Customer demand due in `weeks` weeks from `start_week` is `factor` times the usual, for one category
    or one SKU (at every DC). It becomes known with the first order of the surge."""

    type: Literal["demand_spike"]
    category: Name | None = None
    sku: Name | None = None
    start_week: Week
    weeks: Annotated[int, Field(ge=1, le=52)]
    factor: Annotated[float, Field(gt=0, le=50, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _one_subject(self) -> DemandSpike:
        if (self.category is None) == (self.sku is None):
            raise ValueError("a demand_spike names exactly one of category or sku")
        return self


class NewSku(_Strict):
    """`count` new SKUs of a category are listed at every DC on the Monday of `start_week`, with no stock
    and no history; customers order them from then on."""

    type: Literal["new_sku"]
    category: Name
    start_week: Week
    count: Annotated[int, Field(ge=1, le=1000)]


Disruption = Annotated[Union[SupplierDelay, SupplierOutage, Shortfall, DemandSpike, NewSku], Field(discriminator="type")]
SUPPLIER_DISRUPTIONS = ("supplier_delay", "supplier_outage", "shortfall")


class Planner(_Strict):
    """The people who decide what the policy does not: each owner team decides at most
    `capacity_per_team_per_day` items a working day, none sooner than `response_hours` after it was
    presented."""

    capacity_per_team_per_day: Annotated[int, Field(ge=0, le=10_000)]
    response_hours: Annotated[float, Field(ge=0, le=24 * 30, allow_inf_nan=False)]


class Scenario(_Strict):
    seed: int
    weeks: Annotated[int, Field(ge=1, le=260)]
    skus: Annotated[int, Field(ge=1, le=100_000)]
    locations: Annotated[int, Field(ge=1, le=50)]
    history_weeks: Annotated[int, Field(ge=8, le=520)]
    as_of: dt.date = DEFAULT_AS_OF
    disruptions: list[Disruption] = Field(default_factory=list)
    planner: Planner

    _source: str = PrivateAttr(default="<in memory>")

    @model_validator(mode="after")
    def _within_run(self) -> Scenario:
        for i, d in enumerate(self.disruptions):
            if d.start_week >= self.weeks:
                raise ValueError(f"disruptions[{i}].start_week: {d.start_week} is not inside the {self.weeks} simulated weeks (0..{self.weeks - 1})")
        return self

    @property
    def source(self) -> str:
        return self._source


def _loc(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("supplier_delay", "supplier_outage", "shortfall", "demand_spike", "new_sku"):
            continue  # the union's tag, not a field the author wrote
        else:
            path += ("." if path else "") + str(part)
    return path


def _message(source: str, error: ValidationError, text: str) -> str:
    lines = []
    for err in error.errors(include_url=False):
        loc = err["loc"]
        where = _loc(loc) or "(top level)"
        line = yaml_line(text, loc)
        where += f" at line {line}" if line else ""
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown key (a typo? not a field here), value {err['input']!r}")
        elif err["type"] == "missing":
            lines.append(f"  {where}: required, missing")
        elif err["type"] == "union_tag_invalid":
            lines.append(f"  {where}: {msg}")
        elif isinstance(err["input"], (dict, list)):
            lines.append(f"  {where}: {msg}")
        else:
            lines.append(f"  {where}: {msg} (got {err['input']!r})")
    return f"invalid scenario {source}: {len(lines)} error{'s' if len(lines) > 1 else ''}\n" + "\n".join(lines)


def parse_scenario(text: str, source: str = "<in memory>") -> Scenario:
    """Validate scenario YAML text; `source` names it in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"invalid YAML in scenario {source}{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario {source} must be a mapping of keys (seed, weeks, skus, ...), got {type(data).__name__}")
    if isinstance(data.get("as_of"), str):
        try:
            data["as_of"] = dt.date.fromisoformat(data["as_of"])
        except ValueError:
            raise ScenarioError(f"invalid scenario {source}: 1 error\n  as_of: must be a date like 2026-11-23 (got {data['as_of']!r})") from None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_message(source, exc, text)) from None
    scenario._source = source
    return scenario


def load_scenario(path: str | Path | None = None) -> Scenario:
    """The scenario at `path`, or the packaged default (`twin/scenarios/default.yaml`)."""
    if path is None:
        resource = files("demand_control.twin").joinpath("scenarios").joinpath(DEFAULT_SCENARIO)
        return parse_scenario(resource.read_text(encoding="utf-8"), str(resource))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"scenario file {path} cannot be read: {exc.strerror or exc}") from None
    return parse_scenario(text, str(path))


def check_against_landscape(scenario: Scenario, suppliers: set[str], categories: set[str], skus: set[str]) -> None:
    """Fail naming the field when a disruption names a supplier, category or SKU the landscape lacks."""
    problems = []
    for i, d in enumerate(scenario.disruptions):
        for field, known in (("supplier", suppliers), ("category", categories), ("sku", skus)):
            value: Any = getattr(d, field, None)
            if value is not None and value not in known:
                sample = ", ".join(sorted(known)[:6])
                problems.append(f"  disruptions[{i}].{field}: {value!r} is not in the landscape (e.g. {sample})")
    if problems:
        raise ScenarioError(f"invalid scenario {scenario.source}: {len(problems)} error{'s' if len(problems) > 1 else ''}\n" + "\n".join(problems))
