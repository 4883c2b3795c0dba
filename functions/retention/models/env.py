"""Settings of the retention functions, read from the environment the template gives them."""

from __future__ import annotations

from pydantic import Field

from shared.settings import BaseSettings


class VacancyApiSettings(BaseSettings):
    RETENTION_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
