"""WebSocket market data over real sockets: the real matching engine publishes on the desk bus, the
server fans out, ``websockets`` clients read."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from engines.config import DeskConfig
from engines.matching.ws import MarketDataServer
from engines.orders import OrderRequest, OrderType, Side, TimeInForce
from engines.runtime import Desk

BUILDERS = ["engines.matching.service:build", "engines.matching.api:build"]
SYM = "BTC-USD"
PX = 130_000  # 65000 in ticks of 0.5


def make_desk(tmp_path) -> Desk:
    cfg = DeskConfig(
        desk={"name": "t", "data_dir": str(tmp_path)},
        matching={"journal": False, "api_token": "tok-0123456789", "rest": {"enabled": False}, "ws": {"port": 0}},
    )
    return Desk(cfg, data_dir=tmp_path / "desk").build(BUILDERS)


@pytest.fixture
async def desk(tmp_path):
    d = make_desk(tmp_path)
    await d.start()
    yield d
    await d.stop()


def limit(side: Side, price: int, qty: int, owner: str = "mm", **kw: Any) -> OrderRequest:
    return OrderRequest(symbol=SYM, side=side, qty=qty, price=price, owner=owner, **kw)


def market(side: Side, qty: int, owner: str = "taker") -> OrderRequest:
    return OrderRequest(symbol=SYM, side=side, qty=qty, type=OrderType.MARKET, tif=TimeInForce.IOC, owner=owner)


async def recv(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def subscribe(ws: ClientConnection, channels: list[str], symbol: str = SYM) -> None:
    await ws.send(json.dumps({"op": "subscribe", "symbol": symbol, "channels": channels}))


class Book:
    """A client-side consumer: applies snapshots and updates, detects gaps per stream."""

    def __init__(self) -> None:
        self.seq: dict[str, int] = {}
        self.bbo: dict[str, Any] = {}
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.trades: list[dict[str, Any]] = []
        self.gaps: list[tuple[str, int, int]] = []

    def apply(self, m: dict[str, Any]) -> bool:
        """False if ``m`` does not follow on from what we have (a gap: resubscribe)."""
        ch = m["channel"]
        if m["type"] == "snapshot":
            self.seq[ch] = m["seq"]
            if ch == "bbo":
                self.bbo = {k: m[k] for k in ("bid_px", "bid_qty", "ask_px", "ask_qty")}
            elif ch == "depth":
                self.bids, self.asks = dict(m["bids"]), dict(m["asks"])
            else:
                self.trades = list(m["trades"])
            return True
        if m["first_seq"] != self.seq[ch] + 1:
            self.gaps.append((ch, self.seq[ch], m["first_seq"]))
            return False
        self.seq[ch] = m["seq"]
        if ch == "bbo":
            self.bbo = {k: m[k] for k in ("bid_px", "bid_qty", "ask_px", "ask_qty")}
        elif ch == "depth":
            for book, levels in ((self.bids, m["bids"]), (self.asks, m["asks"])):
                for px, qty in levels:
                    if qty == "0":
                        book.pop(px, None)
                    else:
                        book[px] = qty
        else:
            self.trades.append({k: m[k] for k in ("trade_id", "price", "qty", "aggressor", "ts")})
        return True


def ws_url(desk: Desk) -> str:
    return f"ws://127.0.0.1:{desk.services['matching-ws'].port}"


async def read_until(ws: ClientConnection, book: Book, pred) -> list[dict[str, Any]]:
    out = []
    while not pred():
        m = await recv(ws)
        out.append(m)
        assert book.apply(m), f"unexpected gap at {m}"
    return out


async def test_snapshot_then_contiguous_incrementals(desk):
    eng = desk.services["matching"]
    eng.submit(limit(Side.SELL, PX + 1, 30))  # 65000.5 x 0.03
    async with connect(ws_url(desk)) as ws:
        await subscribe(ws, ["bbo", "depth", "trades"])
        snaps = [await recv(ws) for _ in range(3)]
        assert [(m["type"], m["channel"], m["symbol"]) for m in snaps] == [
            ("snapshot", "bbo", SYM), ("snapshot", "depth", SYM), ("snapshot", "trades", SYM),
        ]
        assert {k: snaps[0][k] for k in ("bid_px", "bid_qty", "ask_px", "ask_qty")} == {
            "bid_px": None, "bid_qty": "0", "ask_px": "65000.5", "ask_qty": "0.03",
        }
        assert (snaps[1]["bids"], snaps[1]["asks"]) == ([], [["65000.5", "0.03"]])
        assert snaps[2]["trades"] == []
        book = Book()
        for m in snaps:
            book.apply(m)
        seq0 = dict(book.seq)

        eng.submit(limit(Side.BUY, PX - 1, 20))  # bid 64999.5 x 0.02
        await read_until(ws, book, lambda: book.bbo.get("bid_px") == "64999.5" and "64999.5" in book.bids)
        eng.submit(limit(Side.BUY, PX + 1, 10, owner="taker"))  # takes 0.01 of the ask
        msgs = await read_until(
            ws, book, lambda: len(book.trades) == 1 and book.asks.get("65000.5") == "0.02" and book.bbo["ask_qty"] == "0.02"
        )
        eng.submit(market(Side.SELL, 20))  # sweeps the bid
        msgs += await read_until(ws, book, lambda: len(book.trades) == 2 and not book.bids and book.bbo["bid_px"] is None)

        assert book.bids == {} and book.asks == {"65000.5": "0.02"}
        assert [(t["price"], t["qty"], t["aggressor"]) for t in book.trades] == [
            ("65000.5", "0.01", "buy"), ("64999.5", "0.02", "sell"),
        ]
        # every update followed on from the one before: seq numbers contiguous per channel
        assert book.gaps == []
        assert book.seq["trades"] == seq0["trades"] + 2
        for m in msgs:
            assert m["type"] == "update" and m["first_seq"] <= m["seq"]
        # the server's state is the engine's
        bids, asks = eng.depth(SYM, 20)
        assert (list(bids), [tuple(a) for a in asks]) == ([], [(PX + 1, 20)])


async def test_gap_detected_and_resubscribe_gives_a_fresh_snapshot(desk):
    eng = desk.services["matching"]
    # A server whose fan-out keeps at most 2 trades between passes: a 5-trade sweep in one engine
    # call leaves a real gap in the trade stream.
    srv = MarketDataServer(desk.bus, eng, desk.instruments, max_pending_trades=2)
    await srv.start()
    try:
        async with connect(f"ws://127.0.0.1:{srv.port}") as ws:
            await subscribe(ws, ["trades"])
            book = Book()
            snap = await recv(ws)
            assert book.apply(snap) and snap["seq"] == 0
            for i in range(5):
                eng.submit(limit(Side.SELL, PX + i, 10))
            eng.submit(market(Side.BUY, 50))  # five trades, one call
            m = await recv(ws)
            assert not book.apply(m)  # the client sees the gap ...
            assert book.gaps == [("trades", 0, 4)]
            assert srv.trade_gaps == 1
            await subscribe(ws, ["trades"])  # ... and resubscribes
            while (m := await recv(ws))["type"] != "snapshot":
                assert m["seq"] == 5  # the rest of the old stream, if any
            assert book.apply(m)
            assert m["seq"] == 5
            assert [t["price"] for t in m["trades"]] == ["65000", "65000.5", "65001", "65001.5", "65002"]
            eng.submit(limit(Side.SELL, PX, 10))
            eng.submit(market(Side.BUY, 10))
            m = await recv(ws)
            assert book.apply(m) and (m["first_seq"], m["seq"], m["price"]) == (6, 6, "65000")
    finally:
        await srv.stop()


async def test_slow_consumer_is_dropped_and_the_engine_keeps_matching(desk):
    eng = desk.services["matching"]
    # Small kernel send buffers so "falls behind" happens after a few kilobytes, not megabytes.
    srv = MarketDataServer(desk.bus, eng, desk.instruments, max_backlog=50, send_buffer=4096)
    await srv.start()
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        slow = await connect(f"ws://127.0.0.1:{srv.port}", sock=sock, max_queue=1)
        fast = await connect(f"ws://127.0.0.1:{srv.port}")
        for c in (slow, fast):
            await subscribe(c, ["trades", "bbo"])
        fast_book = Book()
        slow_first = [await recv(slow)]  # the slow client reads its first message, then stops reading
        for _ in range(2):
            fast_book.apply(await recv(fast))

        traded = 0

        async def trade_batch(n: int) -> None:
            nonlocal traded
            for _ in range(n):
                eng.submit(limit(Side.SELL, PX, 1))
                eng.submit(market(Side.BUY, 1))
            traded += n
            # the well-behaved client keeps up: wait until it has every trade so far
            await read_until(fast, fast_book, lambda: fast_book.seq["trades"] == traded)

        while srv.slow_disconnects == 0 and traded < 20_000:
            await trade_batch(20)
        assert srv.slow_disconnects == 1
        cut_at = traded
        for _ in range(10):  # the engine and the other client go on
            await trade_batch(20)
        assert traded == cut_at + 200
        assert eng.stats(SYM)["trade_count"] == traded  # every trade matched, none waited for the slow client
        assert len(fast_book.trades) == traded
        ids = [t["trade_id"] for t in fast_book.trades]
        assert ids == sorted(ids) and len(set(ids)) == traded
        assert eng.open_orders() == []

        # The slow client finally reads: what was already on the wire, then the close reason.
        got = slow_first[:]
        with pytest.raises(ConnectionClosed):
            while True:
                got.append(await recv(slow))
        assert slow.close_code == 1008 and slow.close_reason == "slow consumer"
        trade_seqs = [m["seq"] for m in got if m["channel"] == "trades" and m["type"] == "update"]
        assert trade_seqs == list(range(1, len(trade_seqs) + 1))  # lossless up to the cut
        assert len(trade_seqs) < cut_at
        assert len(srv.clients) == 1
        await fast.close()
    finally:
        await srv.stop()


async def test_protocol_errors_ping_and_unsubscribe(desk):
    eng = desk.services["matching"]
    async with connect(ws_url(desk)) as ws:
        await ws.send(json.dumps({"op": "subscribe", "symbol": "NOPE"}))
        assert await recv(ws) == {"type": "error", "field": "symbol", "reason": "unknown symbol 'NOPE'"}
        await ws.send(json.dumps({"op": "dance", "symbol": SYM}))
        m = await recv(ws)
        assert (m["type"], m["field"]) == ("error", "op")
        await ws.send(json.dumps({"op": "subscribe", "symbol": SYM, "channels": ["candles"]}))
        m = await recv(ws)
        assert (m["type"], m["field"]) == ("error", "channels.0")
        await ws.send("{not json")
        m = await recv(ws)
        assert m["type"] == "error"
        await ws.send(json.dumps({"op": "ping"}))
        assert await recv(ws) == {"type": "pong"}

        await subscribe(ws, ["bbo", "depth"])
        assert [(await recv(ws))["channel"] for _ in range(2)] == ["bbo", "depth"]
        await ws.send(json.dumps({"op": "unsubscribe", "symbol": SYM, "channels": ["bbo"]}))
        await ws.send(json.dumps({"op": "ping"}))
        assert await recv(ws) == {"type": "pong"}  # the unsubscribe has been applied
        eng.submit(limit(Side.BUY, PX, 10))
        await ws.send(json.dumps({"op": "ping"}))
        m = await recv(ws)
        assert (m["type"], m["channel"], m["bids"]) == ("update", "depth", [["65000", "0.01"]])
        assert await recv(ws) == {"type": "pong"}  # no bbo update came before it


async def test_status_and_desk_wiring(desk):
    ws = desk.services["matching-ws"]
    assert desk.engine("matching-ws") is ws
    assert ws.port > 0 and ws.host == "127.0.0.1"
    async with connect(ws_url(desk)) as c:
        await subscribe(c, ["bbo"])
        await recv(c)
        assert ws.status()["clients"] == 1


async def test_a_client_behind_gets_one_merged_update_spanning_the_seqs(desk):
    eng = desk.services["matching"]
    srv = desk.services["matching-ws"]
    async with connect(ws_url(desk)) as ws:
        await subscribe(ws, ["depth", "bbo"])
        book = Book()
        for _ in range(2):
            assert book.apply(await recv(ws))
        d0, b0 = book.seq["depth"], book.seq["bbo"]
        # Three engine calls, each fanned out, with no chance for the client's writer to run in between:
        # the client's pending depth and bbo messages are merged, not queued.
        # (publish_market_data: the engine conflates BBO/Depth to once per loop turn; force each out.)
        eng.submit(limit(Side.BUY, PX - 2, 10))
        eng.publish_market_data()
        srv.fanout()
        eng.submit(limit(Side.BUY, PX - 4, 10))
        eng.publish_market_data()
        srv.fanout()
        eng.submit(limit(Side.SELL, PX + 2, 10))
        eng.publish_market_data()
        srv.fanout()
        msgs = [await recv(ws), await recv(ws)]
        by = {m["channel"]: m for m in msgs}
        assert (by["depth"]["first_seq"], by["depth"]["seq"]) == (d0 + 1, d0 + 3)
        assert by["depth"]["bids"] == [["64999", "0.01"], ["64998", "0.01"]]
        assert by["depth"]["asks"] == [["65001", "0.01"]]
        # the second bid is behind the best: the bbo did not change, so only two bbo updates exist
        assert (by["bbo"]["first_seq"], by["bbo"]["seq"]) == (b0 + 1, b0 + 2)
        assert (by["bbo"]["bid_px"], by["bbo"]["ask_px"]) == ("64999", "65001")
        for m in msgs:
            assert book.apply(m)
        assert book.gaps == []
