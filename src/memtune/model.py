"""The one pydantic base of memtune's models: frozen (values, not objects that change), and unknown keys are
an error (a typo in a policy, facts of another format)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
