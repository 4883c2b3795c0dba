"""Settings read from the environment once, validated by pydantic, failing loudly when one is missing."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal, TypeVar

from pydantic import ConfigDict, Field, ValidationError

from shared.errors import ConfigurationError
from shared.models import Model

SettingsT = TypeVar("SettingsT", bound="BaseSettings")


class BaseSettings(Model):
    """Fields are named after their environment variables (upper case); there are no silent defaults."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    POWERTOOLS_SERVICE_NAME: str = Field(min_length=1)
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    STAGE: str = Field(min_length=1)


def load_settings(model: type[SettingsT]) -> SettingsT:
    """Return `model` read from the environment, cached per process; raise ConfigurationError naming what is missing."""
    return _load(model, tuple(sorted(os.environ.items())))  # type: ignore[return-value]


@lru_cache(maxsize=32)
def _load(model: type[BaseSettings], environ: tuple[tuple[str, str], ...]) -> BaseSettings:
    try:
        return model.model_validate(dict(environ))
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigurationError(f"{model.__name__} is not configured: {'; '.join(problems)}") from None
