"""The answer to a recorded message (the recording route's only response model, apart so it loads alone)."""

from __future__ import annotations

from pydantic import Field

from shared.models import Model


class RecordReceipt(Model):
    accepted: int = Field(description="Messages queued for recording")
    message_ids: list[str] = Field(description="The internal id of each, in the order given")
