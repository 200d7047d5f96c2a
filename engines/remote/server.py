"""The desk's bus served over WebSocket, for remote consoles.

Protocol (JSON text frames; every server frame carries ``n``, a per-connection frame counter that
goes up by one, so a client that sees a jump knows it missed something and asks for a snapshot):

* handshake: ``Authorization: Bearer <token>``; a missing or unknown token is refused with HTTP 401.
* server → client: ``welcome`` (desk, role, token name), ``snapshot`` (``bus_seq``, the latest state
  events and recent history, the desk status), ``events`` (a batch in publish order, each in its JSON
  form), ``resync`` (the client fell behind; a snapshot follows), ``ack`` (answer to a command).
* client → server: ``{"op": "command", "id": …, "action": …, "params": {…}}`` (see
  ``engines.commands``; viewers may only run ``status``), ``{"op": "snapshot"}`` (after a gap).

A slow client never slows the desk: each client reads through its own bus queue, conflated for
market data and bounded for lossless events; a client whose queue overflows is cut off from that
queue, told (``resync``) and re-snapshotted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import ssl
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from engines import commands
from engines.bus import EventQueue, QueueCutOff
from engines.events import EngineState, EngineStatusChanged, Event, jsonable, to_dict
from engines.logs import register_secret
from engines.remote.config import RemoteConfig

if TYPE_CHECKING:
    from engines.runtime import Desk

log = logging.getLogger(__name__)

#: Lossless event types that are nonetheless state (latest per key is what a snapshot needs).
STATEFUL = ("TradingStateChanged", "FixSessionState", "EngineStatusChanged", "KillProgress", "MMOrderState")
#: Events that make up an order's life; the snapshot carries them for every order still open.
ORDER_LIFECYCLE = ("OrderAccepted", "OrderReplaced", "Fill", "OrderCanceled")


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str  # "viewer" | "operator"


class StateCache:
    """What a newly attached console needs: the latest state events, the lifecycle of every open order,
    and some recent history."""

    def __init__(self, history: int) -> None:
        self.latest: dict[tuple[str, Any], Event] = {}
        self.history: deque[Event] = deque(maxlen=history)
        self.open_orders: dict[tuple[str, str, int], list[Event]] = {}

    def __call__(self, event: Event) -> None:
        cls = type(event)
        name = cls.__name__
        if cls.CONFLATE or name in STATEFUL:
            self.latest[(name, event.key())] = event
            if name == "MMOrderState" and getattr(event, "state", "") in ("filled", "canceled", "rejected"):
                self.latest.pop((name, event.key()), None)  # closed orders are history, not state
            return
        if name in ORDER_LIFECYCLE:
            self._order(name, event)
        self.history.append(event)

    def _order(self, name: str, event: Any) -> None:
        key = (event.venue, event.symbol, event.order_id)
        if name == "OrderAccepted":
            self.open_orders[key] = [event]
            return
        lifecycle = self.open_orders.get(key)
        if lifecycle is None:
            return
        if name == "OrderCanceled" or (name == "Fill" and event.leaves_qty == 0):
            del self.open_orders[key]
        else:
            lifecycle.append(event)

    def snapshot(self) -> list[dict[str, Any]]:
        events = {e.seq: e for e in self.latest.values()}
        for lifecycle in self.open_orders.values():
            events.update((e.seq, e) for e in lifecycle)
        events.update((e.seq, e) for e in self.history)
        return [to_dict(events[seq]) for seq in sorted(events)]


class RemoteServer:
    name = "remote"

    def __init__(self, desk: Desk, config: RemoteConfig) -> None:
        self.desk = desk
        self.config = config
        self.cache = StateCache(config.snapshot_history)
        self.tokens: dict[str, Principal] = {}
        self._server: Server | None = None
        self.port: int | None = None
        self.clients: set[ServerConnection] = set()
        self.resyncs = 0
        self.tokens_file = desk.data_dir / "remote-tokens.json"
        # Subscribed when built, before any engine starts, so the snapshot knows every engine's state.
        self._sub = desk.bus.subscribe(Event, self.cache)

    # --- tokens -------------------------------------------------------------------------------------
    def _load_tokens(self) -> list[dict[str, str]]:
        generated: list[dict[str, str]] = []
        for t in self.config.tokens:
            value = t.token.get_secret_value()
            register_secret(value)
            self.tokens[value] = Principal(t.name, t.role)
        if not self.tokens:
            for name, role in (("local-operator", "operator"), ("local-viewer", "viewer")):
                value = secrets.token_urlsafe(24)
                register_secret(value)
                self.tokens[value] = Principal(name, role)
                generated.append({"name": name, "role": role, "token": value})
        return generated

    def _authenticate(self, header: str | None) -> Principal | None:
        if not header or not header.startswith("Bearer "):
            return None
        offered = header[7:].strip()
        for value, principal in self.tokens.items():
            if hmac.compare_digest(value.encode(), offered.encode()):
                return principal
        return None

    def _write_tokens_file(self, generated: list[dict[str, str]]) -> None:
        scheme = "wss" if self.config.tls_cert else "ws"
        data = {"url": f"{scheme}://{self.config.host}:{self.port}", "tokens": generated}
        tmp = self.tokens_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.tokens_file)

    # --- engine -------------------------------------------------------------------------------------
    async def start(self) -> None:
        generated = self._load_tokens()
        ssl_ctx = None
        if self.config.tls_cert:
            ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_ctx.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        try:
            self._server = await serve(
                self._handle,
                self.config.host,
                self.config.port,
                process_request=self._process_request,
                ssl=ssl_ctx,
                max_size=2**20,
            )
        except OSError as exc:
            # Another desk may hold the port; the desk still runs, only remote attach is unavailable.
            log.error("remote console server not started on %s:%s: %s", self.config.host, self.config.port, exc)
            self.desk.bus.publish(EngineStatusChanged(engine=self.name, state=EngineState.DEGRADED, detail=str(exc)))
            return
        self.port = self._server.sockets[0].getsockname()[1] if self._server.sockets else None
        self._write_tokens_file(generated)
        log.info("remote console server on %s:%s", self.config.host, self.port, extra={"tokens_file": str(self.tokens_file)})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        self._sub.cancel()
        with contextlib.suppress(FileNotFoundError):
            self.tokens_file.unlink()

    def status(self) -> dict[str, Any]:
        return {"port": self.port, "clients": len(self.clients), "resyncs": self.resyncs}

    # --- connections --------------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        principal = self._authenticate(request.headers.get("Authorization"))
        if principal is None:
            log.warning("remote console refused: missing or unknown token from %s", connection.remote_address)
            return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or unknown token\n")
        connection.principal = principal  # type: ignore[attr-defined]
        return None

    def _queue(self, principal: Principal) -> EventQueue:
        cap = self.config.client_capacity
        # hard_limit == capacity: a lagging client is cut off and re-snapshotted at once rather than
        # holding back producers that wait on bus back-pressure.
        return self.desk.bus.queue((Event,), policy="auto", name=f"remote:{principal.name}", capacity=cap, hard_limit=cap)

    async def _handle(self, ws: ServerConnection) -> None:
        principal: Principal = ws.principal  # type: ignore[attr-defined]
        self.clients.add(ws)
        frame = {"n": 0}
        send_lock = asyncio.Lock()

        async def send(payload: dict[str, Any]) -> None:
            async with send_lock:
                frame["n"] += 1
                payload["n"] = frame["n"]
                await ws.send(json.dumps(payload, separators=(",", ":"), default=str))

        state: dict[str, Any] = {"queue": self._queue(principal)}

        async def snapshot() -> None:
            await send(
                {
                    "op": "snapshot",
                    "bus_seq": self.desk.bus.seq,
                    "events": self.cache.snapshot(),
                    "status": jsonable(self.desk.status()),
                }
            )

        async def pump() -> None:
            while True:
                try:
                    batch = await state["queue"].get_batch(limit=2000)
                except QueueCutOff:
                    self.resyncs += 1
                    state["queue"].close()
                    state["queue"] = self._queue(principal)
                    await send({"op": "resync", "reason": "client fell behind: re-snapshot"})
                    await snapshot()
                    continue
                await send({"op": "events", "events": [to_dict(e) for e in batch]})

        log.info("remote console attached: %s (%s)", principal.name, principal.role)
        await send(
            {
                "op": "welcome",
                "desk": self.desk.config.desk.name,
                "role": principal.role,
                "name": principal.name,
                "instruments": {
                    sym: {
                        "tick_size": str(i.tick_size),
                        "lot_size": str(i.lot_size),
                        "min_qty_lots": i.min_qty_lots,
                        "base": i.base,
                        "quote": i.quote,
                    }
                    for sym, i in self.desk.instruments.items()
                },
                "bots": [b.name for b in self.desk.config.mm] + [g.name for g in self.desk.config.grid],
            }
        )
        await snapshot()
        pump_task = asyncio.create_task(pump())
        try:
            async for raw in ws:
                await self._on_message(raw, principal, send, snapshot, state)
        except ConnectionClosed:
            pass
        finally:
            pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await pump_task
            state["queue"].close()
            self.clients.discard(ws)
            log.info("remote console detached: %s", principal.name)

    async def _on_message(self, raw: Any, principal: Principal, send: Any, snapshot: Any, state: dict[str, Any]) -> None:
        try:
            msg = json.loads(raw)
            op = msg["op"]
        except (ValueError, KeyError, TypeError):
            await send({"op": "ack", "id": None, "ok": False, "error": "malformed message: expected JSON with 'op'"})
            return
        if op == "snapshot":
            # Fresh queue first, then the snapshot: nothing published in between is lost.
            state["queue"].close()
            state["queue"] = self._queue(principal)
            await snapshot()
            return
        if op != "command":
            await send({"op": "ack", "id": msg.get("id"), "ok": False, "error": f"unknown op {op!r}"})
            return
        action = msg.get("action")
        params = msg.get("params") or {}
        if action in commands.MUTATING and principal.role != "operator":
            log.warning("remote %s refused for %s (role %s)", action, principal.name, principal.role)
            await send(
                {
                    "op": "ack",
                    "id": msg.get("id"),
                    "ok": False,
                    "error": f"forbidden: token {principal.name!r} is a {principal.role}; {action!r} needs an operator token",
                }
            )
            return
        try:
            result = await commands.execute(self.desk, str(action), params, source="remote", actor=principal.name)
        except commands.CommandError as exc:
            await send({"op": "ack", "id": msg.get("id"), "ok": False, "error": str(exc)})
            return
        except Exception as exc:  # an engine failed: the operator must hear it, the server goes on
            log.exception("remote command %s failed", action)
            await send({"op": "ack", "id": msg.get("id"), "ok": False, "error": f"{type(exc).__name__}: {exc}"})
            return
        await send({"op": "ack", "id": msg.get("id"), "ok": True, "result": result})


def read_tokens_file(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / "remote-tokens.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
