"""Reconciling a bot's live orders with the orders its venue reports open (market maker and grid bots).

A bot learns what happens to its orders from the venue's events. After a disconnect, or a restart,
some of those events may never come (a counterparty that dropped its reports while we were away, a
venue that lost its book), so the bot asks the venue what is open (``Venue.open_orders``) and compares:

- **kept**: live in the bot, listed by the venue (their fills so far: ``OpenOrder.filled_qty``);
- **missing**: live in the bot, not listed: no longer working there (filled or cancelled without us
  hearing it). The caller closes them, except orders sent after the question (the answer predates them);
- **unknown**: listed by the venue, not live in the bot: the bot cancels or adopts them.

The rule both bots keep: the venue's list is the truth only when the venue answered. When it cannot
answer (no venue, not connected, or ``open_orders`` raised: a FIX venue whose counterparty did not
answer in time), :func:`ask_open_orders` raises :class:`OpenOrdersUnknown` and the caller closes
nothing and asks again later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engines.venue import OpenOrder, Venue


class OpenOrdersUnknown(Exception):
    """What rests at the venue cannot be known now: close nothing."""


async def ask_open_orders(venue: Venue | None, owner: str, symbol: str) -> list[OpenOrder]:
    """The venue's open orders of ``owner`` on ``symbol``, or :class:`OpenOrdersUnknown` (with the reason)."""
    if venue is None:
        raise OpenOrdersUnknown("no such venue")
    if not venue.connected:
        raise OpenOrdersUnknown(f"venue {venue.name} disconnected")
    try:
        # An asynchronous venue (FIX) asks its counterparty: this may take a round trip, or fail.
        return list(await venue.open_orders(owner=owner, symbol=symbol))
    except Exception as exc:
        raise OpenOrdersUnknown(str(exc) or type(exc).__name__) from exc


@dataclass(frozen=True, slots=True)
class Comparison:
    kept: dict[str, OpenOrder]  # client id -> the venue's view of an order live in the bot
    missing: list[str]  # client ids live in the bot that the venue does not list
    unknown: list[OpenOrder]  # listed by the venue, not live in the bot

    def learned(self, client_id: str, filled: int) -> int:
        """Lots the venue says a kept order has filled beyond the ``filled`` the bot has applied."""
        v = self.kept.get(client_id)
        return 0 if v is None else max(0, v.filled_qty - filled)


def compare(live: Iterable[str], listed: Iterable[OpenOrder]) -> Comparison:
    """Split the bot's live client ids and the venue's list into kept / missing / unknown."""
    at_venue = {o.client_id: o for o in listed}
    live_ids = list(live)
    mine = set(live_ids)
    kept = {cid: at_venue[cid] for cid in live_ids if cid in at_venue}
    missing = [cid for cid in live_ids if cid not in at_venue]
    unknown = [o for cid, o in at_venue.items() if cid not in mine]
    return Comparison(kept, missing, unknown)


def summary(why: str, counts: Mapping[str, int]) -> str:
    """``reconciled on reconnect: kept 3, closed 1, …`` for the bots' logs."""
    return f"reconciled on {why}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
