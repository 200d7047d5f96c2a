"""FIX engine speed: parsing inbound ExecutionReports, and orders end to end over loopback.

1. Parse rate of ~320-byte ExecutionReports, best of several runs:
   * ``ours``: ``parse(raw)`` and reading MsgType plus six fields a handler needs (34, 11, 150, 39, 14, 151);
   * ``ours_framed``: the same through ``FixFramer.feed`` on a stream (BodyLength and CheckSum checked);
   * ``simplefix``: ``FixParser.append_buffer`` + ``get_message`` (parses every field);
   * baselines: ``split_soh`` = ``raw.split(b"\\x01")`` alone; ``split_pairs`` = that plus
     ``partition(b"=")`` of every field (what any full parse must at least do).
2. End to end: an initiator (this process) sends NewOrderSingles to an acceptor in a child process
   whose application answers each with an ExecutionReport; both sessions use a SqliteStore (WAL),
   every sent message committed before it is written. Orders/s sustained with a window of orders in
   flight, and round-trip p50/p99 (NewOrderSingle queued → ExecutionReport handled) under that load and
   one order at a time.

Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import simplefix

from engines.fix.application import Application
from engines.fix.events import SessionState
from engines.fix.initiator import Initiator
from engines.fix.message import FixFramer, Message, build, parse
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import SqliteStore


def execution_report(i: int) -> bytes:
    return build(
        "FIX.4.4",
        "8",
        100_000 + i,
        "OPDESK",
        "DESKCLIENT",
        [
            (1, "ACCT-0001"), (37, f"M{7_000_000 + i}"), (11, f"CL-{i:012d}"), (17, f"E-{7_000_000 + i}-1"),
            (150, "F"), (39, "1"), (55, "BTC-USD"), (54, "1"), (38, "10.000"), (40, "2"), (44, "64250.50"),
            (59, "0"), (32, "2.500"), (31, "64250.50"), (151, "7.500"), (14, "2.500"), (6, "64250.50"),
            (60, "20260101-00:00:00.123"), (58, "partial fill"), (30, "OPDESK"), (207, "OPDESK"),
        ],
        sending_time=b"20260101-00:00:00.123",
    )


def best_rate(fn, n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def bench_parse(n: int, repeat: int) -> dict[str, float]:
    msgs = [execution_report(i) for i in range(n)]
    stream = b"".join(msgs)
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]

    def ours() -> None:
        for raw in msgs:
            m = parse(raw)
            m.msg_type, m.get(34), m.get(11), m.get(150), m.get(39), m.get(14), m.get(151)

    def ours_framed() -> None:
        f = FixFramer()
        for c in chunks:
            for raw in f.feed(c):
                m = parse(raw)
                m.msg_type, m.get(34), m.get(11), m.get(150), m.get(39), m.get(14), m.get(151)

    def simple() -> None:
        p = simplefix.FixParser()
        for raw in msgs:
            p.append_buffer(raw)
            p.get_message()

    def split_soh() -> None:
        for raw in msgs:
            raw.split(b"\x01")

    def split_pairs() -> None:
        for raw in msgs:
            [f.partition(b"=") for f in raw.split(b"\x01")]

    # Round-robin over the variants, best of ``repeat`` each: on a shared machine load comes and goes,
    # and interleaving keeps that from favouring whichever variant ran in a quiet moment.
    variants = {"ours": (ours, n), "ours_framed": (ours_framed, n), "simplefix": (simple, min(n, 2000)),
                "split_soh": (split_soh, n), "split_pairs": (split_pairs, n)}
    full = msgs
    best: dict[str, float] = dict.fromkeys(variants, 0.0)
    for _ in range(repeat):
        for name, (fn, count) in variants.items():
            if count < len(full):
                msgs = full[:count]
            best[name] = max(best[name], best_rate(fn, count, 1))
            msgs = full
    out: dict[str, float] = {"msg_bytes": round(statistics.mean(len(m) for m in full)), **best}
    return out


# --- end to end -------------------------------------------------------------------------------------

ACCEPTOR_CHILD = """
import asyncio, sys
from engines.fix.acceptor import Acceptor
from engines.fix.application import Application
from engines.fix.message import Message
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import SqliteStore

class Fills(Application):
    # Answers every NewOrderSingle with an ExecutionReport (new), like a venue acknowledging it.
    n = 0
    def from_app(self, msg, session):
        if msg.msg_type != "D":
            raise __import__("engines.fix.errors").fix.errors.UnsupportedMessageType(msg.msg_type)
        Fills.n += 1
        g = msg.get
        session.send_nowait(Message("8", [
            (37, b"M%d" % Fills.n), (11, g(11)), (17, b"E%d" % Fills.n), (150, b"0"), (39, b"0"),
            (55, g(55)), (54, g(54)), (38, g(38)), (40, g(40)), (44, g(44)), (151, g(38)), (14, b"0"), (6, b"0"),
            (60, g(60)),
        ]))

