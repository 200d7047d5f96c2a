"""Builder for the remote console server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engines.remote.server import RemoteServer

if TYPE_CHECKING:
    from engines.runtime import Desk, Engine


def build(desk: Desk) -> list[Engine]:
    if not desk.config.remote.enabled:
        return []
    server = RemoteServer(desk, desk.config.remote)
    desk.services["remote"] = server
    return [server]
