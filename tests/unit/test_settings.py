"""load_settings: built from the environment, cached per environment, failing loudly and by name."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from functions.platform.models.env import AuditedApiSettings, HealthSettings
from shared.errors import ConfigurationError
from shared.settings import BaseSettings, load_settings

BASE_ENV = {"POWERTOOLS_SERVICE_NAME": "ats-compliance", "STAGE": "test"}


class ExampleSettings(BaseSettings):
    """Settings of an example function: the audit trail and the event bus."""

    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean, fully configured environment for ExampleSettings."""
    for name in ("POWERTOOLS_SERVICE_NAME", "STAGE", "LOG_LEVEL", "AUDIT_TABLE_NAME", "EVENT_BUS_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**BASE_ENV, "AUDIT_TABLE_NAME": "audit-table", "EVENT_BUS_NAME": "ats-bus"}.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_settings_are_read_from_the_environment(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(ExampleSettings)

    assert isinstance(settings, ExampleSettings)
    assert settings.POWERTOOLS_SERVICE_NAME == "ats-compliance"
    assert settings.STAGE == "test"
    assert settings.AUDIT_TABLE_NAME == "audit-table"
    assert settings.EVENT_BUS_NAME == "ats-bus"
    assert settings.LOG_LEVEL == "INFO"


def test_log_level_can_be_set(env: pytest.MonkeyPatch) -> None:
    env.setenv("LOG_LEVEL", "DEBUG")

    assert load_settings(ExampleSettings).LOG_LEVEL == "DEBUG"


def test_unrelated_variables_are_ignored(env: pytest.MonkeyPatch) -> None:
    env.setenv("SOMETHING_ELSE", "x")

    assert not hasattr(load_settings(ExampleSettings), "SOMETHING_ELSE")


def test_settings_are_frozen(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(ExampleSettings)

    with pytest.raises(ValidationError):
        settings.STAGE = "prod"  # type: ignore[misc]


def test_the_same_environment_gives_the_cached_object(env: pytest.MonkeyPatch) -> None:
    assert load_settings(ExampleSettings) is load_settings(ExampleSettings)


def test_a_changed_environment_is_read_again(env: pytest.MonkeyPatch) -> None:
    first = load_settings(ExampleSettings)
    env.setenv("EVENT_BUS_NAME", "other-bus")

    assert load_settings(ExampleSettings).EVENT_BUS_NAME == "other-bus"
    assert first.EVENT_BUS_NAME == "ats-bus"


@pytest.mark.parametrize("missing", ["POWERTOOLS_SERVICE_NAME", "STAGE", "AUDIT_TABLE_NAME", "EVENT_BUS_NAME"])
def test_a_missing_variable_is_named(env: pytest.MonkeyPatch, missing: str) -> None:
    env.delenv(missing)

    with pytest.raises(ConfigurationError) as raised:
        load_settings(ExampleSettings)

    assert missing in raised.value.message
    assert "ExampleSettings" in raised.value.message
    assert raised.value.status == 500


@pytest.mark.parametrize(
    ("name", "value"),
    [("AUDIT_TABLE_NAME", "ab"), ("STAGE", ""), ("EVENT_BUS_NAME", ""), ("LOG_LEVEL", "TRACE")],
)
def test_an_invalid_variable_is_named(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)

    with pytest.raises(ConfigurationError) as raised:
        load_settings(ExampleSettings)

    assert f"{name}:" in raised.value.message


def test_every_problem_is_reported_at_once(env: pytest.MonkeyPatch) -> None:
    env.delenv("AUDIT_TABLE_NAME")
    env.delenv("EVENT_BUS_NAME")

    with pytest.raises(ConfigurationError) as raised:
        load_settings(ExampleSettings)

    assert "AUDIT_TABLE_NAME" in raised.value.message
    assert "EVENT_BUS_NAME" in raised.value.message


def test_base_settings_need_only_the_base_variables(env: pytest.MonkeyPatch) -> None:
    env.delenv("AUDIT_TABLE_NAME")

    assert load_settings(BaseSettings).STAGE == "test"


def test_platform_function_settings(env: pytest.MonkeyPatch) -> None:
    env.setenv("PLATFORM_TABLE_NAME", "platform-table")
    env.setenv("SERVICE_VERSION", "1.2.3")
    env.setenv("HEALTH_STALE_AFTER_SECONDS", "900")

    health = load_settings(HealthSettings)

    assert (health.PLATFORM_TABLE_NAME, health.SERVICE_VERSION, health.HEALTH_STALE_AFTER_SECONDS) == (
        "platform-table",
        "1.2.3",
        900,
    )
    assert load_settings(AuditedApiSettings).AUDIT_TABLE_NAME == "audit-table"


@pytest.mark.parametrize("missing", ["PLATFORM_TABLE_NAME", "HEALTH_STALE_AFTER_SECONDS"])
def test_health_settings_have_no_silent_default(env: pytest.MonkeyPatch, missing: str) -> None:
    env.setenv("PLATFORM_TABLE_NAME", "platform-table")
    env.setenv("SERVICE_VERSION", "1.2.3")
    env.setenv("HEALTH_STALE_AFTER_SECONDS", "900")
    env.delenv(missing)

    with pytest.raises(ConfigurationError, match=missing):
        load_settings(HealthSettings)


@pytest.mark.parametrize("value", ["0", "-900", "soon", "15m"])
def test_the_staleness_threshold_is_a_positive_number_of_seconds(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("PLATFORM_TABLE_NAME", "platform-table")
    env.setenv("SERVICE_VERSION", "1.2.3")
    env.setenv("HEALTH_STALE_AFTER_SECONDS", value)

    with pytest.raises(ConfigurationError, match="HEALTH_STALE_AFTER_SECONDS"):
        load_settings(HealthSettings)
