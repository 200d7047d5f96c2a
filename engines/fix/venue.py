"""A desk venue over a FIX initiator session: bots and the operator trade with a FIX counterparty.

:class:`FixVenue` implements :class:`engines.venue.Venue`. It is also the initiator session's
:class:`~engines.fix.application.Application`: orders go out as NewOrderSingle (35=D),
OrderCancelRequest (F) and OrderCancelReplaceRequest (G); ExecutionReports (8) and OrderCancelRejects
(9) come back and are published as the desk's own order events (``OrderAccepted``, ``Fill``,
``OrderCanceled``, ``OrderReplaced``, ``OrderRejected``, ``CancelRejected``) with ``venue=<name>``, so the
risk engine, the bots and the console see a FIX venue exactly like the in-process one.

The desk's ``client_id`` is the ClOrdID (11); a cancel gets its own ClOrdID ``<client_id>.c<n>``. The
counterparty's OrderID (37) becomes the desk's integer ``order_id`` (itself when numeric, else a local
number). ``cancel`` waits for the counterparty's answer (``cancel_timeout``) so the kill switch knows
what was confirmed.

``open_orders`` asks the counterparty (the truth after a restart, a disconnect, or reports a
counterparty dropped while we were away): on FIX 4.4 one OrderMassStatusRequest (35=AF, 585=7 all
orders or 585=1 with the symbol), answered by ExecutionReports 150=I carrying 584 and 911/912; on FIX
4.2 (no AF), or when the counterparty refuses AF (BusinessMessageReject), one OrderStatusRequest (35=H)
per ClOrdID the venue knows. Without a logged-on session, or without a complete answer within
``status_timeout``, it raises :class:`OrderStatusUnavailable` — the open orders are *unknown*, and a
caller must not close orders it cannot verify.

Owners: a counterparty knows ClOrdIDs, not the desk's bots. The venue's order map (ClOrdID → owner,
symbol, side) is kept in SQLite (:class:`~engines.fix.venue_store.VenueOrderStore`) and committed before
the message that uses a ClOrdID leaves, so every order the counterparty reports — after a restart, even
a SIGKILL — is attributed to the bot that sent it. Reported orders the map does not hold (sent by
someone else on the same session) get ``owner=""``: a desk-wide query (the kill switch's) sees and
cancels them, no bot adopts them.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import sqlite3
from collections import deque
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from engines.bus import Bus
from engines.clock import Clock, SystemClock
from engines.fix.application import Application
from engines.fix.errors import SessionNotActive
from engines.fix.events import SessionState
from engines.fix.message import FixMessage, Message, utc_timestamp
from engines.fix.venue_store import StoredOrder, VenueOrderStore
from engines.instruments import Instrument
from engines.orders import (
    CancelRejected,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderReplaced,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from engines.venue import CancelResult, OpenOrder
from engines.waits import wait_event

if TYPE_CHECKING:
    from engines.fix.session import Session

log = logging.getLogger(__name__)

_SIDE_CODE = {Side.BUY: "1", Side.SELL: "2"}
_SIDES = {"1": Side.BUY, "2": Side.SELL}
_TIF_CODE = {TimeInForce.GTC: "1", TimeInForce.IOC: "3", TimeInForce.FOK: "4"}
_FILL_TYPES = frozenset({"F", "1", "2"})
# OrdStatus (39) of an order no longer working at the counterparty (4.2's 5 = replaced, 3 = done for day).
_CLOSED_STATUS = {
    "2": OrderStatus.FILLED, "4": OrderStatus.CANCELED, "8": OrderStatus.REJECTED, "C": OrderStatus.EXPIRED,
    "3": OrderStatus.EXPIRED, "5": OrderStatus.CANCELED,
}  # fmt: skip


class OrderStatusUnavailable(ConnectionError):
    """The counterparty's open orders cannot be known now (session down, or no complete answer in time)."""


class _MassStatusRefused(Exception):
    """The counterparty answered AF with a BusinessMessageReject: it does not support it."""


class _MassCancelRefused(Exception):
    """The counterparty refused q (BusinessMessageReject or session Reject): per-order cancels instead."""


@dataclass(slots=True)
class _MassStatus:
    fut: asyncio.Future[list[OpenOrder]]
    symbol: str | None
    reports: list[OpenOrder]
    seen: int = 0


@dataclass(slots=True)
class _VenueOrder:
    req: OrderRequest
    client_id: str  # the current ClOrdID (changes on replace)
    price: int | None
    qty: int  # total lots
    order_id: int = 0
    remote_id: str = ""
    cum: int = 0
    notional: int = 0  # ticks x lots of the fills heard (a status report's AvgPx tells the rest)
    status: OrderStatus = OrderStatus.PENDING_NEW
    pending_replace: tuple[str, int | None, int] | None = None  # (new ClOrdID, price, new leaves)
    sent: int = 0  # the venue's send counter when it went out (0: restored from the store, unverified)
    baseline: bool = True  # False: restored, its CumQty before the restart unknown until a report says it

    @property
    def leaves(self) -> int:
        return max(0, self.qty - self.cum) if self.status.is_open else 0


