"""Display formatting for the console: signed money with arrows, times, prices with separators.

Colour is never the only carrier of meaning: every signed figure has its sign and an arrow.
"""

from __future__ import annotations

import time
from decimal import Decimal

UP = "▲"
DOWN = "▼"
FLAT = "·"


def signed(value: float, digits: int = 2) -> str:
    """``+12.34`` / ``-5.00`` / ``0.00``."""
    if value > 0:
        return f"+{value:,.{digits}f}"
    if value < 0:
        return f"-{-value:,.{digits}f}"
    return f"{0:,.{digits}f}"


def arrow(value: float) -> str:
    return UP if value > 0 else DOWN if value < 0 else FLAT


def money(value: float, digits: int = 2) -> str:
    """Signed figure followed by its arrow: ``+12.34 ▲``; zero has neither."""
    text = signed(value, digits)
    return f"{text} {arrow(value)}" if text.strip("+-0.,") else text


def pct(value: float, digits: int = 2) -> str:
    text = signed(value, digits)
    return f"{text}% {arrow(value)}" if text.strip("+-0.,") else f"{text}%"


def clock(ts_ns: int, *, millis: bool = False) -> str:
    """UTC wall time of a desk-clock timestamp."""
    if ts_ns <= 0:
        return "--:--:--"
    secs, ns = divmod(ts_ns, 1_000_000_000)
    text = time.strftime("%H:%M:%S", time.gmtime(secs))
    return f"{text}.{ns // 1_000_000:03d}" if millis else text


def grouped(value: Decimal | float | str) -> str:
    """A price or quantity with thousands separators, keeping its decimals."""
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except Exception:
            return value
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,f}"


def age(now_ns: int, then_ns: int) -> str:
    if then_ns <= 0 or now_ns <= 0:
        return "—"
    s = max(0.0, (now_ns - then_ns) / 1e9)
    if s < 60:
        return f"{s:.0f}s ago"
    return f"{s / 60:.0f}m ago"
