"""Client side of the remote console channel (see ``engines.remote.server`` for the protocol).

:class:`RemoteDeskClient` keeps a connection to a desk: it delivers the snapshot and the event
stream as decoded events, detects frame gaps and asks for a fresh snapshot, reconnects with
exponential backoff and jitter after a drop, and sends commands that resolve when acknowledged.
No UI here: the console (``opdesk attach``) and the tests drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import json
import logging
import random
import ssl
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from engines.events import Event, from_dict, load_event_types
from engines.instruments import Instrument

log = logging.getLogger(__name__)


class LinkState(enum.StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    DISCONNECTED = "disconnected"
    REFUSED = "refused"  # the desk refused our token: retrying will not help


class CommandFailed(Exception):
    pass


class RemoteDeskClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        on_snapshot: Callable[[list[Event], dict[str, Any]], None],
        on_events: Callable[[list[Event]], None],
        on_link: Callable[[LinkState, str], None] = lambda state, detail: None,
        backoff_initial: float = 0.25,
        backoff_max: float = 5.0,
        rng: random.Random | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self._token = token
        self.on_snapshot = on_snapshot
        self.on_events = on_events
        self.on_link = on_link
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._rng = rng or random.Random()
        self._ssl = ssl_context
        self.state = LinkState.DISCONNECTED
        self.role = ""
        self.name = ""
        self.desk = ""
        self.instruments: dict[str, Instrument] = {}
        self.bots: list[str] = []
        self.snapshots = 0
        self.gaps = 0
        self.resyncs = 0
        self.connects = 0
        self.last_seq = 0
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._expect_n = 0
        self.connected = asyncio.Event()
        self.unknown_events = 0
        load_event_types()

    def _set_link(self, state: LinkState, detail: str = "") -> None:
        self.state = state
        if state is LinkState.LIVE:
            self.connected.set()
        else:
            self.connected.clear()
        self.on_link(state, detail)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="remote-desk-client")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._ws is not None:
            await self._ws.close()

    async def drop(self) -> None:
        """Close the current connection (as a network failure would); the client reconnects."""
        if self._ws is not None:
            await self._ws.close(code=1001, reason="dropped by client")

    async def _run(self) -> None:
        delay = self.backoff_initial
        while True:
            self._set_link(LinkState.CONNECTING, self.url)
            try:
                async with connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self._token}"},
                    ssl=self._ssl,
                    max_size=2**24,
                    open_timeout=10,
                ) as ws:
                    self._ws = ws
                    self.connects += 1
                    self._expect_n = 1
                    delay = self.backoff_initial
                    await self._read(ws)
                detail = "connection closed by the desk"
            except InvalidStatus as exc:
                if exc.response.status_code == 401:
                    self._set_link(LinkState.REFUSED, "the desk refused this token (401)")
                    self._fail_pending("refused")
                    return
                detail = f"handshake failed: HTTP {exc.response.status_code}"
            except (TimeoutError, OSError, ConnectionClosed) as exc:
                detail = f"{type(exc).__name__}: {exc}"
            self._ws = None
            self._fail_pending("connection lost")
            self._set_link(LinkState.DISCONNECTED, detail)
            await asyncio.sleep(delay * (0.5 + self._rng.random()))
            delay = min(self.backoff_max, delay * 2)

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(CommandFailed(f"not acknowledged: {why}"))

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            n = msg.get("n", 0)
            if n != self._expect_n:
                # A frame went missing: our picture of the desk can't be trusted until re-snapshotted.
                self.gaps += 1
                log.warning("remote frame gap: expected %d, got %d; asking for a snapshot", self._expect_n, n)
                self._expect_n = n + 1
                await ws.send(json.dumps({"op": "snapshot"}))
                continue
            self._expect_n = n + 1
            op = msg["op"]
            if op == "welcome":
                self.role, self.name, self.desk = msg["role"], msg["name"], msg["desk"]
                self.instruments = {
                    sym: Instrument(sym, Decimal(i["tick_size"]), Decimal(i["lot_size"]), i["min_qty_lots"], i["base"], i["quote"])
                    for sym, i in msg.get("instruments", {}).items()
                }
                self.bots = list(msg.get("bots", []))
            elif op == "snapshot":
                events = self._decode(msg["events"])
                self.last_seq = msg["bus_seq"]
                self.snapshots += 1
                self.on_snapshot(events, msg.get("status") or {})
                if self.state is not LinkState.LIVE:
                    self._set_link(LinkState.LIVE, self.url)
            elif op == "events":
                events = self._decode(
                    [e for e in msg["events"] if not (self.snapshots and e["seq"] <= self.last_seq)]
                )  # events at or before the snapshot's bus_seq are already reflected in it
                if events:
                    self.last_seq = max(self.last_seq, events[-1].seq)
                    self.on_events(events)
            elif op == "resync":
                self.resyncs += 1
                log.warning("desk asked us to resync: %s", msg.get("reason"))
            elif op == "ack":
                fut = self._pending.pop(str(msg.get("id")), None)
                if fut is not None and not fut.done():
                    if msg.get("ok"):
                        fut.set_result(msg.get("result"))
                    else:
                        fut.set_exception(CommandFailed(msg.get("error") or "refused"))

    def _decode(self, items: list[dict[str, Any]]) -> list[Event]:
        out = []
        for item in items:
            try:
                out.append(from_dict(item))
            except (ValueError, TypeError, KeyError) as exc:
                # A newer desk may publish events this console does not know: skip, don't die.
                self.unknown_events += 1
                log.warning("skipping undecodable remote event %s: %s", item.get("event"), exc)
        return out

    async def command(self, action: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
        """Send a command; returns the desk's result, or raises :class:`CommandFailed` with its reason."""
        ws = self._ws
        if ws is None or self.state is not LinkState.LIVE:
            raise CommandFailed(f"not connected to the desk ({self.state.value})")
        cid = str(next(self._ids))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        await ws.send(json.dumps({"op": "command", "id": cid, "action": action, "params": params or {}}))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._pending.pop(cid, None)
            raise CommandFailed(f"{action}: no acknowledgement within {timeout:g} s") from None
