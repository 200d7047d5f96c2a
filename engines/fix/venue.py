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
what was confirmed. ``open_orders`` comes from the venue's own tracking of what it sent and heard.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
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

if TYPE_CHECKING:
    from engines.fix.session import Session

log = logging.getLogger(__name__)

_SIDE_CODE = {Side.BUY: "1", Side.SELL: "2"}
_TIF_CODE = {TimeInForce.GTC: "1", TimeInForce.IOC: "3", TimeInForce.FOK: "4"}
_FILL_TYPES = frozenset({"F", "1", "2"})


@dataclass(slots=True)
class _VenueOrder:
    req: OrderRequest
    client_id: str  # the current ClOrdID (changes on replace)
    price: int | None
    qty: int  # total lots
    order_id: int = 0
    remote_id: str = ""
    cum: int = 0
    status: OrderStatus = OrderStatus.PENDING_NEW
    pending_replace: tuple[str, int | None, int] | None = None  # (new ClOrdID, price, new leaves)

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
        self._trade_ids = itertools.count(1)
        self._cancel_seq = itertools.count(1)
        self._cancel_waiters: dict[str, asyncio.Future[CancelResult]] = {}
        self._exec_seen: set[str] = set()
        self._exec_order: deque[str] = deque()
        self.counts = {"sent": 0, "reports": 0, "fills": 0, "rejects": 0, "duplicates": 0}

    # --- Application --------------------------------------------------------------------------------
    def on_create(self, session: Session) -> None:
        self.session = session

    def from_app(self, msg: FixMessage, session: Session) -> None:
        t = msg.msg_type
        if t == "8":
            self._execution_report(msg)
        elif t == "9":
            self._cancel_reject(msg)
        # Market data and anything else the counterparty sends are not the venue's business.

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
        self._orders[client_id] = vo
        self._by_owner_client[(order.owner, client_id)] = vo
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
            self._send(m)
        except SessionNotActive:
            vo.pending_replace = None
            self._orders.pop(new_client_id, None)
            self.bus.publish(
                CancelRejected(
                    symbol=symbol, order_id=vo.order_id or None, client_id=client_id, owner=owner,
                    reason=f"FIX session of venue {self.name} is not logged on", venue=self.name,
                )
            )  # fmt: skip

    async def open_orders(self, owner: str | None = None, symbol: str | None = None) -> list[OpenOrder]:
        out = []
        for (o, _), vo in self._by_owner_client.items():
            if not vo.status.is_open or (owner is not None and o != owner):
                continue
            if symbol is not None and vo.req.symbol != symbol:
                continue
            out.append(
                OpenOrder(
                    self.name,
                    vo.req.symbol,
                    vo.order_id,
                    vo.client_id,
                    o,
                    vo.req.side,
                    vo.price,
                    vo.leaves,
                    vo.cum,
                )
            )
        return out

    async def cancel_all(self, owner: str | None = None, symbol: str | None = None) -> list[CancelResult]:
        orders = await self.open_orders(owner, symbol)
        return list(await asyncio.gather(*(self.cancel(o.symbol, o.client_id, o.owner) for o in orders)))

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
        self._orders.pop(vo.client_id, None)
        self._by_owner_client.pop((vo.req.owner, vo.client_id), None)

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
            self.counts["fills"] += 1
            qty = self._lots(inst, msg.get(32))
            price = self._ticks(inst, msg.get(31)) or 0
            leaves = self._lots(inst, msg.get(151))
            vo.cum += qty
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
                    fee=fee, trade_id=next(self._trade_ids), venue=self.name,
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