class FixVenue(Application):
    """A :class:`~engines.venue.Venue` whose orders travel over one FIX initiator session."""

    def __init__(
        self,
        name: str,
        *,
        bus: Bus,
        instruments: dict[str, Instrument],
        session: Session | None = None,
        clock: Clock | None = None,
        cancel_timeout: float = 5.0,
        account: str = "",
        store: VenueOrderStore | None = None,
        status_timeout: float = 5.0,
    ) -> None:
        self.name = name
        self.bus = bus
        self.instruments = instruments
        self.session = session
        self.clock: Clock = clock or SystemClock()
        self.cancel_timeout = cancel_timeout
        self.account = account
        self._orders: dict[str, _VenueOrder] = {}  # every ClOrdID we used (order, cancel, replace) -> order
        self._by_owner_client: dict[tuple[str, str], _VenueOrder] = {}
        self._remote_ids: dict[str, int] = {}
        self._local_ids = itertools.count(1)
        # Fill.trade_id is ours to number; bots dedupe fills on (order_id, trade_id) and order ids outlive
        # a restart, so the numbering must too: it starts at the clock (microseconds), not at 1.
        self._trade_ids = itertools.count(self.clock.time_ns() // 1_000)
        self._cancel_seq = itertools.count(1)
        self._cancel_waiters: dict[str, asyncio.Future[CancelResult]] = {}
        self._exec_seen: set[str] = set()
        self._exec_order: deque[str] = deque()
        self.store = store
        self.status_timeout = status_timeout
        self._sends = 0  # messages that can create or change an order, counted (see _VenueOrder.sent)
        self._status_seq = itertools.count(1)
        self._mass: dict[str, _MassStatus] = {}  # MassStatusReqID -> request in progress
        self._h_waiters: dict[str, list[asyncio.Future[OpenOrder | None]]] = {}  # ClOrdID -> H answers due
        self.mass_status = True  # False once the counterparty refused AF: H per order from then on
        # FIX 4.4 OrderMassCancelRequest (q) for a desk-wide cancel_all; off by default (the desk's service
        # turns it on for its own loopback), and off for good once the counterparty refuses it.
        self.mass_cancel = False
        self._mass_cancels: dict[str, asyncio.Future[FixMessage]] = {}  # ClOrdID of a q -> its r
        self._mc_seq = itertools.count(1)
        self._closed_evt = asyncio.Event()  # set whenever an order is forgotten (closed)
        self.counts = {
            "sent": 0, "reports": 0, "fills": 0, "rejects": 0, "duplicates": 0, "status_reports": 0,
            "status_requests": 0, "restored": 0, "adopted": 0, "vanished": 0, "mass_cancels": 0,
        }  # fmt: skip

    # --- persistence --------------------------------------------------------------------------------
    def restore(self) -> int:
        """Open the store and load the orders it holds open (their state unverified until the
        counterparty reports on them). Returns how many."""
        if self.store is None:
            return 0
        n = 0
        for row in self.store.open(self.clock.time_ns()):
            if row.cl_ord_id in self._orders or row.symbol not in self.instruments:
                continue
            side = Side(row.side)
            req = OrderRequest(
                symbol=row.symbol, side=side, qty=row.qty, price=row.price, client_id=row.cl_ord_id,
                owner=row.owner, venue=self.name,
            )  # fmt: skip
            vo = _VenueOrder(req, row.cl_ord_id, row.price, row.qty, status=OrderStatus.NEW, baseline=False)
            self._orders[row.cl_ord_id] = vo
            self._by_owner_client[(row.owner, row.cl_ord_id)] = vo
            n += 1
        self.counts["restored"] = n
        return n

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def _persist(self, vo: _VenueOrder, cl_ord_id: str) -> None:
        """ClOrdID -> owner on disk before the message carrying it leaves."""
        if self.store is not None:
            req = vo.req
            self.store.opened(
                StoredOrder(cl_ord_id, req.owner, req.symbol, req.side.value, vo.price, vo.qty),
                self.clock.time_ns(),
            )

    # --- Application --------------------------------------------------------------------------------
    def on_create(self, session: Session) -> None:
        self.session = session

    def from_app(self, msg: FixMessage, session: Session) -> None:
        t = msg.msg_type
        if t == "8":
            if msg.get(150) == b"I" or msg.get(20) == b"3":
                self._status_report(msg)
            else:
                self._execution_report(msg)
        elif t == "9":
            self._cancel_reject(msg)
        elif t == "r":
            fut = self._mass_cancels.get(msg.get_str(11, "") or "")
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif t == "j":
            self._business_reject(msg)
        # Market data and anything else the counterparty sends are not the venue's business.

    def from_admin(self, msg: FixMessage, session: Session) -> None:
        if msg.msg_type == "3" and msg.get(372) in (b"AF", b"q"):
            self._business_reject(msg)  # a session-level Reject of AF/q (a dictionary without it): refused too

    def on_logout(self, session: Session) -> None:
        # Answers still due will not come on this connection: the callers learn it now, not at timeout.
        exc = OrderStatusUnavailable(f"FIX venue {self.name}: session logged out before the status answer")
        for ms in self._mass.values():
            if not ms.fut.done():
                ms.fut.set_exception(exc)
        for futs in self._h_waiters.values():
            for f in futs:
                if not f.done():
                    f.set_exception(exc)
        for f in self._mass_cancels.values():
            if not f.done():
                f.set_exception(SessionNotActive(f"FIX venue {self.name}: logged out before the mass cancel answer"))

    # --- Venue --------------------------------------------------------------------------------------
    @property
    def session_id(self) -> str:
        """The session's id string (``FIX.4.4:SENDER->TARGET``): the risk rules match venues by it."""
        return self.session.key if self.session is not None else ""

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.state == SessionState.ACTIVE

    def _send(self, msg: Message) -> None:
        if self.session is None:
            raise SessionNotActive(f"FIX venue {self.name} has no session")
        self.session.send_nowait(msg)
        self.counts["sent"] += 1

    async def submit(self, order: OrderRequest) -> None:
        inst = self.instruments.get(order.symbol)
        client_id = order.client_id or f"{self.name}-{next(self._local_ids)}"
        if inst is None:
            self._reject(order, client_id, f"unknown symbol {order.symbol}")
            return
        if not self.connected:
            self._reject(order, client_id, f"FIX session of venue {self.name} is not logged on")
            return
        if client_id in self._orders:
            self._reject(order, client_id, f"duplicate client id {client_id}")
            return
        vo = _VenueOrder(order, client_id, order.price, order.qty)
        m = Message("D", [(11, client_id)])
        if self.account:
            m.append(1, self.account)
        m.append(21, "1")
        if order.post_only:
            m.append(18, "6")
        m.append(55, order.symbol)
        m.append(54, _SIDE_CODE[order.side])
        m.append(60, utc_timestamp(self.clock.time_ns()))
        m.append(38, inst.fmt_qty(order.qty))
        if order.type is OrderType.MARKET or order.price is None:
            m.append(40, "1")
        else:
            m.append(40, "2")
            m.append(44, inst.fmt_price(order.price))
        m.append(59, _TIF_CODE[order.tif])
        try:
            self._persist(vo, client_id)
        except Exception as exc:  # an order whose owner could be lost in a restart is not sent
            log.exception("fix venue %s: order store write failed", self.name)
            self._reject(order, client_id, f"FIX venue {self.name}: order store write failed: {exc}")
            return
        self._orders[client_id] = vo
        self._by_owner_client[(order.owner, client_id)] = vo
        self._sends += 1
        vo.sent = self._sends
        try:
            self._send(m)
        except SessionNotActive as exc:
            self._forget(vo)
            self._reject(order, client_id, str(exc) or f"FIX session of venue {self.name} is not logged on")

    async def cancel(self, symbol: str, client_id: str, owner: str) -> CancelResult:
        vo = self._by_owner_client.get((owner, client_id))
        if vo is None or not vo.status.is_open:
            return CancelResult(self.name, symbol, None, client_id, owner, False, "unknown order")
        cancel_id = f"{vo.client_id}.c{next(self._cancel_seq)}"
        m = Message("F", [(41, vo.client_id), (11, cancel_id)])
        if vo.remote_id:
            m.fields.insert(0, (37, vo.remote_id.encode("latin-1")))
        m.append(55, symbol)
        m.append(54, _SIDE_CODE[vo.req.side])
        m.append(60, utc_timestamp(self.clock.time_ns()))
        m.append(38, self.instruments[symbol].fmt_qty(vo.qty))
        fut: asyncio.Future[CancelResult] = asyncio.get_running_loop().create_future()
        self._orders[cancel_id] = vo
        self._cancel_waiters[cancel_id] = fut
        try:
            self._send(m)
            return await asyncio.wait_for(fut, self.cancel_timeout)
        except SessionNotActive:
            return CancelResult(
                self.name, symbol, vo.order_id or None, client_id, owner, False, "not logged on"
            )
        except TimeoutError:
            return CancelResult(
                self.name, symbol, vo.order_id or None, client_id, owner, False, "no answer in time"
            )
        finally:
            self._cancel_waiters.pop(cancel_id, None)
            self._orders.pop(cancel_id, None)

    async def replace(
        self, symbol: str, client_id: str, owner: str, new_client_id: str, price: int | None, qty: int
    ) -> None:
        """``qty`` is the new open (leaves) quantity, as for the desk's other venues."""
        vo = self._by_owner_client.get((owner, client_id))
        if vo is None or not vo.status.is_open:
            self.bus.publish(
                CancelRejected(
                    symbol=symbol, order_id=None, client_id=client_id, owner=owner, reason="unknown order",
                    venue=self.name,
                )
            )  # fmt: skip
            return
        inst = self.instruments[symbol]
        new_price = vo.price if price is None else price
        m = Message("G", [(41, vo.client_id), (11, new_client_id)])
        if vo.remote_id:
            m.fields.insert(0, (37, vo.remote_id.encode("latin-1")))
        m.append(21, "1")
        m.append(55, symbol)
        m.append(54, _SIDE_CODE[vo.req.side])
        m.append(60, utc_timestamp(self.clock.time_ns()))
        m.append(38, inst.fmt_qty(vo.cum + qty))  # FIX OrderQty is the total including what has filled
        m.append(40, "2" if new_price is not None else "1")
        if new_price is not None:
            m.append(44, inst.fmt_price(new_price))
        vo.pending_replace = (new_client_id, new_price, qty)
        self._orders[new_client_id] = vo
        try:
            self._persist(vo, new_client_id)
            self._sends += 1
            vo.sent = self._sends
            self._send(m)
        except (SessionNotActive, sqlite3.Error):
            vo.pending_replace = None
            self._orders.pop(new_client_id, None)
            self.bus.publish(
                CancelRejected(
                    symbol=symbol, order_id=vo.order_id or None, client_id=client_id, owner=owner,
                    reason=f"FIX session of venue {self.name} is not logged on", venue=self.name,
                )
            )  # fmt: skip

    async def open_orders(self, owner: str | None = None, symbol: str | None = None) -> list[OpenOrder]:
        """The open orders as the counterparty reports them now (see the module doc); raises
        :class:`OrderStatusUnavailable` when that cannot be known."""
        reports = await self.order_status(symbol)
        return [o for o in reports if owner is None or o.owner == owner]

    def known_orders(self, owner: str | None = None, symbol: str | None = None) -> list[OpenOrder]:
        """What this process believes is open (sent and heard, or restored unverified): no round trip."""
        out = []
        for (o, _), vo in self._by_owner_client.items():
            if not vo.status.is_open or (owner is not None and o != owner):
                continue
            if symbol is not None and vo.req.symbol != symbol:
                continue
            out.append(self._open_order(vo))
        return out

    def _open_order(self, vo: _VenueOrder) -> OpenOrder:
        req = vo.req
        return OpenOrder(
            self.name, req.symbol, vo.order_id, vo.client_id, req.owner, req.side, vo.price, vo.leaves, vo.cum
        )

    async def order_status(self, symbol: str | None = None) -> list[OpenOrder]:
        """Ask the counterparty for every open order of this session (of ``symbol``)."""
        session = self.session
        if session is None or not self.connected:
            raise OrderStatusUnavailable(f"FIX venue {self.name}: session not logged on, open orders unknown")
        self.counts["status_requests"] += 1
        if self.mass_status and session.session_id.begin_string != "FIX.4.2":
            try:
                return await self._mass_status_request(symbol)
            except _MassStatusRefused:
                log.warning("fix venue %s: counterparty refused AF; asking per order (H)", self.name)
        return await self._status_by_order(symbol)

    async def _mass_status_request(self, symbol: str | None) -> list[OpenOrder]:
        req_id = f"{self.name}-ms{next(self._status_seq)}-{self.clock.time_ns() // 1_000_000}"
        mark = self._sends
        m = Message("AF", [(584, req_id), (585, "7" if symbol is None else "1")])
        if self.account:
            m.append(1, self.account)
        if symbol is not None:
            m.append(55, symbol)
        ms = _MassStatus(asyncio.get_running_loop().create_future(), symbol, [])
        self._mass[req_id] = ms
        try:
            self._send(m)
            reports = await asyncio.wait_for(ms.fut, self.status_timeout)
        except SessionNotActive:
            raise OrderStatusUnavailable(f"FIX venue {self.name}: session not logged on") from None
        except TimeoutError:
            raise OrderStatusUnavailable(
                f"FIX venue {self.name}: no complete mass status answer in {self.status_timeout:g}s "
                f"({ms.seen} report(s) received)"
            ) from None
        finally:
            self._mass.pop(req_id, None)
        reported = {o.client_id for o in reports}
        gone = self._not_reported(symbol, mark, reported)
        if gone:
            # Closed there while we were not hearing (reports dropped during a disconnect): ask each (H),
            # so fills we missed are learned from CumQty/AvgPx. Whatever is not answered is dropped below.
            try:
                await self._ask_each(gone)
            except OrderStatusUnavailable as exc:
                log.warning(
                    "fix venue %s: final status of %d order(s) unknown: %s", self.name, len(gone), exc
                )
        self._vanished(symbol, mark, reported)
        return reports

    async def _status_by_order(self, symbol: str | None) -> list[OpenOrder]:
        mark = self._sends
        asked = [
            vo for vo in {id(v): v for v in self._by_owner_client.values()}.values()
            if vo.status.is_open and vo.sent <= mark and (symbol is None or vo.req.symbol == symbol)
        ]  # fmt: skip
        return await self._ask_each(asked)

    async def _ask_each(self, asked: list[_VenueOrder]) -> list[OpenOrder]:
        """One OrderStatusRequest (H) per order, all at once; the open ones as reported."""
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[OpenOrder | None]] = []
        for vo in asked:
            fut: asyncio.Future[OpenOrder | None] = loop.create_future()
            self._h_waiters.setdefault(vo.client_id, []).append(fut)
            futs.append(fut)
            m = Message("H", [(11, vo.client_id)])
            if vo.remote_id:
                m.fields.insert(0, (37, vo.remote_id.encode("latin-1")))
            if self.account:
                m.append(1, self.account)
            m.append(55, vo.req.symbol)
            m.append(54, _SIDE_CODE[vo.req.side])
            try:
                self._send(m)
            except SessionNotActive:
                self._drop_h_waiters(asked, futs)
                raise OrderStatusUnavailable(f"FIX venue {self.name}: session not logged on") from None
        try:
            answers = await asyncio.wait_for(asyncio.gather(*futs), self.status_timeout) if futs else []
        except TimeoutError:
            raise OrderStatusUnavailable(
                f"FIX venue {self.name}: no status answer for every order in {self.status_timeout:g}s"
            ) from None
        finally:
            self._drop_h_waiters(asked, futs)
        return [a for a in answers if a is not None]

    def _drop_h_waiters(self, asked: list[_VenueOrder], futs: list[asyncio.Future[OpenOrder | None]]) -> None:
        mine = set(map(id, futs))
        for vo in asked:
            left = [f for f in self._h_waiters.get(vo.client_id, ()) if id(f) not in mine]
            if left:
                self._h_waiters[vo.client_id] = left
            else:
                self._h_waiters.pop(vo.client_id, None)
        for f in futs:
            if not f.done():
                f.cancel()

    def _not_reported(self, symbol: str | None, mark: int, reported: set[str]) -> list[_VenueOrder]:
        return [
            vo for vo in {id(v): v for v in self._by_owner_client.values()}.values()
            if vo.status.is_open and vo.sent <= mark and vo.client_id not in reported
            and (symbol is None or vo.req.symbol == symbol)
        ]  # fmt: skip

    def _vanished(self, symbol: str | None, mark: int, reported: set[str]) -> None:
        """A complete answer is the truth: what we hold open (sent before the request) and the
        counterparty did not report is no longer working there (filled or canceled while the reports
        were not reaching us). Forgotten here; the owner closes its own record on reconciling."""
        gone = self._not_reported(symbol, mark, reported)
        for vo in gone:
            log.info(
                "fix venue %s: %s (%s) not open at the counterparty", self.name, vo.client_id, vo.req.owner
            )
            vo.status = OrderStatus.CANCELED if vo.cum < vo.qty else OrderStatus.FILLED
            self._forget(vo)
        self.counts["vanished"] += len(gone)

    async def cancel_all(self, owner: str | None = None, symbol: str | None = None) -> list[CancelResult]:
        """Cancel what we hold open at once (a kill must not wait for a status round trip), and whatever
        else the counterparty reports open (a previous life's orders) once it answers. If it cannot
        answer, the orders we hold are still cancelled; the others stay as unknown as they were.

        Desk-wide (``owner`` None) on FIX 4.4 with ``mass_cancel`` on: one OrderMassCancelRequest instead
        (see :meth:`_mass_cancel`), which also reaches orders of a previous life without a status round
        trip; per-order cancels remain the fallback."""
        if owner is None and self.mass_cancel and self.connected and self.session is not None \
                and self.session.session_id.begin_string != "FIX.4.2":  # fmt: skip
            results = await self._mass_cancel(symbol)
            if results is not None:
                return results
        known = self.known_orders(owner, symbol)
        asked = {(o.owner, o.client_id) for o in known}
        first = asyncio.gather(*(self.cancel(o.symbol, o.client_id, o.owner) for o in known))
        try:
            reported = await self.open_orders(owner, symbol) if self.connected else []
        except OrderStatusUnavailable as exc:
            log.warning("fix venue %s: cancel_all without the counterparty's list: %s", self.name, exc)
            reported = []
        results = list(await first)
        extra = [o for o in reported if (o.owner, o.client_id) not in asked]
        results += await asyncio.gather(*(self.cancel(o.symbol, o.client_id, o.owner) for o in extra))
        return results

    async def _mass_cancel(self, symbol: str | None) -> list[CancelResult] | None:
        """OrderMassCancelRequest (q): 530=7 all orders of the session, or 530=1 with the symbol.

        The counterparty's ExecutionReports (150=4) close the orders as usual; its OrderMassCancelReport
        (r) says how many it canceled (533) and which (534: 41/535). Each order we held is confirmed once
        it is closed here (canceled, or filled meanwhile); those still open when the list says they were
        not affected — or after ``cancel_timeout`` when the list is not complete — get an
        OrderCancelRequest each. Orders listed that we did not hold (another process's on this session)
        come back confirmed, unattributed. None (nothing decided: per-order cancels) when the request is
        rejected (531=0), refused (j or 3), unanswered in time, or the session drops."""
        session = self.session
        assert session is not None
        held = [vo for o in self.known_orders(None, symbol)
                if (vo := self._by_owner_client.get((o.owner, o.client_id))) is not None]  # fmt: skip
        cl = f"{self.name}-mc{next(self._mc_seq)}-{self.clock.time_ns() // 1_000_000}"
        m = Message("q", [(11, cl), (530, "7" if symbol is None else "1")])
        if symbol is not None:
            m.append(55, symbol)
        m.append(60, utc_timestamp(self.clock.time_ns()))
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[FixMessage] = loop.create_future()
        self._mass_cancels[cl] = fut
        try:
            self._send(m)
            report = await asyncio.wait_for(fut, self.cancel_timeout)
        except (SessionNotActive, TimeoutError, _MassCancelRefused) as exc:
            log.warning("fix venue %s: mass cancel %s not done (%s): cancelling per order", self.name, cl,
                        type(exc).__name__ if not str(exc) else exc)  # fmt: skip
            return None
        finally:
            self._mass_cancels.pop(cl, None)
        if report.get(531) in (None, b"0"):
            log.warning("fix venue %s: mass cancel %s rejected (532=%s %s): cancelling per order", self.name, cl,
                        report.get_str(532, ""), report.get_str(58, ""))  # fmt: skip
            return None
        self.counts["mass_cancels"] += 1
        listed = [(v.decode("latin-1"), report_id) for v, report_id in _affected(report)]
        total = report.get(533)
        complete = total is not None and total.isdigit() and int(total) == len(listed)
        affected = {c for c, _ in listed}
        # Reports of the orders it canceled may still be on their way (a counterparty may answer r first).
        deadline = loop.time() + self.cancel_timeout
        while True:
            waiting = [vo for vo in held if vo.status.is_open and (not complete or vo.client_id in affected)]
            left = deadline - loop.time()
            if not waiting or left <= 0:
                break
            self._closed_evt.clear()
            await wait_event(self._closed_evt, left)
        results: list[CancelResult] = []
        retry = []
        for vo in held:
            req = vo.req
            if vo.status.is_open:
                retry.append(vo)
            else:
                results.append(CancelResult(self.name, req.symbol, vo.order_id or None, vo.client_id, req.owner,
                                            True, "" if vo.status is not OrderStatus.FILLED else "filled"))  # fmt: skip
        mine = {vo.client_id for vo in held}
        for c, rid in listed:
            if c not in mine:
                oid = self._order_id(rid) if rid and rid != "NONE" else None
                results.append(CancelResult(self.name, symbol or "", oid, c, "", True, "mass cancel"))
        if retry:
            results += await asyncio.gather(*(self.cancel(vo.req.symbol, vo.client_id, vo.req.owner) for vo in retry))
        return results

    # --- inbound ------------------------------------------------------------------------------------
    def _reject(self, order: OrderRequest, client_id: str, reason: str) -> None:
        self.counts["rejects"] += 1
        self.bus.publish(
            OrderRejected(
                symbol=order.symbol, client_id=client_id, owner=order.owner, side=order.side, price=order.price,
                qty=order.qty, reason=reason, source=self.name, venue=self.name,
            )
        )  # fmt: skip

    def _forget(self, vo: _VenueOrder) -> None:
        self._closed_evt.set()
        self._orders.pop(vo.client_id, None)
        self._by_owner_client.pop((vo.req.owner, vo.client_id), None)
        if self.store is not None:
            try:
                self.store.closed([vo.client_id], self.clock.time_ns())
            except Exception:  # costs one extra status query after a restart, nothing more
                log.exception("fix venue %s: order store update failed", self.name)

    def _order_id(self, remote: str) -> int:
        oid = self._remote_ids.get(remote)
        if oid is None:
            oid = int(remote) if remote.isdigit() else 1_000_000_000 + next(self._local_ids)
            self._remote_ids[remote] = oid
        return oid

    def _lots(self, inst: Instrument, value: bytes | None) -> int:
        if not value:
            return 0
        try:
            return int(Decimal(value.decode()) / inst.lot_size)
        except (InvalidOperation, ValueError):
            return 0

    def _ticks(self, inst: Instrument, value: bytes | None) -> int | None:
        if not value:
            return None
        try:
            return round(Decimal(value.decode()) / inst.tick_size)
        except (InvalidOperation, ValueError):
            return None

    def _trade_id(self, exec_id: bytes | None) -> int:
        """A fill's trade id from the counterparty's ExecID, the same in every process: a report replayed
        after a restart (ResendRequest) that this process cannot know it saw yields the same
        (order_id, trade_id) pair, which the bots' P&L deduplicates. 56 bits: an SQLite integer."""
        if not exec_id:
            return next(self._trade_ids)
        return int.from_bytes(hashlib.blake2b(exec_id, digest_size=7).digest(), "big")

    def _duplicate(self, exec_id: str) -> bool:
        if not exec_id:
            return False
        if exec_id in self._exec_seen:
            self.counts["duplicates"] += 1
            return True
        self._exec_seen.add(exec_id)
        self._exec_order.append(exec_id)
        if len(self._exec_order) > 10_000:
            self._exec_seen.discard(self._exec_order.popleft())
        return False

    def _execution_report(self, msg: FixMessage) -> None:
        self.counts["reports"] += 1
        cl = msg.get_str(11, "") or ""
        vo = self._orders.get(cl)
        if vo is None:
            vo = self._orders.get(msg.get_str(41, "") or "")
        if vo is None:
            log.info("fix venue %s: ExecutionReport for unknown ClOrdID %s ignored", self.name, cl)
            return
        if self._duplicate(msg.get_str(17, "") or ""):
            return
        req = vo.req
        inst = self.instruments[req.symbol]
        exec_type = msg.get_str(150, "") or ""
        remote = msg.get_str(37, "") or ""
        if remote and remote != "NONE":
            vo.remote_id = remote
            vo.order_id = self._order_id(remote)
        text = msg.get_str(58, "") or ""
        if exec_type == "0":
            vo.status = OrderStatus.NEW
            self.bus.publish(
                OrderAccepted(
                    symbol=req.symbol, order_id=vo.order_id, client_id=vo.client_id, owner=req.owner, side=req.side,
                    type=req.type, tif=req.tif, price=vo.price, qty=vo.qty, venue=self.name,
                )
            )  # fmt: skip
        elif exec_type in _FILL_TYPES:
            qty = self._lots(inst, msg.get(32))
            price = self._ticks(inst, msg.get(31)) or 0
            leaves = self._lots(inst, msg.get(151))
            cum_raw = msg.get(14)
            if vo.baseline and cum_raw and 0 < self._lots(inst, cum_raw) <= vo.cum:
                # Its CumQty is no more than we already count: this execution was learned already — from
                # an order status report (a fill of an order we could not hear) that reached us before
                # this report, e.g. a stored report replayed (PossDup) after we asked. Applied once.
                self.counts["duplicates"] += 1
                log.info("fix venue %s: fill %s of %s already counted (CumQty %s)", self.name,
                         msg.get_str(17, ""), vo.client_id, cum_raw.decode())  # fmt: skip
                return
            self.counts["fills"] += 1
            vo.cum += qty
            vo.notional += price * qty
            if not vo.baseline and msg.get(14):  # restored: the report's CumQty includes the earlier fills
                vo.cum, vo.baseline = self._lots(inst, msg.get(14)), True
            vo.qty = vo.cum + leaves
            vo.status = OrderStatus.FILLED if leaves == 0 else OrderStatus.PARTIALLY_FILLED
            fee_raw = msg.get(12)
            try:
                fee = float(fee_raw) if fee_raw else 0.0
            except ValueError:
                fee = 0.0
            self.bus.publish(
                Fill(
                    symbol=req.symbol, order_id=vo.order_id, client_id=vo.client_id, owner=req.owner, side=req.side,
                    price=price, qty=qty, leaves_qty=leaves,
                    liquidity=Liquidity.MAKER if msg.get(851) == b"1" else Liquidity.TAKER,
                    fee=fee, trade_id=self._trade_id(msg.get(17)), venue=self.name,
                )
            )  # fmt: skip
            if leaves == 0:
                self._forget(vo)
        elif exec_type in ("4", "C"):
            canceled = vo.leaves
            vo.status = OrderStatus.EXPIRED if exec_type == "C" else OrderStatus.CANCELED
            self._forget(vo)
            self.bus.publish(
                OrderCanceled(
                    symbol=req.symbol, order_id=vo.order_id, client_id=vo.client_id, owner=req.owner, side=req.side,
                    price=vo.price, canceled_qty=canceled, filled_qty=vo.cum, status=vo.status, reason=text,
                    venue=self.name,
                )
            )  # fmt: skip
            self._resolve(cl, True, "")
        elif exec_type == "5":
            old = vo.client_id
            new_cl = cl
            self._by_owner_client.pop((req.owner, old), None)
            vo.client_id = new_cl
            if vo.pending_replace is not None:
                vo.price = vo.pending_replace[1]
            vo.pending_replace = None
            price = self._ticks(inst, msg.get(44))
            if price is not None:
                vo.price = price
            leaves = self._lots(inst, msg.get(151))
            vo.qty = vo.cum + leaves
            self._orders[new_cl] = vo
            self._by_owner_client[(req.owner, new_cl)] = vo
            if self.store is not None and old != new_cl:
                try:
                    self.store.closed([old], self.clock.time_ns())
                except Exception:
                    log.exception("fix venue %s: order store update failed", self.name)
            self.bus.publish(
                OrderReplaced(
                    symbol=req.symbol, order_id=vo.order_id, client_id=new_cl, orig_client_id=old, owner=req.owner,
                    side=req.side, price=vo.price, qty=leaves, kept_priority=False, venue=self.name,
                )
            )  # fmt: skip
        elif exec_type == "8":
            vo.status = OrderStatus.REJECTED
            self._forget(vo)
            self._reject(req, vo.client_id, text or f"rejected by {self.name}")

    def _status_report(self, msg: FixMessage) -> None:
        """An order-status ExecutionReport (4.4 150=I; 4.2 20=3), answering our AF or H."""
        self.counts["status_reports"] += 1
        req_id = msg.get_str(584, "") or ""
        ms = self._mass.get(req_id) if req_id else None
        total_raw = msg.get(911)
        if ms is not None and total_raw == b"0":
            if not ms.fut.done():
                ms.fut.set_result(ms.reports)
            return
        cl = msg.get_str(11, "") or ""
        oo = self._absorb_status(msg, cl)
        if ms is not None:
            ms.seen += 1
            if oo is not None:
                ms.reports.append(oo)
            total = int(total_raw) if total_raw and total_raw.isdigit() else None
            if not ms.fut.done() and (msg.get(912) == b"Y" or (total is not None and ms.seen >= total)):
                ms.fut.set_result(ms.reports)
            return
        for fut in self._h_waiters.pop(cl, ()):
            if not fut.done():
                fut.set_result(oo)

    def _absorb_status(self, msg: FixMessage, cl: str) -> OpenOrder | None:
        """Bring our view of one order up to the counterparty's report; the order if it is open there.
        An open order we do not hold is taken over (its owner from the store, else unattributed)."""
        symbol = msg.get_str(55, "") or ""
        inst = self.instruments.get(symbol)
        ord_status = msg.get_str(39, "") or ""
        vo = self._orders.get(cl) if cl else None
        if inst is None or not cl:
            return None
        closed = _CLOSED_STATUS.get(ord_status)
        leaves = self._lots(inst, msg.get(151))
        cum = self._lots(inst, msg.get(14))
        mine = vo is not None and vo.status.is_open and vo.client_id == cl and vo.pending_replace is None
        if mine and vo is not None and not vo.baseline:
            # Restored from the store: what it had filled before the restart is not known here (the owner's
            # own records have those fills), so the first report sets the baseline; no fill is invented.
            vo.cum, vo.notional, vo.baseline = cum, (vo.price or 0) * cum, True
        if mine and vo is not None and cum > vo.cum:
            self._missed_fill(vo, inst, msg, cum, leaves if closed is None else 0 if closed is OrderStatus.FILLED
                              else vo.qty - cum)  # fmt: skip
        if closed is not None or leaves <= 0:
            if mine and vo is not None and vo.status.is_open:
                vo.status = closed or OrderStatus.FILLED
                self._forget(vo)
                self.counts["vanished"] += 1  # closed there while we held it open
                if vo.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
                    req = vo.req
                    self.bus.publish(
                        OrderCanceled(
                            symbol=req.symbol, order_id=vo.order_id, client_id=vo.client_id, owner=req.owner,
                            side=req.side, price=vo.price, canceled_qty=max(0, vo.qty - vo.cum), filled_qty=vo.cum,
                            status=vo.status, reason="closed at the counterparty (order status)", venue=self.name,
                        )
                    )  # fmt: skip
            return None
        price = self._ticks(inst, msg.get(44))
        remote = msg.get_str(37, "") or ""
        if vo is None:
            side = _SIDES.get(msg.get_str(54, "") or "")
            if side is None:
                return None
            req = OrderRequest(
                symbol=symbol,
                side=side,
                qty=cum + leaves,
                price=price,
                client_id=cl,
                owner="",
                venue=self.name,
            )
            vo = _VenueOrder(req, cl, price, cum + leaves, status=OrderStatus.NEW)
            try:
                self._persist(vo, cl)
            except Exception:
                log.exception("fix venue %s: order store write failed", self.name)
            self._orders[cl] = vo
            self._by_owner_client[("", cl)] = vo
            self.counts["adopted"] += 1
            log.warning(
                "fix venue %s: open order %s reported by the counterparty, not sent by this desk",
                self.name,
                cl,
            )
        if remote and remote != "NONE":
            vo.remote_id = remote
            vo.order_id = self._order_id(remote)
        vo.cum = cum
        vo.qty = cum + leaves
        if price is not None:
            vo.price = price
        vo.status = OrderStatus.NEW if cum == 0 else OrderStatus.PARTIALLY_FILLED
        return self._open_order(vo)

    def _missed_fill(self, vo: _VenueOrder, inst: Instrument, msg: FixMessage, cum: int, leaves: int) -> None:
        """The counterparty's CumQty is ahead of the fills we heard (their reports were lost while we were
        away): one Fill for the difference at the price AvgPx implies for it. Fee and liquidity are not
        in a status report: fee 0, maker (the order was resting)."""
        qty = cum - vo.cum
        try:
            avg = Decimal((msg.get(6) or b"0").decode())
        except InvalidOperation:
            avg = Decimal(0)
        price = vo.price or 0
        if avg > 0:
            total = avg / inst.tick_size * cum  # ticks x lots of every fill of the order
            price = int((total - vo.notional) / qty + Decimal("0.5"))
        remote = msg.get_str(37, "") or ""
        if remote and remote != "NONE":
            vo.remote_id = remote
            vo.order_id = self._order_id(remote)
        vo.cum = cum
        vo.notional += price * qty
        self.counts["fills"] += 1
        req = vo.req
        log.warning("fix venue %s: %s learned of %d lot(s) filled from an order status report", self.name,
                    vo.client_id, qty)  # fmt: skip
        self.bus.publish(
            Fill(
                symbol=req.symbol, order_id=vo.order_id, client_id=vo.client_id, owner=req.owner, side=req.side,
                price=price, qty=qty, leaves_qty=max(0, leaves), liquidity=Liquidity.MAKER, fee=0.0,
                trade_id=next(self._trade_ids), venue=self.name,
            )
        )  # fmt: skip

    def _business_reject(self, msg: FixMessage) -> None:
        if msg.get(372) == b"q":
            self.mass_cancel = False  # not supported there: per-order cancels from now on
            refused = _MassCancelRefused(msg.get_str(58, "") or "q refused")
            for f in self._mass_cancels.values():
                if not f.done():
                    f.set_exception(refused)
            return
        if msg.get(372) != b"AF":
            return
        self.mass_status = False
        exc = _MassStatusRefused(msg.get_str(58, "") or "AF refused")
        ref = msg.get_str(379, "") or ""
        for rid, ms in self._mass.items():
            if (not ref or ref == rid) and not ms.fut.done():
                ms.fut.set_exception(exc)

    def _cancel_reject(self, msg: FixMessage) -> None:
        cl = msg.get_str(11, "") or ""
        vo = self._orders.get(cl) or self._orders.get(msg.get_str(41, "") or "")
        text = msg.get_str(58, "") or "cancel rejected"
        if vo is None:
            return
        if vo.pending_replace is not None and vo.pending_replace[0] == cl:
            vo.pending_replace = None
            self._orders.pop(cl, None)
        self.bus.publish(
            CancelRejected(
                symbol=vo.req.symbol, order_id=vo.order_id or None, client_id=vo.client_id, owner=vo.req.owner,
                reason=text, venue=self.name,
            )
        )  # fmt: skip
        self._resolve(cl, False, text)

    def _resolve(self, cancel_id: str, confirmed: bool, reason: str) -> None:
        fut = self._cancel_waiters.get(cancel_id)
        if fut is None or fut.done():
            return
        vo = self._orders.get(cancel_id)
        if vo is None:
            return
        fut.set_result(
            CancelResult(
                self.name, vo.req.symbol, vo.order_id or None, vo.client_id, vo.req.owner, confirmed, reason
            )
        )

    def status(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "open_orders": sum(1 for vo in self._by_owner_client.values() if vo.status.is_open),
            **self.counts,
        }


def _affected(report: FixMessage) -> list[tuple[bytes, str]]:
    """The NoAffectedOrders group of an OrderMassCancelReport: (OrigClOrdID, AffectedOrderID) pairs."""
    out: list[tuple[bytes, str]] = []
    cl: bytes | None = None
    for tag, value in report.pairs():
        if tag == 41:
            if cl is not None:
                out.append((cl, ""))
            cl = value
        elif tag == 535 and cl is not None:
            out.append((cl, value.decode("latin-1")))
            cl = None
    if cl is not None:
        out.append((cl, ""))
    return out
