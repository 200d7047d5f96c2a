"""Bot detail: the bot's configured parameters and its latest status, field by field, kept live.

The status table follows the desk model while the screen is open, in process and in the remote
console alike: the app's refresh tick calls :meth:`BotDetailScreen.refresh_from` with the model it
draws the panels from (a remote console swaps in a fresh model on each snapshot). The screen redraws
only when the model holds a newer status event for the bot (events are immutable; a new one replaces
the old in ``model.bots`` / ``model.grids``), the bot's trading state or the remote link changed, at most ``max_hz``
times a second like the bots panel, and by changed cells (``update_cell``): the cursor, the scroll
position and the focus stay where the operator left them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Sparkline

if TYPE_CHECKING:
    from console.model import DeskModel


class BotDetailScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter", "close", "Close", id="bot.close")]

    #: Live redraws per second at most (the bots panel's cap): a faster table is not read any better.
    max_hz: ClassVar[float] = 4.0

    # Narrower than 110 columns the two tables are stacked, each the full width (side by side the long
    # values, a feed URL, were cut); the P&L sparkline is left to the bots panel.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    DEFAULT_CSS = """
    BotDetailScreen { align: center middle; background: $background 60%; }
    BotDetailScreen.-narrow Horizontal { layout: vertical; }
    BotDetailScreen.-narrow #params, BotDetailScreen.-narrow #status { width: 100%; max-height: 8; margin-right: 0; }
    BotDetailScreen.-narrow Sparkline { display: none; }
    BotDetailScreen > Vertical {
        width: 120; max-width: 95%; height: auto; max-height: 95%;
        border: thick $primary; background: $surface; padding: 1 1;
    }
    BotDetailScreen #head { text-style: bold; margin-bottom: 1; }
    BotDetailScreen Horizontal { height: auto; }
    BotDetailScreen DataTable { height: auto; max-height: 24; width: 1fr; margin-right: 1; }
    BotDetailScreen #params { width: 1fr; }
    BotDetailScreen #status { width: auto; }
    BotDetailScreen Sparkline { height: 3; margin-top: 1; }
    """

    def __init__(self, model: DeskModel, name: str, params: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.bot = name
        self.params = params
        self._ready = False
        self._status: Any = None  # the status event on screen (the model's, compared by identity)
        self._head = ""
        self._rows: dict[str, str] = {}  # status row key -> text on screen, in table order
        self._points: list[float] = []
        self._last_redraw: float | None = None
        #: how many times new figures were drawn (tests and the console bench read it)
        self.redraws = 0

    def latest(self, model: DeskModel) -> Any:
        """The bot's latest status event in ``model`` (an MM or a grid bot's), or None."""
        return model.bots.get(self.bot) or model.grids.get(self.bot)

    def _head_text(self, model: DeskModel, status: Any) -> str:
        kind = type(status).__name__ if status is not None else "bot"
        text = f"{self.bot} · {kind} · trading state {model.states.get('bot:' + self.bot, 'active')}"
        # A remote console's link (None in process): figures that stopped coming must not look live.
        link = str(getattr(model, "link", None) or "live")
        return text if link == "live" else f"{text} · ⚠ {link.upper()}: last known figures"

    def compose(self) -> ComposeResult:
        self._status = status = self.latest(self.model)
        self._head = self._head_text(self.model, status)
        self._points = list(self.model.pnl.get(self.bot, ())) or [0.0]
        with Vertical():
            yield Label(self._head, id="head")
            with Horizontal():
                yield DataTable(id="params", cursor_type="row")
                yield DataTable(id="status", cursor_type="row")
            yield Sparkline(self._points)

    def on_mount(self) -> None:
        params = self.query_one("#params", DataTable)
        params.border_title = "parameters"
        params.add_columns("parameter", "value")
        for k, v in _flat(self.params):
            params.add_row(k, str(v))
        table = self.query_one("#status", DataTable)
        table.add_column("status", key="name")
        table.add_column("value", key="value")
        self._sync_rows(table, dict(_status_rows(self._status)))
        self._last_redraw = self._now()
        self._ready = True

    def _now(self) -> float:
        # The app's clock (the desk's): a test's ManualClock decides when the cap lets a redraw through.
        clock = getattr(self.app, "clock", None)
        return clock.monotonic() if clock is not None else 0.0

    def refresh_from(self, model: DeskModel) -> None:
        """Show the bot's latest figures (the app's refresh tick calls this while the screen is on top).

        ``model`` is the one the panels are drawn from: a remote console replaces its model on every
        snapshot, so the screen follows the argument, not the model it was opened with."""
        if not self._ready:
            return  # on_mount fills the tables
        self.model = model
        status = self.latest(model)
        head = self._head_text(model, status)
        if status is self._status and head == self._head:
            return  # nothing new: no redraw
        if getattr(self.app, "live", False):
            now = self._now()
            if self._last_redraw is not None and now - self._last_redraw < 1 / self.max_hz:
                return  # still new on a later tick: drawn then
            self._last_redraw = now
        self._status = status
        self.redraws += 1
        if head != self._head:
            self._head = head
            self.query_one("#head", Label).update(head)
        self._sync_rows(self.query_one("#status", DataTable), dict(_status_rows(status)))
        points = list(model.pnl.get(self.bot, ())) or [0.0]
        if points != self._points:
            self._points = points
            self.query_one(Sparkline).data = points

    def _sync_rows(self, table: DataTable[Any], rows: dict[str, str]) -> None:
        """Changed cells only, so the cursor, the scroll position and the focus stay put; the rows are
        rebuilt (cursor row and scroll kept) only when the set of fields changes, e.g. the risk limits'
        usage appearing, since a DataTable cannot insert a row in the middle."""
        if list(rows) == list(self._rows):
            for key, text in rows.items():
                old = self._rows[key]
                if text != old:
                    # widen the column for a longer value; a shorter one leaves it (no jitter)
                    table.update_cell(key, "value", text, update_width=len(text) > len(old))
        else:
            shown = list(self._rows)
            selected = shown[table.cursor_row] if 0 <= table.cursor_row < len(shown) else None
            scroll_x, scroll_y = table.scroll_x, table.scroll_y
            table.clear()
            for key, text in rows.items():
                table.add_row(key, text, key=key)
            if selected in rows:
                table.move_cursor(row=table.get_row_index(selected), scroll=False)
            if scroll_x or scroll_y:  # once the new rows are measured (scrolling clamps to their size)
                table.call_after_refresh(table.scroll_to, scroll_x, scroll_y, animate=False)
        self._rows = rows

    def action_close(self) -> None:
        self.dismiss(None)


def _status_rows(status: Any) -> list[tuple[str, str]]:
    """The status event's fields as (name, text) rows. ``limits`` (usage of each risk limit, 1.0 = at the
    limit) one row per limit as a percentage: the dict in one cell made the table scroll sideways."""
    rows: list[tuple[str, str]] = []
    if status is None or not dataclasses.is_dataclass(status):
        return rows
    for f in dataclasses.fields(status):
        if f.name in ("seq", "ts", "levels"):
            continue
        value = getattr(status, f.name)
        if f.name == "limits" and isinstance(value, dict):
            rows += [(f"limits.{k}", f"{v:.0%} used" if isinstance(v, (int, float)) else str(v))
                     for k, v in value.items()]
        elif isinstance(value, dict):
            rows += [(k, _text(v)) for k, v in _flat(value, f"{f.name}.")]
        else:
            rows.append((f.name, _text(value)))
    return rows


def _text(value: Any) -> str:
    return f"{value:,.4f}" if isinstance(value, float) else str(getattr(value, "value", value))


def _flat(params: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested sections (``limits``) one row per key, ``limits.max_position``: a dict in one cell was
    wider than the screen."""
    rows: list[tuple[str, Any]] = []
    for k, v in params.items():
        if isinstance(v, dict) and v:
            rows += _flat(v, f"{prefix}{k}.")
        else:
            rows.append((f"{prefix}{k}", v))
    return rows
