from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from engines.configbase import Section


class RemoteToken(Section):
    """A named token for remote consoles. ``viewer`` may watch; ``operator`` may also act."""

    name: str
    role: Literal["viewer", "operator"] = "viewer"
    token: SecretStr


class RemoteConfig(Section):
    """The desk's bus served over WebSocket for remote consoles (``opdesk attach``)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8766, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Tokens belong in the secrets file or environment. With none configured, the desk generates an
    #: operator and a viewer token into ``data_dir/remote-tokens.json`` (mode 0600) at start.
    tokens: list[RemoteToken] = []
    snapshot_history: int = Field(default=500, ge=0, description="recent lossless events sent with a snapshot")
    client_capacity: int = Field(default=5_000, ge=10, description="lossless events buffered per client")
    web_port: int = Field(default=8767, ge=0, le=65535, description="port of `opdesk web`")
