"""Every function is deployed with every setting its handler module requires: the settings models a handler
module uses (subclasses of shared.settings.BaseSettings) name their environment variables, and a required one
missing from the function's environment would be a ConfigurationError (500) on its first call."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

from shared.settings import BaseSettings
from tests.infra.conftest import Synth


def _settings_models(module: ModuleType) -> list[type[BaseSettings]]:
    """The settings models a handler module holds (it loads them with shared.settings.load_settings), and those of
    the handler modules it imports whole (a router it includes, e.g. `me` includes `deprovision`'s route)."""
    included = [
        value
        for value in vars(module).values()
        if inspect.ismodule(value) and value.__name__.startswith("functions.") and ".handlers." in value.__name__
    ]
    return [
        value
        for source in (module, *included)
        for value in vars(source).values()
        if inspect.isclass(value) and issubclass(value, BaseSettings) and value is not BaseSettings
    ]


def test_each_function_has_the_settings_its_handler_requires(synth: Synth) -> None:
    missing: dict[str, list[str]] = {}
    checked = 0
    for logical_id, resource in synth.our_functions().items():
        props = resource["Properties"]
        module = importlib.import_module(props["Handler"].rpartition(".")[0])
        environment = set((props.get("Environment") or {}).get("Variables", {}))
        required = {
            field
            for model in _settings_models(module)
            for field, info in model.model_fields.items()
            if info.is_required()
        }
        checked += bool(required)
        if required - environment:
            missing[logical_id] = sorted(required - environment)
    assert checked >= 4, "the check found the settings of at least the platform and retention handlers"
    assert not missing, f"functions deployed without settings their handlers require: {missing}"


@pytest.mark.parametrize("field", ["STAGE", "POWERTOOLS_SERVICE_NAME", "PYDANTIC_DISABLE_PLUGINS"])
def test_the_base_settings_come_from_the_function_factory(synth: Synth, field: str) -> None:
    for logical_id, resource in synth.our_functions().items():
        assert field in resource["Properties"]["Environment"]["Variables"], logical_id
