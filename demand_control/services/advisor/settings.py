"""The advisor's configuration, read from the environment in one place. Unset model: the advisor is off and
nothing it would do happens (no call, no row, no message)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from demand_control.infra.settings import env_number

MODEL_ENV = "DEMAND_CONTROL_ADVISOR_MODEL"  # e.g. llama3.1:8b on Ollama, gpt-4o-mini on a hosted provider
BASE_URL_ENV = "DEMAND_CONTROL_ADVISOR_BASE_URL"  # an OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1
API_KEY_ENV = "DEMAND_CONTROL_ADVISOR_API_KEY"
API_KEY_FILE_ENV = "DEMAND_CONTROL_ADVISOR_API_KEY_FILE"  # a file holding the key (a mounted secret)
TIMEOUT_ENV = "DEMAND_CONTROL_ADVISOR_TIMEOUT_SECONDS"
MAX_CASES_ENV = "DEMAND_CONTROL_ADVISOR_MAX_CASES"
MIN_ACCEPTANCE_ENV = "DEMAND_CONTROL_ADVISOR_MIN_ACCEPTANCE"
COST_INPUT_ENV = "DEMAND_CONTROL_ADVISOR_COST_PER_1K_INPUT"
COST_OUTPUT_ENV = "DEMAND_CONTROL_ADVISOR_COST_PER_1K_OUTPUT"
# A self-hosted server needs no key, but the OpenAI client insists on one.
NO_KEY = "not-needed"


@dataclass(frozen=True)
class AdvisorSettings:
    """How to reach the model and when to stop trusting it."""

    model: str
    base_url: str | None = None
    api_key: str = NO_KEY
    timeout_seconds: float = 20.0
    # Cases asked per plan, most valuable first: a bound on cost and on the plan's duration.
    max_cases: int = 20
    # Below this share of used answers over the recent calls the advisor steps aside (deterministic path).
    min_acceptance: float = 0.5
    # Calls the acceptance share is measured over (and the least number before it can trip).
    acceptance_window: int = 20
    cost_per_1k_input: float = 0.0
    cost_per_1k_output: float = 0.0

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return input_tokens / 1000 * self.cost_per_1k_input + output_tokens / 1000 * self.cost_per_1k_output


def _api_key() -> str:
    value = os.environ.get(API_KEY_ENV)
    if value:
        return value
    path = os.environ.get(API_KEY_FILE_ENV)
    if not path:
        return NO_KEY
    try:
        key = Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"{API_KEY_FILE_ENV}={path!r} cannot be read: {exc.strerror}") from exc
    if not key:
        raise ValueError(f"{API_KEY_FILE_ENV}={path!r} is empty")
    return key


def advisor_settings(model: str | None = None, base_url: str | None = None, api_key: str | None = None) -> AdvisorSettings | None:
    """The advisor as the environment configures it (`model`, `base_url`, `api_key` given: as a resource bound
    them); None (off) when no model is named."""
    model = (os.environ.get(MODEL_ENV, "") if model is None else model).strip()
    if not model:
        return None
    timeout = env_number(TIMEOUT_ENV, 20.0, float, "a number of seconds above 0")
    max_cases = int(env_number(MAX_CASES_ENV, 20, int, "a whole number of cases"))
    min_acceptance = env_number(MIN_ACCEPTANCE_ENV, 0.5, float, "a share between 0 and 1")
    if timeout <= 0:
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds above 0, got {timeout:g}")
    if max_cases < 0:
        raise ValueError(f"{MAX_CASES_ENV} must be a whole number of cases, 0 or more, got {max_cases}")
    if not 0 <= min_acceptance <= 1:
        raise ValueError(f"{MIN_ACCEPTANCE_ENV} must be a share between 0 and 1, got {min_acceptance:g}")
    return AdvisorSettings(
        model=model, base_url=(os.environ.get(BASE_URL_ENV) if base_url is None else base_url) or None,
        api_key=api_key or _api_key(), timeout_seconds=timeout,
        max_cases=max_cases, min_acceptance=min_acceptance,
        cost_per_1k_input=env_number(COST_INPUT_ENV, 0.0, float, "a price per 1,000 tokens"),
        cost_per_1k_output=env_number(COST_OUTPUT_ENV, 0.0, float, "a price per 1,000 tokens"),
    )
