"""The client side shared by the FIX benches (``bench/fix.py``, ``bench/fix_gateway.py``).

One of our initiator sessions (SqliteStore unless told otherwise) sends NewOrderSingles keeping a
window of orders in flight and times each round trip (NewOrderSingle queued -> its acknowledging
ExecutionReport handled). Also: the peer child process (a script on stdin/stdout that prints its port
first, then answers CHILD_CONTROL commands: its CPU time, start/stop a profile), percentiles, the load
average, and an optional cProfile of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engines.fix.application import Application
from engines.fix.events import SessionState
from engines.fix.initiator import Initiator
from engines.fix.message import FixMessage, Message
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import MemoryStore, MessageStore, SqliteStore

#: ExecType values that acknowledge an order (New, Rejected): the round trip ends there.
ACK_EXEC_TYPES = (b"0", b"8")


class OrderClient(Application):
    """Counts ExecutionReports, measures round trips and opens the window as acknowledgements arrive.

    ``ack_only_new``: only 150=0/8 acknowledges an order (the gateway also sends fills); otherwise
    every report does (the plain acceptor answers each order with exactly one report).
    """

    def __init__(self, ack_only_new: bool = False) -> None:
        self.ack_only_new = ack_only_new
        self.sent_at: dict[bytes, float] = {}
        self.rtts: list[float] = []
        self.acks = 0
        self.reports = 0
        self.rejects = 0
        self.target = 0  # reports to wait for
        self.low_water = 0  # wake the sender once acks reach this
        self.done = asyncio.Event()
        self.room = asyncio.Event()

    def from_app(self, msg: FixMessage, session: Session) -> None:
        self.reports += 1
        if self.ack_only_new:
            et = msg.get(150)
            if et not in ACK_EXEC_TYPES:
                if self.reports >= self.target:
                    self.done.set()
                return
            if et == b"8":
                self.rejects += 1
        t = self.sent_at.pop(msg.get(11) or b"", None)
        if t is not None:
            self.rtts.append(time.perf_counter() - t)
        self.acks += 1
        if self.acks >= self.low_water:
            self.room.set()
        if self.reports >= self.target:
            self.done.set()


@dataclass
class Client:
    session: Session
    app: OrderClient
    initiator: Initiator
    store: MessageStore

    async def close(self) -> None:
        await self.initiator.stop("bench done")
        await self.store.close()


async def connect(port: int, store_path: Path | None, *, ack_only_new: bool = False) -> Client:
    """Log on as BENCH -> OPDESK (FIX 4.4) over loopback; ``store_path`` None = MemoryStore."""
    app = OrderClient(ack_only_new)
    store: MessageStore = SqliteStore(store_path) if store_path is not None else MemoryStore()
    session = Session(
        SessionID("FIX.4.4", "BENCH", "OPDESK"),
        SessionSettings(heartbeat_interval=30, publish_messages=False, sending_time_window=600),
        app,
        store,
    )
    ini = Initiator(session, "127.0.0.1", port, seed=1)
    await ini.start()
    await session.wait_state(SessionState.ACTIVE, 10)
    return Client(session, app, ini, store)


async def run_orders(
    client: Client,
    n: int,
    window: int,
    start: int,
    order: Callable[[int, bytes], Message],
    *,
    reports_per_order: int = 1,
    refill: int = 1,
    timeout: float = 300,
) -> float:
    """Send ``n`` orders (``order(i, clordid)``) keeping at most ``window`` unacknowledged; returns the
    seconds until every expected report arrived. With the window full the sender blocks (never spins:
    on 2 cores a spinning sender steals CPU from the peer) until ``refill`` places are free."""
    app, session = client.app, client.session
    app.acks = app.reports = app.rejects = 0
    app.target = n * reports_per_order
    app.low_water = 0
    app.done.clear()
    app.rtts.clear()
    refill = max(1, min(refill, window))
    t0 = time.perf_counter()
    sent = 0
    while sent < n:
        while sent < n and sent - app.acks < window:
            cl = b"B%d" % (start + sent)
            app.sent_at[cl] = time.perf_counter()
            session.send_nowait(order(sent, cl))
            sent += 1
        if sent - app.acks >= window:
            app.room.clear()
            app.low_water = sent - window + refill
            await app.room.wait()
    await asyncio.wait_for(app.done.wait(), timeout)
    return time.perf_counter() - t0


@dataclass
class Measured:
    """What ``measure`` saw: per measured run the rate and CPU µs per order of this process and of the
    child; every round trip of the loaded runs; the load; then one order at a time."""

    rates: list[float]
    local_cpu_us: list[float]
    child_cpu_us: list[float]
    rtts: list[float]
    loads: list[float]
    rejects: int
    single_rtts: list[float]
    single_orders_per_s: float

    def figures(self, n: int, window: int) -> dict[str, float | int]:
        """The figures both FIX benches report in the same words."""
        return {
            "orders": n,
            "window": window,
            "runs": len(self.rates),
            "orders_per_s": max(self.rates),
            "orders_per_s_median": statistics.median(self.rates),
            "rtt_p50_ms": percentile(self.rtts, 50) * 1e3,
            "rtt_p99_ms": percentile(self.rtts, 99) * 1e3,
            "single_rtt_p50_ms": percentile(self.single_rtts, 50) * 1e3,
            "single_rtt_p99_ms": percentile(self.single_rtts, 99) * 1e3,
            "single_orders_per_s": self.single_orders_per_s,
            "load_avg_1m": statistics.median(self.loads),
        }


async def measure(
    client: Client,
    child: subprocess.Popen[str],
    n: int,
    window: int,
    runs: int,
    order: Callable[[int, bytes], Message],
    *,
    profile: str | None = None,
    **run_kw: int,
) -> Measured:
    """A warm-up, ``runs`` measured runs of ``n`` orders (the child profiled during them when
    ``profile`` names this process's profile file), then ``min(2000, n)`` orders one at a time."""
    await run_orders(client, min(2000, n), window, 0, order, **run_kw)
    out = Measured([], [], [], [], [], 0, [], 0.0)
    with profiled(profile):
        for r in range(runs):
            if profile:
                child_command(child, "profile")
            child0, local0 = float(child_command(child, "cpu") or 0), time.process_time()
            elapsed = await run_orders(client, n, window, 10_000_000 * (r + 1), order, **run_kw)
            child1, local1 = float(child_command(child, "cpu") or 0), time.process_time()
            if profile:
                child_command(child, "unprofile")
            out.rates.append(n / elapsed)
            out.child_cpu_us.append((child1 - child0) / n * 1e6)
            out.local_cpu_us.append((local1 - local0) / n * 1e6)
            out.rtts.extend(client.app.rtts)
            out.rejects += client.app.rejects
            out.loads.append(load_average())
    single_n = min(2000, n)
    out.single_orders_per_s = single_n / await run_orders(
        client, single_n, 1, 90_000_000, order, **{k: v for k, v in run_kw.items() if k != "refill"})
    out.single_rtts = list(client.app.rtts)
    return out


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def load_average() -> float:
    """1-minute load average (the machine is shared: figures follow it)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def start_child(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    """Run ``code`` with ``python -c`` in a child; it prints its listening port first."""
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.strip():
        child.kill()
        raise RuntimeError("bench child failed to start")
    return child, int(line)


def stop_child(child: subprocess.Popen[str], timeout: float = 20) -> None:
    if child.poll() is None:
        if child.stdin is not None and not child.stdin.closed:
            child.stdin.close()
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()


@contextlib.contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """cProfile this process into ``path`` (pstats format) when a path is given."""
    if not path:
        yield
        return
    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").dump_stats(path)


#: Child-side control loop, pasted into the bench children: reads commands from stdin until it ends.
#: ``cpu`` -> prints the child's CPU seconds so far; ``profile`` / ``unprofile`` start / stop a cProfile
#: of the child (dumped to $FIX_BENCH_PROFILE when it stops). Defines ``async def control()``.
CHILD_CONTROL = '''
async def control():
    import asyncio, os, sys, time
    loop = asyncio.get_running_loop()
    prof = None
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if not line:
            break
        if line == "cpu":
            print(time.process_time(), flush=True)
        elif line == "profile" and os.environ.get("FIX_BENCH_PROFILE"):
            import cProfile
            prof = cProfile.Profile()
            prof.enable()
        elif line == "unprofile" and prof is not None:
            prof.disable()
            prof.dump_stats(os.environ["FIX_BENCH_PROFILE"])
            prof = None
'''


def child_command(child: subprocess.Popen[str], command: str) -> str | None:
    """Send a CHILD_CONTROL command; returns the answer line of ``cpu``."""
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(command + "\n")
    child.stdin.flush()
    return child.stdout.readline().strip() if command == "cpu" else None
