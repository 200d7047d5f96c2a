"""FIX session layer CPU per order, in one process, without sockets: deterministic enough to A/B small
changes (and to run under ``valgrind --tool=cachegrind``, where instruction counts do not follow the load).

An acceptor session (SqliteStore, data-dictionary validator, audit log: as the desk configures it) is fed
pre-encoded NewOrderSingles by an in-memory stream, ``--chunk`` orders per read, at most ``--window``
unacknowledged; what it writes goes to an in-memory writer that counts the acknowledgements. Two
applications behind it:

* ``--app echo`` (default): answers each order with two prebuilt ExecutionReports (New, Fill), as the
  gateway's crossing flow does: the session's own cost (framing, header checks, validation, encoding,
  store, audit log) plus a trivial application;
* ``--app desk``: the desk's gateway, risk gate and matching engine (journal on, or ``--no-journal``)
  behind the session: the same flow as ``bench/fix_gateway.py`` without the client process and the socket.

CPU per order = process CPU (all threads) over the measured runs / orders. For instructions per order,
run it twice under cachegrind with different ``--orders`` and divide the difference:
``valgrind --tool=cachegrind --cache-sim=no python bench/fix_session.py --orders 1000 --runs 1``.
Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from engines.fix.application import Application
from engines.fix.gateway import Prebuilt
from engines.fix.message import FixMessage, encode, utc_timestamp
from engines.fix.session import Session


class _Transport:
    def get_write_buffer_size(self) -> int:
        return 0


class _Writer:
    """A StreamWriter stand-in: hands what the session writes to ``on_data``."""

    def __init__(self, on_data: Any) -> None:
        self.transport = _Transport()
        self.on_data = on_data

    def write(self, data: bytes) -> None:
        self.on_data(data)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def wait_closed(self) -> None:
        return None


class _Flow:
    """One run's chunks and its window: the reader waits while too many orders are unacknowledged."""

    def __init__(self, chunks: list[bytes], chunk: int, window: int, orders: int) -> None:
        self.chunks, self.chunk, self.window, self.orders = chunks, chunk, window, orders
        self.next = 0
        self.acks = self.fills = 0
        self.progress = asyncio.Event()
        self.done = asyncio.Event()

    def on_data(self, data: bytes) -> None:
        self.acks += data.count(b"\x01150=0\x01")
        self.fills += data.count(b"\x01150=F\x01")
        self.progress.set()
        if self.acks >= self.orders and self.fills >= self.orders:
            self.done.set()


class _Reader:
    """A StreamReader stand-in serving the current flow's chunks (and waiting for the next flow)."""

    def __init__(self) -> None:
        self.flow: _Flow | None = None
        self.more = asyncio.Event()

    async def read(self, n: int = -1) -> bytes:
        while self.flow is None or self.flow.next >= len(self.flow.chunks):
            self.more.clear()
            await self.more.wait()
        f = self.flow
        while f.next > 0 and f.next * f.chunk - f.acks > f.window - f.chunk:
            f.progress.clear()
            await f.progress.wait()
        f.next += 1
        return f.chunks[f.next - 1]


class EchoApp(Application):
    """Answers each NewOrderSingle with an ExecutionReport New and a Fill (prebuilt bodies)."""

    def __init__(self) -> None:
        self.n = 0

    def from_app(self, msg: FixMessage, session: Session) -> None:
        cl = msg.get(11) or b""
        self.n += 1
        ts = utc_timestamp(time.time_ns())
        for et, st in ((b"0", b"0"), (b"F", b"2")):
            session.send_nowait(Prebuilt("8", b"37=%d\x0111=%s\x0117=E%d%s\x01150=%s\x0139=%s\x0155=BTC-USD\x01"
                                         b"54=1\x0138=0.01\x0140=2\x0144=60000\x0159=1\x01151=0\x0114=0.01\x01"
                                         b"6=60000\x0160=%s\x01" % (self.n, cl, self.n, et, et, st, ts)))


