"""The advisor's configuration from the environment: off when no model is named, a key from a secret file,
and one clear line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from demand_control.services.advisor.settings import (
    API_KEY_FILE_ENV,
    BASE_URL_ENV,
    MODEL_ENV,
    NO_KEY,
    TIMEOUT_ENV,
    advisor_settings,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (MODEL_ENV, BASE_URL_ENV, API_KEY_FILE_ENV, TIMEOUT_ENV, "DEMAND_CONTROL_ADVISOR_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_off_without_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    assert advisor_settings() is None
    monkeypatch.setenv(MODEL_ENV, "  ")
    assert advisor_settings() is None


def test_a_self_hosted_model_needs_no_key_and_a_secret_file_gives_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MODEL_ENV, "llama3.1:8b")
    monkeypatch.setenv(BASE_URL_ENV, "http://127.0.0.1:11434/v1")
    settings = advisor_settings()
    assert settings is not None and (settings.model, settings.base_url, settings.api_key) == ("llama3.1:8b", "http://127.0.0.1:11434/v1", NO_KEY)
    secret = tmp_path / "key"
    secret.write_text("sk-from-a-secret\n")
    monkeypatch.setenv(API_KEY_FILE_ENV, str(secret))
    assert advisor_settings().api_key == "sk-from-a-secret"  # type: ignore[union-attr]


@pytest.mark.parametrize(("name", "value", "message"), [
    (TIMEOUT_ENV, "soon", "DEMAND_CONTROL_ADVISOR_TIMEOUT_SECONDS must be a number of seconds above 0, got 'soon'"),
    (TIMEOUT_ENV, "0", "DEMAND_CONTROL_ADVISOR_TIMEOUT_SECONDS must be a number of seconds above 0, got 0"),
    ("DEMAND_CONTROL_ADVISOR_MIN_ACCEPTANCE", "2", "DEMAND_CONTROL_ADVISOR_MIN_ACCEPTANCE must be a share between 0 and 1, got 2"),
    (API_KEY_FILE_ENV, "/nonexistent/key", "DEMAND_CONTROL_ADVISOR_API_KEY_FILE='/nonexistent/key' cannot be read: No such file or directory"),
])
def test_a_bad_value_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(MODEL_ENV, "m")
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as caught:
        advisor_settings()
    assert str(caught.value) == message
