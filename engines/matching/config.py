from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, SecretStr

from engines.configbase import Listen, Section


class MatchingConfig(Section):
    """The desk's own venue."""

    enabled: bool = True
    venue: str = "sim"
    maker_fee_bps: Decimal = Decimal("1.0")
    taker_fee_bps: Decimal = Decimal("2.5")
    self_trade: Literal["cancel_resting", "cancel_incoming", "none"] = "cancel_resting"
    depth_levels: int = Field(default=20, ge=1, le=1000)
    trade_history: int = Field(default=10_000, ge=10, description="trades kept in memory per symbol")
    journal: bool = True
    # "normal": a commit survives the process being killed; "full": also power loss (fsync per batch).
    journal_sync: Literal["normal", "full"] = "normal"
    # The matching venue (bots, FIX gateway) awaits the journal before returning from submit/cancel/
    # replace, so whatever they acknowledge is on disk. The REST API always does.
    durable_ack: bool = True
    closed_history: int = Field(default=100_000, ge=0, description="closed orders kept in memory for queries")
    # The order book implementation (engines/matching/book_impl.py): "auto" runs the compiled build of
    # book.py (setup.py, Cython) when it is installed and built from the current source, else the
    # pure-Python book; "off" always the pure-Python one; "required" refuses to start without the
    # compiled one.
    compiled_book: Literal["auto", "off", "required"] = "auto"
    rest: Listen = Listen(port=0)
    ws: Listen = Listen(port=0)
    # Bearer token for REST order entry (POST/PUT/DELETE). A secret: set it with
    # OPDESK_MATCHING__API_TOKEN or the secrets file. Unset: one is generated at startup and written
    # to <data_dir>/api.token (mode 0600).
    api_token: SecretStr | None = None
