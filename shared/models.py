"""The base of every model in the project (inputs, outputs, entities, settings, audit entries, events).

A pydantic model builds its validator and serializer when its class is created, about a millisecond per field.
A handler module imports many models that its first request never touches (error bodies, the other routes'
outputs, entities of paths not taken), so every model defers that build to its first use: the cold start pays
only for the models it uses. Behaviour is unchanged; `model_rebuild()` or first validation completes a model.

A validation error never repeats the input it rejected (`hide_input_in_errors`): its message reaches logs (an
unexpected error is logged with its stack trace), and a request body may hold personal data or secrets.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True, hide_input_in_errors=True)