async def main(db):
    s = Session(SessionID("FIX.4.4", "OPDESK", "BENCH"), SessionSettings(heartbeat_interval=30,
                publish_messages=False, sending_time_window=600), Fills(), SqliteStore(db))
    acc = Acceptor([s])
    await acc.start()
    print(acc.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await acc.stop()

asyncio.run(main(sys.argv[1]))
"""


class Client(Application):
    def __init__(self) -> None:
        self.sent_at: dict[bytes, float] = {}
        self.rtts: list[float] = []
        self.done = 0
        self.event = asyncio.Event()
        self.room = asyncio.Event()
        self.low_water = 0
        self.target = 0

    def from_app(self, msg, session) -> None:
        t = self.sent_at.pop(msg.get(11), None)
        if t is not None:
            self.rtts.append(time.perf_counter() - t)
        self.done += 1
        if self.done >= self.low_water:
            self.room.set()
        if self.done >= self.target:
            self.event.set()


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def run_orders(session: Session, app: Client, n: int, window: int, start: int) -> float:
    app.done = 0
    app.low_water = 0
    app.target = n
    app.event.clear()
    app.rtts.clear()
    t0 = time.perf_counter()
    sent = 0
    while sent < n:
        while sent < n and sent - app.done < window:
            cl = b"B%d" % (start + sent)
            app.sent_at[cl] = time.perf_counter()
            session.send_nowait(Message("D", [(11, cl), (55, b"BTC-USD"), (54, b"1"), (38, b"1.000"), (40, b"2"),
                                              (44, b"64250.50"), (59, b"0"), (60, b"20260101-00:00:00.000")]))
            sent += 1
        if sent - app.done >= window:
            # Block (not spin) until answers free the window: a spinning sender would steal CPU
            # from the acceptor process on a 2-core machine.
            app.room.clear()
            app.low_water = sent - window // 2
            await app.room.wait()
    await asyncio.wait_for(app.event.wait(), 120)
    return time.perf_counter() - t0


async def bench_e2e(n: int, window: int, tmp: Path) -> dict[str, float]:
    child = subprocess.Popen(
        [sys.executable, "-c", ACCEPTOR_CHILD, str(tmp / "acceptor.db")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        port = int(child.stdout.readline())
        app = Client()
        store = SqliteStore(tmp / "initiator.db")
        session = Session(
            SessionID("FIX.4.4", "BENCH", "OPDESK"),
            SessionSettings(heartbeat_interval=30, publish_messages=False, sending_time_window=600),
            app,
            store,
        )
        ini = Initiator(session, "127.0.0.1", port, seed=1)
        await ini.start()
        await session.wait_state(SessionState.ACTIVE, 10)
        await run_orders(session, app, min(2000, n), window, 0)  # warm-up
        cpu0, child0 = time.process_time(), proc_cpu(child.pid)
        elapsed = await run_orders(session, app, n, window, 10_000_000)
        cpu_ini, cpu_acc = time.process_time() - cpu0, proc_cpu(child.pid) - child0
        loaded = list(app.rtts)
        single_n = min(2000, n)
        t_single = await run_orders(session, app, single_n, 1, 20_000_000)
        single = list(app.rtts)
        saves = store.saves
        await ini.stop("bench done")
        await store.close()
        return {
            "orders": n,
            "window": window,
            "orders_per_s": n / elapsed,
            "cpu_us_per_order_initiator": cpu_ini / n * 1e6,
            "cpu_us_per_order_acceptor": cpu_acc / n * 1e6,
            "rtt_p50_ms": percentile(loaded, 50) * 1e3,
            "rtt_p99_ms": percentile(loaded, 99) * 1e3,
            "single_rtt_p50_ms": percentile(single, 50) * 1e3,
            "single_rtt_p99_ms": percentile(single, 99) * 1e3,
            "single_orders_per_s": single_n / t_single,
            "initiator_store_commits": saves,
        }
    finally:
        if child.poll() is None:
            child.stdin.close()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parse-n", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--orders", type=int, default=50_000)
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.parse_n, args.repeat, args.orders = 5_000, 2, 3_000

    p = bench_parse(args.parse_n, args.repeat)
    print(f"parse {p['msg_bytes']}-byte ExecutionReports (MsgType + 6 fields read), msgs/s:")
    for k in ("ours", "ours_framed", "simplefix", "split_soh", "split_pairs"):
        print(f"  {k:<12} {p[k]:>12,.0f}")
    print(f"  ours / simplefix = {p['ours'] / p['simplefix']:.1f}x   ours / split_soh = {p['ours'] / p['split_soh']:.2f}"
          f"   ours / split_pairs = {p['ours'] / p['split_pairs']:.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        e = asyncio.run(bench_e2e(args.orders, args.window, Path(tmp)))
    print(f"end to end, {e['orders']:,} NewOrderSingle -> ExecutionReport over loopback, SqliteStore both sides:")
    print(f"  window {e['window']}: {e['orders_per_s']:,.0f} orders/s, round trip p50 {e['rtt_p50_ms']:.2f} ms, "
          f"p99 {e['rtt_p99_ms']:.2f} ms ({e['initiator_store_commits']:,} initiator commits)")
    print(f"  CPU per order: initiator {e['cpu_us_per_order_initiator']:.1f} us, acceptor "
          f"{e['cpu_us_per_order_acceptor']:.1f} us (a free core each would allow "
          f"{1e6 / max(e['cpu_us_per_order_initiator'], e['cpu_us_per_order_acceptor'], 1e-9):,.0f} orders/s)")
    print(f"  one at a time: p50 {e['single_rtt_p50_ms']:.3f} ms, p99 {e['single_rtt_p99_ms']:.3f} ms "
          f"({e['single_orders_per_s']:,.0f} orders/s)")
    figures = {
        "bench": "fix",
        "machine": f"{os.cpu_count()}-core {platform.machine()}, Python {platform.python_version()}",
        "parse_msg_bytes": p["msg_bytes"],
        "parse_ours_per_s": round(p["ours"]),
        "parse_ours_framed_per_s": round(p["ours_framed"]),
        "parse_simplefix_per_s": round(p["simplefix"]),
        "parse_split_soh_per_s": round(p["split_soh"]),
        "parse_split_pairs_per_s": round(p["split_pairs"]),
        "parse_ratio_vs_simplefix": round(p["ours"] / p["simplefix"], 1),
        "parse_ratio_vs_split_soh": round(p["ours"] / p["split_soh"], 2),
        **{f"e2e_{k}": (round(v, 3) if isinstance(v, float) else v) for k, v in e.items()},
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
