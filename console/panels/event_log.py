"""The event log: rejects, limit breaches, session changes, kill-switch and operator actions, logs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.widgets import RichLog

from console.format import clock
from console.panels.base import Panel

if TYPE_CHECKING:
    from console.model import DeskModel, LogEntry

LEVEL_TAG = {
    "info": ("·", "", "INFO"),
    "action": ("»", "bold", "ACT "),
    "warning": ("!", "bold", "WARN"),
    "error": ("✖", "bold", "ERR "),
}


class EventLogPanel(Panel):
    key = "log"
    title = "Event log"

    DEFAULT_CSS = """
    EventLogPanel RichLog { background: $surface; scrollbar-size-vertical: 1; }
    """

    def __init__(self, *, id: str | None = None, max_lines: int = 1000) -> None:
        super().__init__(id=id)
        self._seen = 0
        self._max_lines = max_lines
        self._width = 0

    def compose(self):  # type: ignore[override]
        # Wrapped at words (never cut mid-word on a narrow terminal) to the panel's width: min_width
        # below the narrowest panel so RichLog does not render wider than it is shown.
        yield RichLog(id="log", max_lines=self._max_lines, wrap=True, min_width=20, markup=False, auto_scroll=True)

    def on_resize(self, event: events.Resize) -> None:
        """Lines are wrapped when written: at a new width, write the model's (bounded) log again."""
        if event.size.width == self._width:
            return
        self._width = event.size.width
        model = getattr(self.app, "model", None)
        if model is not None and self._seen:
            self.query_one(RichLog).clear()
            self._seen = 0
            self.refresh_from(model)

    def format(self, entry: LogEntry) -> Text:
        symbol, style, label = LEVEL_TAG.get(entry.level, ("·", "", entry.level[:4].upper()))
        colour = {"warning": "$warning", "error": "$error", "action": "$accent"}.get(entry.level)
        text = Text()
        text.append(f"{clock(entry.ts)} ", style="dim")
        tag = Text(f"{symbol} {label}", style=style)
        if colour:
            tag.stylize(self.app.theme_variables.get(colour[1:], ""))
        text.append_text(tag)
        text.append(f" {entry.source}: ", style="bold")
        text.append(entry.text)
        return text

    def refresh_from(self, model: DeskModel) -> None:
        log = self.query_one(RichLog)
        new = [e for e in model.log if e.seq > self._seen]
        # one column kept for the scrollbar, so a wrapped line never runs under it
        width = max(log.min_width, log.scrollable_content_region.width - (0 if log.show_vertical_scrollbar else 1))
        for entry in new:
            log.write(self.format(entry), width=width)
        if new:
            self._seen = new[-1].seq
