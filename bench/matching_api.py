"""Matching engine APIs over loopback: REST order entry and WebSocket trade fan-out.

* REST: sequential POST /v1/orders (resting limit orders, then DELETE of each) over one keep-alive
  httpx connection, and the same with 8 concurrent clients; requests/s and p50/p99 round trip. Every
  answer waits for the journal commit (durable ack); one more run without it shows what that costs.
* WS: K clients (in this same process, so their JSON parsing is counted too) subscribed to trades; the engine prints M trades (in batches of 100, each batch
  awaited until every client has it); messages delivered per second, and engine time per trade with
  and without subscribers (the cost the WS server adds to the engine's call stack).

Real desk (engine + journal in a temp dir), real sockets. Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from engines.config import DeskConfig
from engines.orders import OrderRequest, OrderType, Side, TimeInForce
from engines.runtime import Desk

TOKEN = "bench-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BUILDERS = ["engines.matching.service:build", "engines.matching.api:build"]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


async def rest_bench(url: str, n: int, clients: int) -> dict[str, float]:
    lat: list[float] = []

    async def worker(w: int) -> None:
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as c:
            for i in range(n // clients):
                body = {"symbol": "BTC-USD", "side": "buy", "price": str(60000 - (i % 50)), "qty": "0.001",
                        "owner": f"bench{w}"}
                t0 = time.perf_counter()
                r = await c.post("/v1/orders", json=body)
                lat.append(time.perf_counter() - t0)
                oid = r.json()["order_id"]
                t0 = time.perf_counter()
                await c.delete(f"/v1/orders/BTC-USD/{oid}", params={"owner": f"bench{w}"})
                lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    dt = time.perf_counter() - t0
    return {"req_per_s": len(lat) / dt, "p50_ms": pct(lat, 0.5) * 1e3, "p99_ms": pct(lat, 0.99) * 1e3}


def trade_pair(eng, i: int) -> None:
    eng.submit(OrderRequest(symbol="BTC-USD", side=Side.SELL, qty=1, price=130_000, owner="mm"))
    eng.submit(OrderRequest(symbol="BTC-USD", side=Side.BUY, qty=1, type=OrderType.MARKET, tif=TimeInForce.IOC,
                            owner="taker"))


async def ws_bench(desk: Desk, clients: int, trades: int) -> dict[str, float]:
    eng = desk.services["matching"]
    port = desk.services["matching-ws"].port
    # engine cost per trade pair without subscribers
    t0 = time.perf_counter()
    for i in range(trades):
        trade_pair(eng, i)
    bare = (time.perf_counter() - t0) / trades
    conns = [await connect(f"ws://127.0.0.1:{port}", max_queue=None) for _ in range(clients)]
    for c in conns:
        await c.send(json.dumps({"op": "subscribe", "symbol": "BTC-USD", "channels": ["trades", "bbo", "depth"]}))
    for c in conns:
        for _ in range(3):
            await c.recv()
    got = [0] * clients
    done = asyncio.Event()

    async def reader(k: int, c) -> None:
        async for raw in c:
            m = json.loads(raw)
            if m["channel"] == "trades" and m["type"] == "update":
                got[k] += 1
                if all(g >= trades for g in got):
                    done.set()

    tasks = [asyncio.create_task(reader(k, c)) for k, c in enumerate(conns)]
    engine_time = 0.0
    t0 = time.perf_counter()
    for b in range(0, trades, 100):
        t1 = time.perf_counter()
        for i in range(b, min(trades, b + 100)):
            trade_pair(eng, i)
        engine_time += time.perf_counter() - t1
        while min(got) < min(trades, b + 100):
            await asyncio.sleep(0)
    await asyncio.wait_for(done.wait(), 60)
    dt = time.perf_counter() - t0
    for t in tasks:
        t.cancel()
    for c in conns:
        await c.close()
    return {
        "clients": clients,
        "trades": trades,
        "msgs_per_s": clients * trades / dt,
        "engine_us_per_trade_pair_no_ws": bare * 1e6,
        "engine_us_per_trade_pair_with_ws": engine_time / trades * 1e6,
    }


def handler_cost(eng, instruments, n: int = 100_000) -> dict[str, float]:
    """ns per event that the WS server adds to the engine's call stack (its bus handlers), with a
    subscriber present (no subscriber: one dict lookup and a set test). Best of 5."""
    from engines.bus import Bus
    from engines.marketdata import BBO, Trade
    from engines.matching.ws import MarketDataServer

    srv = MarketDataServer(Bus(), eng, instruments, max_pending_trades=n)
    feed = srv._feeds["BTC-USD"]
    for ch in ("bbo", "trades"):
        feed.subs[ch].add(object())  # any member: the handlers only test for subscribers
    trades = [Trade(symbol="BTC-USD", trade_id=i, price=130_000, qty=1, aggressor=Side.BUY, maker_order_id=1,
                    taker_order_id=2, maker_owner="a", taker_owner="b", maker_fee=0.0, taker_fee=0.0)
              for i in range(n)]
    bbos = [BBO(symbol="BTC-USD", bid_px=i, bid_qty=1, ask_px=i + 1, ask_qty=1) for i in range(n)]
    best_t = best_b = float("inf")
    gc.disable()  # the events above are 200k tracked objects: keep collector pauses out of the figure
    try:
        for _ in range(5):
            feed.pending_trades.clear()
            t0 = time.perf_counter()
            for ev in trades:
                srv._on_trade(ev)
            t1 = time.perf_counter()
            for ev in bbos:
                srv._on_bbo(ev)
            t2 = time.perf_counter()
            best_t, best_b = min(best_t, t1 - t0), min(best_b, t2 - t1)
    finally:
        gc.enable()
    return {"ws_handler_ns_per_trade": best_t / n * 1e9, "ws_handler_ns_per_bbo": best_b / n * 1e9}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--trades", type=int, default=5000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = DeskConfig(desk={"name": "bench", "data_dir": tmp}, matching={"api_token": TOKEN})
        desk = Desk(cfg, data_dir=Path(tmp) / "desk").build(BUILDERS)
        await desk.start()
        try:
            url = desk.services["matching-rest"].url
            seq = await rest_bench(url, args.orders, 1)
            par = await rest_bench(url, args.orders, 8)
            desk.services["matching-rest"].api.durable_ack = False  # the cost of waiting for the journal
            fast = await rest_bench(url, args.orders, 1)
            desk.services["matching-rest"].api.durable_ack = True
            ws = await ws_bench(desk, 10, args.trades)
            ws.update(handler_cost(desk.services["matching"], desk.instruments))
        finally:
            await desk.stop()
    machine = f"{platform.machine()}, Python {platform.python_version()}"
    print(f"machine: {machine}")
    print(f"REST 1 client : {seq['req_per_s']:8.0f} req/s  p50 {seq['p50_ms']:.2f} ms  p99 {seq['p99_ms']:.2f} ms")
    print(f"REST 8 clients: {par['req_per_s']:8.0f} req/s  p50 {par['p50_ms']:.2f} ms  p99 {par['p99_ms']:.2f} ms")
    print(f"REST 1 client, no durable ack: {fast['req_per_s']:8.0f} req/s  p50 {fast['p50_ms']:.2f} ms  "
          f"p99 {fast['p99_ms']:.2f} ms")
    print(f"WS {ws['clients']} clients x {ws['trades']} trades: {ws['msgs_per_s']:.0f} msgs/s delivered; engine per "
          f"trade pair {ws['engine_us_per_trade_pair_no_ws']:.1f} us without WS subscribers, "
          f"{ws['engine_us_per_trade_pair_with_ws']:.1f} us with")
    print(f"WS bus handlers on the engine's call stack: {ws['ws_handler_ns_per_trade']:.0f} ns per trade, "
          f"{ws['ws_handler_ns_per_bbo']:.0f} ns per bbo")
    print(json.dumps({"machine": machine, "rest_1": seq, "rest_8": par, "rest_1_no_durable_ack": fast, "ws": ws}))


if __name__ == "__main__":
    asyncio.run(main())
