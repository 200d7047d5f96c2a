"""Bot detail: the bot's configured parameters and its latest status, field by field."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Sparkline

if TYPE_CHECKING:
    from console.model import DeskModel


class BotDetailScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter", "close", "Close", id="bot.close")]

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

    def compose(self) -> ComposeResult:
        status = self.model.bots.get(self.bot) or self.model.grids.get(self.bot)
        kind = type(status).__name__ if status is not None else "bot"
        with Vertical():
            yield Label(f"{self.bot} · {kind} · trading state {self.model.states.get('bot:' + self.bot, 'active')}",
                        id="head")
            with Horizontal():
                yield DataTable(id="params", cursor_type="row")
                yield DataTable(id="status", cursor_type="row")
            yield Sparkline(list(self.model.pnl.get(self.bot, ())) or [0.0])

    def on_mount(self) -> None:
        params = self.query_one("#params", DataTable)
        params.border_title = "parameters"
        params.add_columns("parameter", "value")
        for k, v in _flat(self.params):
            params.add_row(k, str(v))
        table = self.query_one("#status", DataTable)
        table.add_columns("status", "value")
        for k, text in _status_rows(self.model.bots.get(self.bot) or self.model.grids.get(self.bot)):
            table.add_row(k, text)

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
