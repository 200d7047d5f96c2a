"""The control API as a desk engine: uvicorn in the desk's own loop on 127.0.0.1 (``control.port``,
0 = ephemeral). The bound address goes to ``data_dir/control.json`` so ``opdesk kill|rearm|status``
find the running desk; the file is removed when the desk stops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import TYPE_CHECKING, Any

from engines.control.app import ControlApi
from engines.control.token import ADDRESS_FILE, resolve_token
from engines.httpserver import InLoopHttpServer

if TYPE_CHECKING:
    from engines.runtime import Desk, Engine

log = logging.getLogger(__name__)


class ControlServer:
    name = "control"

    def __init__(self, desk: Desk) -> None:
        cfg = desk.config.control
        self.desk = desk
        self.host = cfg.host
        self.port = cfg.port
        self.token = resolve_token(cfg.token, desk.data_dir)
        self.api = ControlApi(desk, self.token)
        self.address_file = desk.data_dir / ADDRESS_FILE
        self._http = InLoopHttpServer(self.api.app, host=self.host, port=self.port, name="control-api")

    @property
    def url(self) -> str:
        return self._http.url

    async def start(self) -> None:
        try:
            await self._http.start()
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"control API: cannot listen on {self.host}:{self.port}: {exc.strerror} "
                "(set control.port, e.g. OPDESK_CONTROL__PORT=0 for any free port; the CLI finds it in control.json)",
            ) from None
        self.port = self._http.port
        tmp = self.address_file.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"url": self.url, "host": self.host, "port": self.port, "pid": os.getpid()})
        )
        tmp.replace(self.address_file)
        log.info("control API listening", extra={"url": self.url, "address_file": str(self.address_file)})

    async def stop(self) -> None:
        await self._http.stop()
        with contextlib.suppress(FileNotFoundError):
            if json.loads(self.address_file.read_text()).get("pid") == os.getpid():
                self.address_file.unlink()

    def status(self) -> dict[str, Any]:
        return {"url": self.url, "requests": self.api.requests, "unauthorized": self.api.unauthorized}


def build(desk: Desk) -> list[Engine]:
    if not desk.config.control.enabled:
        return []
    server = ControlServer(desk)
    desk.services["control"] = server
    return [server]
