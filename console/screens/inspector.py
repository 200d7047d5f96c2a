"""FIX message inspector: the session's messages, each decoded with field names; searchable."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from console.fixdict import decode, msg_type_name
from console.footer import DeskFooter
from console.format import clock

if TYPE_CHECKING:
    from console.model import DeskModel

MAX_ROWS = 2000


class FixInspectorScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="inspector.back", tooltip="Back to the desk"),
        Binding("slash", "search", "Search", id="inspector.search", tooltip="Search messages"),
    ]

    # Narrower than 110 columns the message list and the decoded message are stacked, each the full
    # width, so no column is cut (side by side at 80 columns both tables scrolled sideways).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    DEFAULT_CSS = """
    FixInspectorScreen #search { dock: top; }
    FixInspectorScreen #msgs { width: 1fr; min-width: 40; max-width: 72; border: round $panel-lighten-2; }
    FixInspectorScreen #fields { width: 1fr; border: round $panel-lighten-2; }
    FixInspectorScreen #raw { width: 1fr; height: auto; max-height: 5; color: $text-muted; padding: 0 1; }
    FixInspectorScreen DataTable:focus { border: none; }
    FixInspectorScreen.-narrow #panes { layout: vertical; }
    FixInspectorScreen.-narrow #msgs { max-width: 100%; height: 2fr; }
    FixInspectorScreen.-narrow #fields { height: 3fr; }
    FixInspectorScreen.-narrow #raw { display: none; }
    """

    def __init__(self, model: DeskModel, session: str | None = None, *, blink: bool = True) -> None:
        super().__init__()
        self.model = model
        self.session = session
        self.query_text = ""
        self._rows: deque[str] = deque()
        self._seen = 0  # model.fix_msg_count already offered to the table
        self._by_key: dict[str, Any] = {}
        self._blink = blink
        self._ready = False

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search: msg type, tag=value, ClOrdID, text…  (/ to focus)", id="search")
        with Horizontal(id="panes"):
            with Vertical(id="msgs"):
                yield DataTable(id="msg-table", cursor_type="row")
            with Vertical(id="fields"):
                yield Static("", id="raw")
                yield DataTable(id="field-table", cursor_type="row")
        yield DeskFooter()

    def on_mount(self) -> None:
        self.query_one("#search", Input).cursor_blink = self._blink
        title = f"FIX messages · {self.session}" if self.session else "FIX messages · all sessions"
        self.query_one("#msgs").border_title = title
        self.query_one("#fields").border_title = "decoded"
        msgs = self.query_one("#msg-table", DataTable)
        msgs.add_column("time", key="time")
        msgs.add_column("dir", key="dir")
        msgs.add_column("session", key="session")
        msgs.add_column("type", key="type")
        fields = self.query_one("#field-table", DataTable)
        fields.add_column("tag", key="tag")
        fields.add_column("field", key="field")
        fields.add_column("value", key="value")
        fields.add_column("meaning", key="meaning")
        self._ready = True
        self.reload()
        msgs.focus()

    def _matches(self, ev: Any) -> bool:
        if self.session and ev.session != self.session:
            return False
        q = self.query_text.lower()
        if not q:
            return True
        return q in ev.raw.lower() or q in msg_type_name(ev.msg_type).lower()

    def _add(self, ev: Any) -> None:
        table = self.query_one("#msg-table", DataTable)
        key = str(ev.seq)
        arrow = "◀ in " if ev.direction == "in" else "▶ out"
        table.add_row(clock(ev.ts, millis=True), arrow, ev.session.split(":", 1)[-1],
                      f"{ev.msg_type} {msg_type_name(ev.msg_type)}", key=key)
        self._rows.append(key)
        self._by_key[key] = ev
        while len(self._rows) > MAX_ROWS:
            old = self._rows.popleft()
            table.remove_row(old)
            self._by_key.pop(old, None)

    def reload(self) -> None:
        """Refill after the search changes (an operator action, not a live update)."""
        table = self.query_one("#msg-table", DataTable)
        table.clear()
        self._rows.clear()
        self._by_key.clear()
        for ev in self.model.fix_msgs:
            if self._matches(ev):
                self._add(ev)
        self._seen = self.model.fix_msg_count
        if table.row_count:
            table.move_cursor(row=table.row_count - 1)
            self.show(self._by_key[self._rows[-1]])

    def refresh_from(self, model: DeskModel) -> None:
        """Live: append messages that arrived since the last tick."""
        if not self._ready:
            return  # not composed yet: on_mount loads everything
        new = model.fix_msg_count - self._seen
        if new <= 0:
            return
        self._seen = model.fix_msg_count
        msgs = list(model.fix_msgs)[-new:] if new < len(model.fix_msgs) else list(model.fix_msgs)
        for ev in msgs:
            if self._matches(ev):
                self._add(ev)

    def show(self, ev: Any) -> None:
        self.query_one("#raw", Static).update(Text(ev.raw.replace("|", "| ")))
        fields = self.query_one("#field-table", DataTable)
        fields.clear()  # a different message: a different set of rows
        for tag, name, value, meaning in decode(ev.raw):
            fields.add_row(str(tag), name or "?", value, meaning)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "msg-table" and event.row_key is not None:
            ev = self._by_key.get(str(event.row_key.value))
            if ev is not None:
                self.show(ev)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value.strip()
        self.reload()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()
