"""Base for config sections: unknown keys are errors, so a typo never silently does nothing."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Listen(Section):
    """A listen address. Loopback unless the operator says otherwise; port 0 picks a free port."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
