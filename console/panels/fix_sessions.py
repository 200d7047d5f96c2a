"""FIX sessions: state, sender/target, sequence numbers, last heartbeat, message rates, errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding

from console.format import age
from console.model import FIX_STATE_SYMBOL
from console.panels.base import Panel
from console.panels.table import DiffTable

if TYPE_CHECKING:
    from console.model import DeskModel

COLUMNS = [
    ("state", "state", 15),
    ("session", "sender→target", 19),
    ("seq_out", "out#", 5),
    ("seq_in", "in#", 5),
    ("hb", "last hb", 8),
    ("rate", "rate i/o", 9),
    ("msgs", "msgs i/o", 9),
    ("errors", "errors", 6),
]

STATE_LABEL = {"LOGON_IN_PROGRESS": "LOGGING ON", "LOGOUT_IN_PROGRESS": "LOGGING OUT"}


class FixSessionsPanel(Panel):
    max_hz = 2.0  # the FIX engine publishes its stats about once a second
    key = "fix"
    title = "FIX sessions"

    BINDINGS = [
        Binding("enter", "app.fix_inspector", "Messages", id="fix.inspect",
                tooltip="Open the FIX message inspector for the selected session"),
        Binding("l", "app.fix_logout_selected", "Logout", id="fix.logout",
                tooltip="Log the selected FIX session out"),
        Binding("c", "app.fix_reconnect_selected", "Reconnect", id="fix.reconnect",
                tooltip="Reconnect the selected FIX session"),
    ]

    DEFAULT_CSS = """
    FixSessionsPanel { height: 8; }
    """

    def compose(self):  # type: ignore[override]
        yield DiffTable(COLUMNS, id="fix-table")

    @property
    def table(self) -> DiffTable:
        return self.query_one(DiffTable)

    def on_data_table_row_selected(self, event: DiffTable.RowSelected) -> None:
        event.stop()
        self.app.action_fix_inspector(self.selected)  # type: ignore[attr-defined]

    @property
    def selected(self) -> str | None:
        return self.table.selected_key

    def refresh_from(self, model: DeskModel) -> None:
        now = model.last_ts
        rows = {}
        for name, s in sorted(model.fix.items()):
            sender, target = s.sender_target
            symbol = FIX_STATE_SYMBOL.get(s.state, "?")
            errors = Text(f"✖ {s.errors}", style="bold") if s.errors else Text("0")
            label = STATE_LABEL.get(s.state, s.state)
            state = Text(f"{symbol} {label}", style="bold" if s.state == "ACTIVE" else "")
            rows[name] = (
                state,
                f"{sender}→{target}",
                str(s.next_sender_seq),
                str(s.next_target_seq),
                age(now, s.last_heartbeat_ts),
                f"{s.rate_in:.1f}/{s.rate_out:.1f}",
                f"{s.msgs_in}/{s.msgs_out}",
                errors,
            )
        self.table.sync(rows)
        self.set_title(f"FIX sessions · {sum(1 for s in model.fix.values() if s.state == 'ACTIVE')}/{len(model.fix)} active")
