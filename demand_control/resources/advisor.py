"""The optional advisor as a resource: the model, the OpenAI-compatible server and its key, bound from the
environment (DEMAND_CONTROL_ADVISOR_MODEL, _BASE_URL, _API_KEY or _API_KEY_FILE). No model: off."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from demand_control.services.advisor.settings import AdvisorSettings, advisor_settings


class AdvisorResource(dg.ConfigurableResource):
    """Which model advises on cases, and where it runs. Empty model: the advisor is off."""

    model: str = Field(default="", description="Model name (e.g. llama3.1:8b on Ollama); empty: the advisor is off.")
    base_url: str = Field(default="", description="OpenAI-compatible chat-completions server, e.g. http://127.0.0.1:11434/v1; empty: the provider's default.")
    api_key: str = Field(default="", description="The server's key; empty: DEMAND_CONTROL_ADVISOR_API_KEY_FILE, else none (a self-hosted server).")

    def settings(self) -> AdvisorSettings | None:
        """The advisor's settings, None when off; the timeout, case budget, acceptance floor and token prices
        come from their environment variables (services/advisor/settings.py)."""
        return advisor_settings(self.model, self.base_url, self.api_key or None)
