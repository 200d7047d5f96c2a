"""Headless mode: the same desk with no UI. JSON-lines logs, a periodic status line, clean signals.

SIGINT/SIGTERM stop the desk in order and exit 0; a second one forces exit (status 130).
Never imports textual or rich (tests/test_import_hygiene.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from engines.config import DeskConfig
from engines.events import Event, to_json
from engines.runtime import Desk

log = logging.getLogger("opdesk.headless")

#: Hooks other engines add to (e.g. the kill switch binds SIGUSR1): called with the running desk.
SIGNAL_HOOKS: list[Callable[[Desk, asyncio.AbstractEventLoop], None]] = []


async def _record(desk: Desk, out: IO[str]) -> None:
    queue = desk.bus.queue((Event,), policy="lossless", name="recorder", capacity=100_000)
    try:
        while True:
            for ev in await queue.get_batch():
                out.write(to_json(ev) + "\n")
            out.flush()
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop recording, keep the desk
        log.warning("event recording stopped: output closed")
        queue.close()


async def _status(desk: Desk, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        log.info("status", extra={"status": desk.status()})


async def run_headless(config: DeskConfig, *, record: IO[str] | None = None) -> int:
    desk = Desk(config).build()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = {"count": 0}

    def on_signal(signum: int) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            log.warning("second %s: forcing exit", signal.Signals(signum).name)
            os._exit(130)
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    for hook in SIGNAL_HOOKS:
        hook(desk, loop)

    tasks: list[asyncio.Task[None]] = []
    if record is not None:
        tasks.append(asyncio.create_task(_record(desk, record)))
    await desk.start()
    log.info("desk running", extra={"pid": os.getpid(), "data_dir": str(desk.data_dir)})
    tasks.append(asyncio.create_task(_status(desk, config.desk.status_interval)))
    try:
        await stop.wait()
    finally:
        await desk.stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        log.info("desk stopped")
    return 0


def main(config: DeskConfig, record_path: str | None = None) -> int:
    from engines.logs import setup_json_logging

    setup_json_logging(config.logging.level, config.logging.file)
    out: IO[str] | None = None
    if record_path == "-":
        out = sys.stdout
    elif record_path:
        out = Path(record_path).open("a", encoding="utf-8")  # noqa: SIM115 - closed at exit
    return asyncio.run(run_headless(config, record=out))
