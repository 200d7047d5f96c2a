"""WebSocket market data for the matching engine (``websockets`` asyncio server).

Protocol (JSON text frames; prices and quantities are decimal strings):

* client → server ``{"op": "subscribe", "symbol": "BTC-USD", "channels": ["bbo", "depth", "trades"]}``
  (``channels`` defaults to all three), ``{"op": "unsubscribe", …}`` and ``{"op": "ping"}``.
* server → client, per (symbol, channel) stream: first a ``snapshot`` carrying ``seq``, then
  ``update`` messages carrying ``first_seq`` and ``seq``. A client applies an update only if
  ``first_seq == last seq + 1``; anything else is a gap, and the remedy is to subscribe again, which
  sends a fresh snapshot.

Sequence numbers count the server's own messages per (symbol, channel): bbo and depth count fan-out
updates, trades count trade prints. A slow client's bbo and depth are conflated to the latest state
(a merged update spans ``first_seq..seq``, so the chain stays contiguous); its trades are queued up
to ``max_backlog`` and past that the client is closed with code 1008 and reason "slow consumer".

The engine never waits for a client: bus handlers only note the latest event (O(1)) and wake the
fan-out task, which runs between engine calls and never awaits a socket. If the engine prints more
than ``max_pending_trades`` trades between two fan-out passes, the oldest are not sent: the trade
``seq`` jumps and clients see the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from engines.bus import Bus, Subscription
from engines.instruments import Instrument
from engines.marketdata import BBO, Depth, Trade

log = logging.getLogger(__name__)

Channel = Literal["bbo", "depth", "trades"]
CHANNELS: tuple[Channel, ...] = ("bbo", "depth", "trades")
SLOW_CONSUMER_CODE = 1008  # policy violation: the client did not keep up
SLOW_CONSUMER_REASON = "slow consumer"


class WsRequest(BaseModel):
    """A client message."""

    model_config = ConfigDict(extra="forbid")

    op: Literal["subscribe", "unsubscribe", "ping"]
    symbol: str = ""
    channels: list[Channel] = list(CHANNELS)


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


@dataclass(slots=True)
class _Msg:
    """One message of a bbo/depth stream, shared by every client until a slow one has to merge it.

    ``data`` is ``(bid_px, bid_qty, ask_px, ask_qty)`` for bbo and ``(bids, asks)`` dicts price → qty
    for depth (an update's qty 0 deletes the level).
    """

    kind: Literal["snapshot", "update"]
    channel: Channel
    symbol: str
    first_seq: int
    seq: int
    data: Any
    text: str | None = None


@dataclass(slots=True)
class _Stream:
    """One client's subscription to one (symbol, channel)."""

    key: tuple[str, Channel]
    gen: int = 0  # bumped on resubscribe so queued items of the old subscription are skipped
    slot: _Msg | None = None  # the pending (possibly merged) bbo/depth message
    queued: bool = False


class _Feed:
    """Server-side state of one symbol: what every subscriber has been sent so far."""

    __slots__ = (
        "bbo",
        "bbo_latest",
        "bbo_seq",
        "depth_asks",
        "depth_bids",
        "depth_latest",
        "depth_seq",
        "inst",
        "pending_trades",
        "recent",
        "subs",
        "symbol",
        "trade_fanned",
        "trade_seq",
    )

    def __init__(self, inst: Instrument, pending_cap: int, recent: int) -> None:
        self.inst = inst
        self.symbol = inst.symbol
        self.subs: dict[Channel, set[_Client]] = {c: set() for c in CHANNELS}
        self.bbo: tuple[int | None, int, int | None, int] = (None, 0, None, 0)
        self.bbo_seq = 0
        self.bbo_latest: BBO | None = None
        self.depth_bids: dict[int, int] = {}
        self.depth_asks: dict[int, int] = {}
        self.depth_seq = 0
        self.depth_latest: Depth | None = None
        self.trade_seq = 0  # assigned as trades are printed (so dropped ones leave a gap)
        self.trade_fanned = 0
        # The latest trades not fanned out yet; they always end at trade_seq (the oldest fall off the
        # left when full), so their seq numbers follow from the length and need not be stored.
        self.pending_trades: deque[Trade] = deque(maxlen=pending_cap)
        self.recent: deque[Trade] = deque(maxlen=recent)


def _fmt_px(inst: Instrument, ticks: int | None) -> str | None:
    return None if ticks is None else f"{inst.price(ticks).normalize():f}"


def _fmt_qty(inst: Instrument, lots: int) -> str:
    return f"{inst.qty(lots).normalize():f}"


def trade_json(inst: Instrument, t: Trade) -> dict[str, Any]:
    return {
        "trade_id": t.trade_id,
        "price": _fmt_px(inst, t.price),
        "qty": _fmt_qty(inst, t.qty),
        "aggressor": t.aggressor.value,
        "ts": t.ts,
    }


def _render(inst: Instrument, m: _Msg) -> str:
    out: dict[str, Any] = {"type": m.kind, "channel": m.channel, "symbol": m.symbol}
    if m.kind == "update":
        out["first_seq"] = m.first_seq
    out["seq"] = m.seq
    if m.channel == "bbo":
        bid_px, bid_qty, ask_px, ask_qty = m.data
        out.update(
            bid_px=_fmt_px(inst, bid_px),
            bid_qty=_fmt_qty(inst, bid_qty),
            ask_px=_fmt_px(inst, ask_px),
            ask_qty=_fmt_qty(inst, ask_qty),
        )
    else:
        bids, asks = m.data
        out["bids"] = [[_fmt_px(inst, p), _fmt_qty(inst, bids[p])] for p in sorted(bids, reverse=True)]
        out["asks"] = [[_fmt_px(inst, p), _fmt_qty(inst, asks[p])] for p in sorted(asks)]
    return _dumps(out)


def _merge(old: _Msg, new: _Msg) -> _Msg:
    """Conflate ``new`` into a pending ``old`` of the same stream (old was not sent yet)."""
    if old.channel == "bbo":
        data = new.data
    elif old.kind == "snapshot":  # a snapshot plus an update is a newer snapshot
        bids, asks = dict(old.data[0]), dict(old.data[1])
        for book, diff in ((bids, new.data[0]), (asks, new.data[1])):
            for px, qty in diff.items():
                if qty:
                    book[px] = qty
                else:
                    book.pop(px, None)
        data = (bids, asks)
    else:  # two level diffs: the later value of each level wins (absolute quantities)
        data = ({**old.data[0], **new.data[0]}, {**old.data[1], **new.data[1]})
    return _Msg(old.kind, old.channel, old.symbol, old.first_seq, new.seq, data)


class _Client:
    __slots__ = ("addr", "backlog", "closing", "items", "server", "streams", "wake", "writer", "ws")

    def __init__(self, server: MarketDataServer, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.addr = ws.remote_address
        self.streams: dict[tuple[str, Channel], _Stream] = {}
        # ordered outbox: a stream key (send its slot) or ("t", key, gen, text) for a lossless message
        self.items: deque[Any] = deque()
        self.backlog = 0  # lossless messages waiting in items
        self.wake = asyncio.Event()
        self.closing = False
        self.writer: asyncio.Task[None] | None = None

    # --- producer side: called synchronously by the fan-out --------------------------------------
    def push_slot(self, st: _Stream, msg: _Msg) -> None:
        st.slot = msg if st.slot is None else _merge(st.slot, msg)
        if not st.queued:
            st.queued = True
            self.items.append(st.key)
            self.wake.set()

    def push_text(self, st: _Stream | None, text: str) -> None:
        """Queue a lossless message of ``st`` (None: a reply to the client, not part of a stream)."""
        if self.closing:
            return
        self.items.append(("t", None, 0, text) if st is None else ("t", st.key, st.gen, text))
        self.backlog += 1
        if self.backlog > self.server.max_backlog:
            self.drop(SLOW_CONSUMER_REASON)
            return
        self.wake.set()

    def drop(self, reason: str) -> None:
        """Disconnect without waiting for the client: never let one client hold the fan-out."""
        if self.closing:
            return
        self.closing = True
        self.items.clear()
        self.backlog = 0
        self.server.slow_disconnects += reason == SLOW_CONSUMER_REASON
        log.warning("ws client %s disconnected: %s", self.addr, reason)
        if self.writer is not None:
            self.writer.cancel()
        self.server._spawn(self.ws.close(SLOW_CONSUMER_CODE, reason))

    # --- consumer side ------------------------------------------------------------------------------
    async def write_loop(self) -> None:
        try:
            await self._write_loop()
        except ConnectionClosed:
            pass

    async def _write_loop(self) -> None:
        ws = self.ws
        items = self.items
        while not self.closing:
            await self.wake.wait()
            self.wake.clear()
            while items and not self.closing:
                item = items.popleft()
                if len(item) == 4:  # ("t", key, gen, text); a stream key is a (symbol, channel) pair
                    self.backlog -= 1
                    if item[1] is not None:
                        st = self.streams.get(item[1])
                        if st is None or st.gen != item[2]:
                            continue
                    await ws.send(item[3])
                else:
                    st = self.streams.get(item)
                    if st is None:
                        continue
                    st.queued = False
                    msg, st.slot = st.slot, None
                    if msg is None:
                        continue
                    if msg.text is None:
                        msg.text = _render(self.server.instruments[msg.symbol], msg)
                    await ws.send(msg.text)


class MarketDataServer:
    """The market-data WebSocket server; an engine of the desk (name ``matching-ws``)."""

    name = "matching-ws"

    def __init__(
        self,
        bus: Bus,
        engine: Any,
        instruments: dict[str, Instrument],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        depth_levels: int = 20,
        max_backlog: int = 10_000,
        max_pending_trades: int = 100_000,
        snapshot_trades: int = 50,
        close_timeout: float = 5.0,
        send_buffer: int | None = None,
    ) -> None:
        self.bus = bus
        self.engine = engine
        self.instruments = instruments
        self.host = host
        self.port = port
        self.depth_levels = depth_levels
        self.max_backlog = max_backlog
        self.close_timeout = close_timeout
        self.send_buffer = send_buffer
        self.snapshot_trades = snapshot_trades
        self._feeds = {s: _Feed(i, max_pending_trades, snapshot_trades) for s, i in instruments.items()}
        self._dirty: set[_Feed] = set()
        self._wake = asyncio.Event()
        self._subs: list[Subscription] = []
        self._server: Server | None = None
        self._fanout: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.clients: set[_Client] = set()
        self.slow_disconnects = 0
        self.trade_gaps = 0
        self.messages = 0

    # --- engine lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._subs = [
            self.bus.subscribe(BBO, self._on_bbo),
            self.bus.subscribe(Depth, self._on_depth),
            self.bus.subscribe(Trade, self._on_trade),
        ]
        self._fanout = asyncio.create_task(self._fanout_loop(), name="matching-ws-fanout")
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            compression=None,  # market data is small and latency-bound; deflate costs CPU per client
            close_timeout=self.close_timeout,
            max_size=64 * 1024,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("matching market data on ws://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        for sub in self._subs:
            sub.cancel()
        self._subs = []
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in [self._fanout, *self._tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._fanout = None

    def status(self) -> dict[str, Any]:
        return {
            "url": f"ws://{self.host}:{self.port}",
            "clients": len(self.clients),
            "messages": self.messages,
            "slow_disconnects": self.slow_disconnects,
            "trade_gaps": self.trade_gaps,
        }

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- bus handlers: O(1), on the engine's call stack ---------------------------------------------
    def _on_bbo(self, ev: BBO) -> None:
        f = self._feeds.get(ev.symbol)
        if f is not None and f.subs["bbo"]:
            f.bbo_latest = ev
            self._dirty.add(f)
            self._wake.set()

    def _on_depth(self, ev: Depth) -> None:
        f = self._feeds.get(ev.symbol)
        if f is not None and f.subs["depth"]:
            f.depth_latest = ev
            self._dirty.add(f)
            self._wake.set()

    def _on_trade(self, ev: Trade) -> None:
        f = self._feeds.get(ev.symbol)
        if f is not None and f.subs["trades"]:
            f.trade_seq += 1
            f.pending_trades.append(ev)  # bounded: the oldest fall off, leaving a gap
            self._dirty.add(f)
            self._wake.set()

    # --- fan-out --------------------------------------------------------------------------------------
    async def _fanout_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                self.fanout()
            except Exception:  # a bug here must not end market data for everyone
                log.exception("ws fan-out failed")

    def fanout(self) -> None:
        """Turn the latest bus state into per-stream messages and queue them to clients (sync)."""
        dirty, self._dirty = self._dirty, set()
        for f in dirty:
            if f.bbo_latest is not None:
                ev, f.bbo_latest = f.bbo_latest, None
                state = (ev.bid_px, ev.bid_qty, ev.ask_px, ev.ask_qty)
                if state != f.bbo:
                    f.bbo = state
                    f.bbo_seq += 1
                    self._publish(f, "bbo", _Msg("update", "bbo", f.symbol, f.bbo_seq, f.bbo_seq, state))
            if f.depth_latest is not None:
                ev2, f.depth_latest = f.depth_latest, None
                bids, asks = dict(ev2.bids), dict(ev2.asks)
                diff = (_diff(f.depth_bids, bids), _diff(f.depth_asks, asks))
                if diff[0] or diff[1]:
                    f.depth_bids, f.depth_asks = bids, asks
                    f.depth_seq += 1
                    self._publish(f, "depth", _Msg("update", "depth", f.symbol, f.depth_seq, f.depth_seq, diff))
            if f.pending_trades:
                self._fan_trades(f)

    def _publish(self, f: _Feed, channel: Channel, msg: _Msg) -> None:
        key = (f.symbol, channel)
        for c in f.subs[channel]:
            st = c.streams.get(key)
            if st is not None and not c.closing:
                c.push_slot(st, msg)
                self.messages += 1

    def _fan_trades(self, f: _Feed) -> None:
        inst = f.inst
        key = (f.symbol, "trades")
        clients = [c for c in f.subs["trades"] if not c.closing]
        pending = f.pending_trades
        seq = f.trade_seq - len(pending)
        gap = seq != f.trade_fanned
        while pending:
            t = pending.popleft()
            seq += 1
            f.trade_fanned = seq
            f.recent.append(t)
            body = {"type": "update", "channel": "trades", "symbol": f.symbol, "first_seq": seq, "seq": seq}
            body.update(trade_json(inst, t))
            text = _dumps(body)
            for c in clients:
                st = c.streams.get(key)
                if st is not None:
                    c.push_text(st, text)
            self.messages += len(clients)
        if gap:
            # Trades fell off the bounded pending queue: re-seed the snapshot ring from the engine,
            # which holds every trade printed so far (all pending ones were just drained).
            self.trade_gaps += 1
            log.warning("ws trades %s: fan-out fell behind, clients will see a gap", f.symbol)
            self._seed_trades(f)

    # --- snapshots --------------------------------------------------------------------------------------
    def _seed(self, f: _Feed, channel: Channel) -> None:
        """First subscriber of a (symbol, channel): take the state from the engine."""
        eng = self.engine
        if channel == "bbo":
            b = eng.bbo(f.symbol)
            f.bbo = (b.bid_px, b.bid_qty, b.ask_px, b.ask_qty)
            f.bbo_latest = None
        elif channel == "depth":
            bids, asks = eng.depth(f.symbol, self.depth_levels)
            f.depth_bids, f.depth_asks = dict(bids), dict(asks)
            f.depth_latest = None
        else:
            f.pending_trades.clear()
            f.trade_fanned = f.trade_seq
            self._seed_trades(f)

    def _seed_trades(self, f: _Feed) -> None:
        f.recent.clear()
        trades = sorted(self.engine.recent_trades(f.symbol, self.snapshot_trades), key=lambda t: t.trade_id)
        f.recent.extend(trades)

    def _snapshot(self, f: _Feed, channel: Channel) -> _Msg | str:
        if channel == "bbo":
            return _Msg("snapshot", "bbo", f.symbol, f.bbo_seq, f.bbo_seq, f.bbo)
        if channel == "depth":
            return _Msg("snapshot", "depth", f.symbol, f.depth_seq, f.depth_seq, (f.depth_bids, f.depth_asks))
        return _dumps(
            {
                "type": "snapshot",
                "channel": "trades",
                "symbol": f.symbol,
                "seq": f.trade_fanned,
                "trades": [trade_json(f.inst, t) for t in f.recent],
            }
        )

    # --- connections ------------------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        if self.send_buffer:
            sock = ws.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        client = _Client(self, ws)
        self.clients.add(client)
        client.writer = asyncio.create_task(client.write_loop(), name=f"ws-writer-{client.addr}")
        try:
            async for raw in ws:
                if client.closing:
                    break
                self._on_message(client, raw)
        except ConnectionClosed:
            pass
        finally:
            self._forget(client)
            if client.writer is not None and not client.writer.done():
                client.writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await client.writer

    def _forget(self, client: _Client) -> None:
        self.clients.discard(client)
        for symbol, channel in client.streams:
            self._feeds[symbol].subs[channel].discard(client)
        client.streams.clear()

    def _on_message(self, client: _Client, raw: str | bytes) -> None:
        try:
            req = WsRequest.model_validate_json(raw)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            fieldname = ".".join(str(p) for p in err["loc"]) or "message"
            self._reply(client, {"type": "error", "field": fieldname, "reason": err["msg"]})
            return
        if req.op == "ping":
            self._reply(client, {"type": "pong"})
            return
        f = self._feeds.get(req.symbol)
        if f is None:
            self._reply(client, {"type": "error", "field": "symbol", "reason": f"unknown symbol {req.symbol!r}"})
            return
        if req.op == "subscribe":
            self.subscribe(client, f, req.channels)
        else:
            for channel in req.channels:
                client.streams.pop((f.symbol, channel), None)
                f.subs[channel].discard(client)

    def subscribe(self, client: _Client, f: _Feed, channels: Iterable[Channel]) -> None:
        # Bring the server's state up to date first, so the snapshot and the next update chain.
        self.fanout()
        for channel in dict.fromkeys(channels):
            if not f.subs[channel]:
                self._seed(f, channel)
            key = (f.symbol, channel)
            st = client.streams.get(key)
            if st is None:
                st = client.streams[key] = _Stream(key)
            else:  # a resubscribe: queued messages of the old subscription are void
                st.gen += 1
            f.subs[channel].add(client)
            snap = self._snapshot(f, channel)
            if isinstance(snap, str):
                st.slot = None
                client.push_text(st, snap)
            else:
                st.slot = None
                client.push_slot(st, snap)

    def _reply(self, client: _Client, body: dict[str, Any]) -> None:
        client.push_text(None, _dumps(body))


def _diff(old: dict[int, int], new: dict[int, int]) -> dict[int, int]:
    """Levels that changed from ``old`` to ``new``; qty 0 means the level went away."""
    out = {px: qty for px, qty in new.items() if old.get(px) != qty}
    for px in old:
        if px not in new:
            out[px] = 0
    return out
