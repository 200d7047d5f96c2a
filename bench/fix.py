"""FIX engine speed: parsing inbound ExecutionReports, and orders end to end over loopback.

1. Parse rate of ~320-byte ExecutionReports, best of several runs:
   * ``ours``: ``parse(raw)`` and reading MsgType plus six fields a handler needs (34, 11, 150, 39, 14, 151);
   * ``ours_framed``: the same through ``FixFramer.feed`` on a stream (BodyLength, CheckSum and the first
     three fields checked): the framer + ``parse`` a live session runs on every inbound message;
   * ``ours_validated``: ``ours_framed`` plus the desk dictionary's ``Validator.validate`` (``pairs()`` and
     the known-shape check; unknown tags allowed), which a live session also runs on every inbound
     application message unless validation is switched off;
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
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import simplefix

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fixclient import (  # the benches' shared client, beside this file
    CHILD_CONTROL,
    connect,
    load_average,
    measure,
    start_child,
    stop_child,
)

from engines.fix.dictionary import Validator, default_dictionary
from engines.fix.message import FixFramer, Message, build, parse


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

    # The bench message carries LastMkt (30) and SecurityExchange (207), which the desk dictionary does not
    # define: unknown fields allowed, or every message would be a Reject.
    validator = Validator(default_dictionary("FIX.4.4"), allow_unknown_fields=True)

    def ours_validated() -> None:
        f = FixFramer()
        validate = validator.validate
        for c in chunks:
            for raw in f.feed(c):
                m = parse(raw)
                if validate(m) is not None:
                    raise AssertionError(f"bench message rejected: {validate(m)}")
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
    variants = {"ours": (ours, n), "ours_framed": (ours_framed, n), "ours_validated": (ours_validated, n),
                "simplefix": (simple, min(n, 2000)),
                "split_soh": (split_soh, n), "split_pairs": (split_pairs, n)}
    full = msgs
    rates: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, (fn, count) in variants.items():
            if count < len(full):
                msgs = full[:count]
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            c1, t1 = time.process_time(), time.perf_counter()
            rates[name].append(count / (t1 - t0))
            cpu[name].append(count / max(c1 - c0, 1e-9))
            msgs = full
    out: dict[str, float] = {"msg_bytes": round(statistics.mean(len(m) for m in full))}
    for name in variants:
        out[name] = max(rates[name])
        out[f"{name}_median"] = statistics.median(rates[name])
        out[f"{name}_cpu"] = max(cpu[name])  # per CPU second (process time; coarse on short runs)
        out[f"{name}_cpu_median"] = statistics.median(cpu[name])
    return out


PARSE_VARIANTS = ("ours", "ours_framed", "ours_validated", "simplefix", "split_soh", "split_pairs")


# --- end to end -------------------------------------------------------------------------------------

ACCEPTOR_CHILD = """
import asyncio, os, sys
from engines.fix.acceptor import Acceptor
from engines.fix.application import Application
from engines.fix.errors import UnsupportedMessageType
from engines.fix.message import Message
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import MemoryStore, SqliteStore

class Fills(Application):
    # Answers every NewOrderSingle with an ExecutionReport (new), like a venue acknowledging it.
    n = 0
    def from_app(self, msg, session):
        if msg.msg_type != "D":
            raise UnsupportedMessageType(msg.msg_type)
        Fills.n += 1
        g = msg.get
        session.send_nowait(Message("8", [
            (37, b"M%d" % Fills.n), (11, g(11)), (17, b"E%d" % Fills.n), (150, b"0"), (39, b"0"),
            (55, g(55)), (54, g(54)), (38, g(38)), (40, g(40)), (44, g(44)), (151, g(38)), (14, b"0"), (6, b"0"),
            (60, g(60)),
        ]))

async def main(db):
    s = Session(SessionID("FIX.4.4", "OPDESK", "BENCH"), SessionSettings(heartbeat_interval=30,
                publish_messages=False, sending_time_window=600), Fills(),
                SqliteStore(db) if db != "memory" else MemoryStore())
    acc = Acceptor([s])
    await acc.start()
    print(acc.port, flush=True)
    await control()
    await acc.stop()
