"""The control API as a desk engine: uvicorn in the desk's own loop on 127.0.0.1 (``control.port``,
0 = ephemeral). The bound address goes to ``data_dir/control.json`` so ``opdesk kill|rearm|status``
find the running desk; the file is removed when the desk stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn

from engines.control.app import ControlApi
from engines.control.token import ADDRESS_FILE, resolve_token

if TYPE_CHECKING:
    from engines.runtime import Desk, Engine

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the desk owns SIGINT/SIGTERM/SIGUSR1."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


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
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))  # a bind error surfaces here, not as uvicorn's sys.exit
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno,
                f"control API: cannot listen on {self.host}:{self.port}: {exc.strerror} "
                "(set control.port, e.g. OPDESK_CONTROL__PORT=0 for any free port; the CLI finds it in control.json)",
            ) from None
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.api.app,
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="control-api")
        ready = asyncio.create_task(self._server.ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            ready.cancel()
            self._task.result()
            raise RuntimeError("control API stopped during startup")
        tmp = self.address_file.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"url": self.url, "host": self.host, "port": self.port, "pid": os.getpid()})
        )
        tmp.replace(self.address_file)
        log.info("control API listening", extra={"url": self.url, "address_file": str(self.address_file)})

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = None
        self._task = None
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
