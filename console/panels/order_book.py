"""The order-book ladder: depth with sizes and cumulative bars, own orders marked, spread, last trades.

Drawn with Textual's Line API: on each (dirty) refresh tick the ladder recomputes its lines as
segment lists, keeps the cached :class:`Strip` of every unchanged line, and repaints only the lines
that changed — a 20-level book updating a thousand times a second costs a few changed lines per frame.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from console.format import clock, grouped
from console.panels.base import Panel

if TYPE_CHECKING:
    from console.model import DeskModel

EIGHTHS = " ▏▎▍▌▋▊▉█"

#: the ladder's columns close up below this width (see Ladder.build)
COMPACT_BELOW = 54

#: the matching engine's ``book_impl`` → the ladder header's words for it
BOOK_IMPL = {"compiled": "compiled book", "python": "pure-Python book"}
BOOK_IMPL_SHORT = {"compiled": "compiled book", "python": "Python book"}  # when the long one does not fit


def _bar(width: int, fraction: float) -> str:
    cells = max(0.0, min(1.0, fraction)) * width
    full = int(cells)
    part = int((cells - full) * 8)
    text = "█" * full + (EIGHTHS[part] if part and full < width else "")
    return text.ljust(width)


def _elide(text: str, width: int) -> str:
    """``text`` if it fits in ``width`` cells, else cut with a closing "…" (never silently cut)."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _cut(text: str, width: int, *, right: bool = False) -> str:
    if len(text) > width:
        return text[:width]
    return text.rjust(width) if right else text.ljust(width)