""" + CHILD_CONTROL + """
asyncio.run(main(sys.argv[1]))
"""


def new_order(i: int, cl: bytes) -> Message:
    return Message("D", [(11, cl), (55, b"BTC-USD"), (54, b"1"), (38, b"1.000"), (40, b"2"),
                         (44, b"64250.50"), (59, b"0"), (60, b"20260101-00:00:00.000")])


async def bench_e2e(n: int, window: int, runs: int, tmp: Path, memory: bool = False,
                    profile: str | None = None) -> dict[str, Any]:
    env = {"FIX_BENCH_PROFILE": f"{profile}/fix_acceptor.prof"} if profile else None
    child, port = start_child(ACCEPTOR_CHILD, "memory" if memory else str(tmp / "acceptor.db"), env=env)
    try:
        client = await connect(port, None if memory else tmp / "initiator.db")
        m = await measure(client, child, n, window, runs, new_order,
                          profile=profile and f"{profile}/fix_initiator.prof", refill=window // 2)
        saves = getattr(client.store, "saves", 0)
        await client.close()
        return {
            **m.figures(n, window),
            "cpu_us_per_order_initiator": min(m.local_cpu_us),
            "cpu_us_per_order_initiator_median": statistics.median(m.local_cpu_us),
            "cpu_us_per_order_acceptor": min(m.child_cpu_us),
            "cpu_us_per_order_acceptor_median": statistics.median(m.child_cpu_us),
            "initiator_store_commits": saves,
            "store": "memory" if memory else "sqlite",
        }
    finally:
        stop_child(child)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parse-n", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--orders", type=int, default=50_000)
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3, help="end-to-end runs (best and median reported)")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--no-parse", action="store_true", help="skip the parse figures")
    ap.add_argument("--no-e2e", action="store_true", help="skip the end-to-end figures")
    ap.add_argument("--memory-store", action="store_true", help="diagnostic: MemoryStore on both sides")
    ap.add_argument("--profile", metavar="DIR", help="cProfile both processes into DIR/fix_*.prof")
    args = ap.parse_args()
    if args.quick:
        args.parse_n, args.repeat, args.orders, args.runs = 5_000, 2, 3_000, 1
    figures: dict[str, Any] = {
        "bench": "fix",
        "machine": f"{os.cpu_count()}-core {platform.machine()}, Python {platform.python_version()}",
        "load_avg_1m_start": round(load_average(), 2),
    }
    print(f"{figures['machine']}, load average {figures['load_avg_1m_start']:.2f} at the start")

    if not args.no_parse:
        p = bench_parse(args.parse_n, args.repeat)
        print(f"parse {p['msg_bytes']}-byte ExecutionReports (MsgType + 6 fields read), msgs/s over {args.repeat} "
              "interleaved runs (wall best / wall median / per CPU-second best / CPU median):")
        for k in PARSE_VARIANTS:
            print(f"  {k:<14} {p[k]:>12,.0f} {p[k + '_median']:>12,.0f} {p[k + '_cpu']:>12,.0f}"
                  f" {p[k + '_cpu_median']:>12,.0f}")
        print(f"  ours / simplefix = {p['ours'] / p['simplefix']:.1f}x   ours / split_soh = "
              f"{p['ours'] / p['split_soh']:.2f}   ours / split_pairs = {p['ours'] / p['split_pairs']:.2f}")
        figures["parse_msg_bytes"] = p["msg_bytes"]
        for k in PARSE_VARIANTS:
            figures[f"parse_{k}_per_s"] = round(p[k])
            figures[f"parse_{k}_per_s_median"] = round(p[k + "_median"])
            figures[f"parse_{k}_per_cpu_s"] = round(p[k + "_cpu"])
            figures[f"parse_{k}_per_cpu_s_median"] = round(p[k + "_cpu_median"])
        figures["parse_ratio_vs_simplefix"] = round(p["ours"] / p["simplefix"], 1)
        figures["parse_ratio_vs_split_pairs"] = round(p["ours"] / p["split_pairs"], 2)

    if not args.no_e2e:
        with tempfile.TemporaryDirectory() as tmp:
            e = asyncio.run(bench_e2e(args.orders, args.window, args.runs, Path(tmp), args.memory_store,
                                      args.profile))
        print(f"end to end, {e['runs']} x {e['orders']:,} NewOrderSingle -> ExecutionReport over loopback, "
              f"{e['store']} store both sides (load average {e['load_avg_1m']:.2f}):")
        print(f"  window {e['window']}: best {e['orders_per_s']:,.0f} orders/s, median {e['orders_per_s_median']:,.0f};"
              f" round trip p50 {e['rtt_p50_ms']:.2f} ms, p99 {e['rtt_p99_ms']:.2f} ms"
              f" ({e['initiator_store_commits']:,} initiator commits)")
        cpu_i, cpu_a = e["cpu_us_per_order_initiator"], e["cpu_us_per_order_acceptor"]
        print(f"  CPU per order (best / median): initiator {cpu_i:.1f} / {e['cpu_us_per_order_initiator_median']:.1f} us,"
              f" acceptor {cpu_a:.1f} / {e['cpu_us_per_order_acceptor_median']:.1f} us (a free core each would allow "
              f"{1e6 / max(cpu_i, cpu_a, 1e-9):,.0f} orders/s; one core for both {1e6 / (cpu_i + cpu_a):,.0f})")
        print(f"  one at a time: p50 {e['single_rtt_p50_ms']:.3f} ms, p99 {e['single_rtt_p99_ms']:.3f} ms "
              f"({e['single_orders_per_s']:,.0f} orders/s)")
        figures.update({f"e2e_{k}": (round(v, 3) if isinstance(v, float) else v) for k, v in e.items()})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