def orders(n: int, first_seq: int, now_ns: int) -> list[bytes]:
    """Crossing pairs, as bench/fix_gateway.py sends them."""
    st = utc_timestamp(now_ns)
    out = []
    for i in range(n):
        body = b"11=S%d\x0155=BTC-USD\x0154=%s\x0160=20260101-00:00:00.000\x0138=0.01\x0140=2\x0144=%d\x0159=1\x01" % (
            first_seq + i, b"1" if i % 2 == 0 else b"2", 60000 + (i // 2) % 1000)
        out.append(encode(b"FIX.4.4", b"D", first_seq + i, b"BENCH", b"OPDESK", st, body))
    return out


async def acceptor_session(app: str, tmp: Path, journal: bool) -> tuple[Session, Any]:
    """The session under test and what to stop afterwards (the desk, or the store)."""
    if app == "desk":
        from engines.config import DeskConfig
        from engines.runtime import Desk

        cfg = DeskConfig(
            desk={"name": "bench", "data_dir": str(tmp)},
            instruments={"BTC-USD": {"tick_size": "0.5", "lot_size": "0.001", "base": "BTC", "quote": "USD"}},
            mm=[], grid=[],
            matching={"journal": journal, "self_trade": "none", "rest": {"enabled": False},
                      "ws": {"enabled": False}},
            risk={"limits": {"max_orders_per_second": None, "max_order_notional": None},
                  "rules": {"order_storm": None}},
            fix={"sessions": [{"name": "bench", "role": "acceptor", "sender_comp_id": "OPDESK",
                               "target_comp_id": "BENCH", "sending_time_window": 600}]},
        )  # fmt: skip
        desk = Desk(cfg).build(["engines.matching.service:build", "engines.risk.service:build",
                                "engines.fix.service:build"])
        for s in desk.services["fix"].all_sessions():
            s.settings.publish_messages = False
        await desk.start()
        acceptor = desk.services["fix"].acceptor
        return next(iter(acceptor.sessions.values())), desk
    from engines.fix.dictionary import Validator, default_dictionary
    from engines.fix.session import SessionID, SessionSettings
    from engines.fix.store import SqliteStore

    store = SqliteStore(tmp / "fix.sqlite")
    session = Session(SessionID("FIX.4.4", "OPDESK", "BENCH"),
                      SessionSettings(sending_time_window=600, publish_messages=False), EchoApp(), store,
                      role="acceptor", validator=Validator(default_dictionary("FIX.4.4")), log_dir=tmp / "logs")
    await session.open()
    return session, store


async def bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    session, owner = await acceptor_session(args.app, tmp, not args.no_journal)
    reader = _Reader()
    writer = _Writer(lambda data: None)
    now = time.time_ns()
    logon = encode(b"FIX.4.4", b"A", 1, b"BENCH", b"OPDESK", utc_timestamp(now), b"98=0\x01108=30\x01")
    flow = _Flow([logon], 1, 1, 0)
    reader.flow = flow
    task = asyncio.create_task(session.run(reader, writer, initiator=False))  # type: ignore[arg-type]
    await session.wait_for(lambda: session.is_logged_on, 10)
    cpu: list[float] = []
    seq = 2
    for r in range(args.runs + 1):  # the first run warms up
        n = args.orders if r else args.warm
        msgs = orders(n, seq, now)
        seq += n
        flow = _Flow([b"".join(msgs[i : i + args.chunk]) for i in range(0, n, args.chunk)], args.chunk,
                     args.window, n)
        writer.on_data = flow.on_data
        prof = cProfile.Profile() if args.profile and r == args.runs else None
        c0 = time.process_time()
        if prof is not None:
            prof.enable()
        reader.flow = flow
        reader.more.set()
        await asyncio.wait_for(flow.done.wait(), 600)
        if prof is not None:
            prof.disable()
            prof.dump_stats(args.profile)
        if r:
            cpu.append((time.process_time() - c0) / n * 1e6)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await (owner.stop() if args.app == "desk" else owner.close())
    return {"cpu_us_per_order": min(cpu), "cpu_us_per_order_median": sorted(cpu)[len(cpu) // 2],
            "runs_cpu_us": [round(c, 1) for c in cpu]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--app", choices=("echo", "desk"), default="echo")
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--chunk", type=int, default=100, help="NewOrderSingles per read")
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warm", type=int, default=2_000, help="warm-up orders")
    ap.add_argument("--no-journal", action="store_true", help="desk: matching engine without its journal")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the last run into FILE")
    args = ap.parse_args()
    machine = f"{os.cpu_count()}-core {platform.machine()}, Python {platform.python_version()}"
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        e = asyncio.run(bench(args, Path(tmp)))
    load1 = os.getloadavg()[0]
    print(f"{machine}; FIX session, app {args.app}, {args.runs} x {args.orders:,} orders, {args.chunk} per read, "
          f"window {args.window} (load average {load0:.2f} -> {load1:.2f})")
    print(f"  CPU per order (all threads): best {e['cpu_us_per_order']:.1f} us, median "
          f"{e['cpu_us_per_order_median']:.1f} us (runs: {e['runs_cpu_us']})")
    print(json.dumps({"bench": "fix_session", "machine": machine, "app": args.app, "orders": args.orders,
                      "chunk": args.chunk, "window": args.window, "runs": args.runs,
                      "load_avg_1m": [round(load0, 2), round(load1, 2)],
                      **{k: (round(v, 2) if isinstance(v, float) else v) for k, v in e.items()}}))


if __name__ == "__main__":
    main()