class Ladder(Widget, can_focus=True):
    """The price ladder of one instrument (Line API)."""

    COMPONENT_CLASSES = {
        "ladder--bid",
        "ladder--ask",
        "ladder--bid-bar",
        "ladder--ask-bar",
        "ladder--own",
        "ladder--header",
        "ladder--muted",
        "ladder--spread",
    }

    DEFAULT_CSS = """
    Ladder { height: 1fr; }
    Ladder > .ladder--bid { color: $bid; }
    Ladder > .ladder--ask { color: $ask; }
    Ladder > .ladder--bid-bar { color: $bid 70%; }
    Ladder > .ladder--ask-bar { color: $ask 70%; }
    Ladder > .ladder--own { color: $own; text-style: bold; }
    Ladder > .ladder--header { color: $text-muted; text-style: bold; }
    Ladder > .ladder--muted { color: $text-muted; }
    Ladder > .ladder--spread { color: $text; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.symbol: str = ""
        self._strips: list[Strip] = []
        self._segments: list[list[Segment]] = []
        self._styles: dict[str, Style] = {}
        self._version = -1

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())

    def _restyle(self) -> None:
        self._styles.clear()
        self._segments = []
        self._version = -1

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"ladder--{name}")
        return style

    def render_line(self, y: int) -> Strip:
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)

    # --- building lines ------------------------------------------------------------------------------
    def build(self, model: DeskModel) -> list[list[Segment]]:
        width, height = self.size.width, self.size.height
        if width <= 0 or height <= 0:
            return []
        sym = self.symbol
        inst = model.instruments.get(sym)
        S = self._style
        base = self.rich_style
        lines: list[list[Segment]] = []

        def line(*parts: tuple[str, Style | None]) -> None:
            segs = [Segment(t, base + s if s else base) for t, s in parts if t]
            used = sum(len(t) for t, _ in parts)
            if used < width:
                segs.append(Segment(" " * (width - used), base))
            lines.append(list(Strip(segs).crop(0, width)))

        def px(ticks: int | None) -> str:
            if ticks is None:
                return "—"
            return grouped(inst.price(ticks)) if inst else str(ticks)

        def qty(lots: int) -> str:
            return grouped(inst.qty(lots)) if inst else str(lots)

        depth = model.depth.get(sym)
        bbo = model.bbo.get(sym)

        n = len(model.symbols)
        idx = model.symbols.index(sym) + 1 if sym in model.symbols else 0
        ref = model.prices.get(sym)
        ref_text = f"ref {grouped(ref)}" if ref is not None else "ref —"
        head = f" {sym} [{idx}/{n}] {ref_text}"
        # Right of the header: the venue whose book this is and which order book its matching engine
        # runs (compiled or pure Python), when it fits.
        books = model.venue_books
        venue = getattr(depth, "venue", None) or (next(iter(books)) if len(books) == 1 else None)
        impl = books.get(venue) if venue else None
        engine, gap = "", 0
        for words in (BOOK_IMPL, BOOK_IMPL_SHORT) if impl else ():
            engine = f"{venue} · {words.get(impl, f'{impl} book')} "
            gap = width - len(head) - len(engine)
            if gap >= 2:
                break
            engine, gap = "", 0
        line((f" {sym} ", S("spread")), (f"[{idx}/{n}] ", S("muted")), (ref_text, None), (" " * gap, None),
             (engine, S("muted")))
        bids = list(depth.bids) if depth else []
        asks = list(depth.asks) if depth else []
        if bbo is not None and not depth:
            if bbo.bid_px is not None:
                bids = [(bbo.bid_px, bbo.bid_qty)]
            if bbo.ask_px is not None:
                asks = [(bbo.ask_px, bbo.ask_qty)]

        # Layout: header(2) + asks + spread(1) + bids + trades block.
        trades_rows = max(0, min(8, (height - 6) // 4))
        trades_block = trades_rows + 1 if trades_rows else 0
        k = max(1, (height - 3 - trades_block) // 2)
        bids, asks = bids[:k], asks[:k]

        own = model.own_levels(sym)
        # Narrower than COMPACT_BELOW (the book beside the f1 keys panel at 80 columns) the columns close
        # up, so every figure and the trade lines' owners still fit whole.
        compact = width < COMPACT_BELOW
        w_side, w_own, w_px, w_qty, w_cum = (5, 10, 9, 8, 8) if compact else (5, 10, 12, 9, 9)
        bar_w = max(0, width - (w_side + w_own + w_px + w_qty + w_cum + 2))
        line(
            (_cut(" ", w_side), S("header")),
            (_cut("own", w_own), S("header")),
            (_cut("price", w_px, right=True), S("header")),
            (_cut("size", w_qty, right=True), S("header")),
            (_cut("cum", w_cum, right=True), S("header")),
            ("  depth" if bar_w >= 6 else "", S("header")),
        )

        cum_b: list[int] = []
        total = 0
        for _, q in bids:
            total += q
            cum_b.append(total)
        cum_a: list[int] = []
        total = 0
        for _, q in asks:
            total += q
            cum_a.append(total)
        biggest = max([*cum_b[-1:], *cum_a[-1:], 1])

        def level(side: str, price: int, size: int, cum: int) -> None:
            owners = own.get((side, price))
            mark = _elide("◆" + owners[0] + ("+" if len(owners) > 1 else ""), w_own - 1) if owners else ""
            tag = "ask" if side == "sell" else "bid"
            colour = S("ask") if side == "sell" else S("bid")
            bar_style = S("ask-bar") if side == "sell" else S("bid-bar")
            line(
                (_cut(f" {tag}", w_side), colour),
                (_cut(mark, w_own), S("own")),
                (_cut(px(price), w_px, right=True), colour),
                (_cut(qty(size), w_qty, right=True), None),
                (_cut(qty(cum), w_cum, right=True), S("muted")),
                ("  " + _bar(bar_w - 2, cum / biggest) if bar_w > 2 else "", bar_style),
            )

        for _ in range(k - len(asks)):
            line(("", None))
        for i in range(len(asks) - 1, -1, -1):
            level("sell", asks[i][0], asks[i][1], cum_a[i])

        if bids and asks:
            spread = asks[0][0] - bids[0][0]
            mid = (asks[0][0] + bids[0][0]) / 2
            if inst:
                spread_px = inst.price(spread)
                mid_px = Decimal(str(mid)) * inst.tick_size
                bps = float(spread_px) / float(mid_px) * 1e4 if mid_px else 0.0
                text = f" spread {grouped(spread_px)} · {bps:.1f} bps · mid {grouped(mid_px.normalize())} "
            else:
                text = f" spread {spread} ticks "
        elif depth is None and bbo is None:
            text = " no book yet — waiting for depth "
        elif not bids and not asks:
            text = " empty book — no resting orders "
        else:
            text = " one-sided book "
        pad = max(0, width - len(text))
        line(("─" * (pad // 2), S("muted")), (text, S("spread")), ("─" * (pad - pad // 2), S("muted")))

        for i in range(len(bids)):
            level("buy", bids[i][0], bids[i][1], cum_b[i])
        for _ in range(k - len(bids)):
            line(("", None))

        if trades_rows:
            line((" last trades", S("header")))
            trades = list(model.trades.get(sym, ()))[-trades_rows:]
            t_px, t_qty, sep = (w_px, w_qty - 1, " ") if compact else (w_px, w_qty + 1, "  ")
            for t in reversed(trades):
                aggr = getattr(t.aggressor, "value", t.aggressor)
                buy = aggr == "buy"
                room = width - (10 + 6 + t_px + t_qty + len(sep))
                line(
                    (f" {clock(t.ts)} ", S("muted")),
                    ("▲ buy " if buy else "▼ sell", S("bid") if buy else S("ask")),
                    (_cut(px(t.price), t_px, right=True), None),
                    (_cut(qty(t.qty), t_qty, right=True), None),
                    (sep + _elide(f"{t.maker_owner}←{t.taker_owner}", room) if room > 1 else "", S("muted")),
                )
        # A constant number of lines: a line that was drawn before is always redrawn (blank if unused).
        while len(lines) < height:
            line(("", None))
        return lines[:height]

    def refresh_from(self, model: DeskModel) -> None:
        lines = self.build(model)
        width = self.size.width
        old = self._segments
        strips = self._strips
        if len(strips) != len(lines):
            strips = [Strip.blank(0)] * len(lines)
        changed: list[int] = []
        for y, segs in enumerate(lines):
            if y >= len(old) or old[y] != segs or y >= len(self._strips):
                strips[y] = Strip(segs, width)
                changed.append(y)
        self._segments = lines
        self._strips = strips
        if len(changed) == len(lines):
            self.refresh()
        else:
            for y in changed:
                self.refresh(Region(0, y, width, 1))

    def on_resize(self) -> None:
        # The line layout depends on the size: rebuild every line for the new one.
        self._segments = []
        if self.symbol:
            self.refresh_from(self.app.model)  # type: ignore[attr-defined]


class OrderBookPanel(Panel):
    key = "book"
    title = "Order book"

    BINDINGS = [
        Binding("left_square_bracket", "app.instrument(-1)", "Prev instr", id="book.prev", show=False,
                tooltip="Show the previous instrument's book"),
        Binding("right_square_bracket", "app.instrument(1)", "Next instr", id="book.next", show=False,
                tooltip="Show the next instrument's book"),
    ]

    def compose(self):  # type: ignore[override]
        yield Ladder(id="ladder")

    @property
    def ladder(self) -> Ladder:
        return self.query_one(Ladder)

    @property
    def symbol(self) -> str:
        return self.ladder.symbol

    def select(self, symbol: str) -> None:
        self.ladder.symbol = symbol
        self.border_title = f"Order book · {symbol}"
        self.border_subtitle = "[ ] instrument"

    def refresh_from(self, model: DeskModel) -> None:
        ladder = self.ladder
        if not ladder.symbol and model.symbols:
            self.select(model.symbols[0])
        ladder.refresh_from(model)
