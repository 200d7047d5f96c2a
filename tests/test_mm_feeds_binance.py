"""The Binance book-ticker client against a local WebSocket server replaying recorded-format frames:
subscription, mid prices, a malformed frame logged and skipped, a dropped connection and the
reconnect, replayed update ids ignored, staleness."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from websockets.asyncio.server import serve

from engines.bus import Bus
from engines.events import PriceTick
from engines.feeds.binance import BinanceBookTickerFeed, MalformedFrame, parse_book_ticker
from engines.feeds.events import FeedStatus

FIXTURE = Path(__file__).parent / "fixtures" / "binance_bookticker.jsonl"


class ReplayServer:
    """Serves the fixture: each connection continues where the last stopped; ``#DROP`` aborts the TCP
    connection without a close frame (a network drop); at the end the server keeps the connection open."""

    def __init__(self, lines: list[str], *, hold: bool = True) -> None:
        self.lines = lines
        self.pos = 0
        self.hold = hold
        self.subscriptions: list[dict] = []
        self.connections = 0

    async def handler(self, ws) -> None:
        self.connections += 1
        self.subscriptions.append(json.loads(await ws.recv()))
        await ws.send('{"result":null,"id":1}')
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            self.pos += 1
            if line == "#DROP":
                ws.transport.abort()
                return
            await ws.send(line)
        if self.hold:
            await ws.wait_closed()


async def _collect(bus: Bus, n: int, timeout: float = 5.0) -> list[PriceTick]:
    got: list[PriceTick] = []
    done = asyncio.Event()

    def on(ev: PriceTick) -> None:
        got.append(ev)
        if len(got) >= n:
            done.set()

    sub = bus.subscribe(PriceTick, on)
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        sub.cancel()
    return got


def test_parse_rejects_malformed_frames():
    assert parse_book_ticker('{"u":1,"s":"btcusdt","b":"1.5","B":"1","a":"2.5","A":"1"}')[1:] == (
        "BTCUSDT", __import__("decimal").Decimal("1.5"), __import__("decimal").Decimal("2.5"))
    assert parse_book_ticker('{"result":null,"id":1}') is None
    for bad, why in (("{", "not JSON"), ("[1]", "not an object"), ('{"s":"X","b":"1"}', "missing field"),
                     ('{"s":"X","b":"x","a":"1"}', "not a number"), ('{"s":"X","b":"0","a":"1"}', "non-positive"),
                     ('{"s":"X","b":"2","a":"1"}', "crossed")):
        try:
            parse_book_ticker(bad)
        except MalformedFrame as exc:
            assert why in str(exc)
        else:
            raise AssertionError(bad)


async def test_replay_with_malformed_frame_and_drop(caplog):
    caplog.set_level(logging.WARNING, logger="engines.feeds.binance")
    server = ReplayServer(FIXTURE.read_text().splitlines())
    bus = Bus()
    states: list[tuple[str, int]] = []
    bus.subscribe(FeedStatus, lambda ev: states.append((ev.state, ev.reconnects)))
    async with serve(server.handler, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        feed = BinanceBookTickerFeed(bus, url=f"ws://127.0.0.1:{port}/ws", symbols={"BTCUSDT": "BTC-USD"},
                                     backoff_initial=0.01, backoff_max=0.05, stale_after=5.0, seed=1)
        collecting = asyncio.create_task(_collect(bus, 5))
        await feed.start()
        try:
            ticks = await collecting
        finally:
            await feed.stop()
    assert [(t.symbol, t.price, t.source) for t in ticks] == [
        ("BTC-USD", 65000.0, "binance"),
        ("BTC-USD", 65001.5, "binance"),
        ("BTC-USD", 65004.5, "binance"),  # the combined-stream frame, just before the drop
        ("BTC-USD", 65010.5, "binance"),  # after the reconnect; the replayed u=…006 and the crossed frame skipped
        ("BTC-USD", 65013.0, "binance"),
    ]
    assert server.connections == 2
    assert server.subscriptions == [{"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 1}] * 2
    assert (feed.malformed, feed.replayed, feed.ignored, feed.reconnects) == (3, 1, 1, 1)
    malformed_logs = [r.getMessage() for r in caplog.records if "malformed frame skipped" in r.getMessage()]
    assert len(malformed_logs) == 3
    assert "price is not a number" in malformed_logs[0] and "not JSON" in malformed_logs[1]
    assert "crossed: bid 65010.00000000 > ask 65009.00000000" in malformed_logs[2]
    assert [s for s, _ in states] == ["connecting", "live", "reconnecting", "connecting", "live", "stopped"]
    assert states[2][1] == 1


async def test_silent_server_is_detected_as_stale_and_reconnected():
    lines = FIXTURE.read_text().splitlines()[:1]
    server = ReplayServer(lines)
    bus = Bus()
    stale = asyncio.Event()
    reasons: list[str] = []

    def on(ev: FeedStatus) -> None:
        reasons.append(f"{ev.state}:{ev.reason}")
        if ev.state == "stale":
            stale.set()

    bus.subscribe(FeedStatus, on)
    async with serve(server.handler, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        feed = BinanceBookTickerFeed(bus, url=f"ws://127.0.0.1:{port}", symbols={"BTCUSDT": "BTC-USD"},
                                     backoff_initial=0.01, stale_after=0.2)
        await feed.start()
        try:
            await asyncio.wait_for(stale.wait(), 5)
        finally:
            await feed.stop()
    assert "stale:no frame for 0.2s" in reasons
    assert feed.ticks == 1


async def test_unreachable_server_backs_off_and_keeps_trying():
    bus = Bus()
    states: list[FeedStatus] = []
    third = asyncio.Event()

    def on(ev: FeedStatus) -> None:
        states.append(ev)
        if ev.state == "reconnecting" and ev.reconnects >= 3:
            third.set()

    bus.subscribe(FeedStatus, on)
    async with serve(lambda ws: None, "127.0.0.1", 0) as srv:  # find a free port, then close it
        port = srv.sockets[0].getsockname()[1]
    feed = BinanceBookTickerFeed(bus, url=f"ws://127.0.0.1:{port}", symbols={"BTCUSDT": "BTC-USD"},
                                 backoff_initial=0.01, backoff_max=0.02, seed=3)
    await feed.start()
    try:
        await asyncio.wait_for(third.wait(), 5)
    finally:
        await feed.stop()
    retry = [s.reason for s in states if s.state == "reconnecting"]
    assert len(retry) >= 3 and all("retry in" in r for r in retry)
