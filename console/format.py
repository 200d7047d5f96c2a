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


#: How a figure is shortened to fit a table cell, in order: cents, then no cents, then thousands, millions.
_SHORTER = ((2, 1.0, ""), (0, 1.0, ""), (1, 1e3, "k"), (2, 1e6, "M"), (2, 1e9, "B"))


def money_fit(value: float, width: int) -> str:
    """:func:`money` in at most ``width`` characters: it drops the cents, then shows thousands (``k``) or
    millions (``M``) only when the full figure would not fit (a table cell would cut its arrow or digits)."""
    text = money(value)
    for digits, scale, suffix in _SHORTER[1:]:
        if len(text) <= width:
            break
        short = signed(value / scale, digits)
        text = f"{short}{suffix} {arrow(value)}" if short.strip("+-0.,") else short + suffix
    return text


def amount_fit(value: float, width: int) -> str:
    """An unsigned amount (fees) with two decimals, shortened like :func:`money_fit` to fit ``width``."""
    text = f"{value:,.2f}"
    for digits, scale, suffix in _SHORTER[1:]:
        if len(text) <= width:
            break
        text = f"{value / scale:,.{digits}f}{suffix}"
    return text


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
