"""The status bar: the desk's trading state, which nobody can miss when it is HALTED."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widget import Widget

from console.format import clock, grouped

if TYPE_CHECKING:
    from console.model import DeskModel

STATE_LABEL = {
    "active": "● ACTIVE",
    "reducing": "▲ REDUCING ONLY",
    "halted": "■ HALTED",
}


class StatusBar(Widget):
    key = "status"

    DEFAULT_CSS = """
    StatusBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    StatusBar.-reducing {
        background: $warning;
        color: $background;
        text-style: bold;
    }
    StatusBar.-halted {
        height: 3;
        background: $halted;
        color: $halted-text;
        text-style: bold;
        content-align: center middle;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = Text()
        self._rate: float | None = None
        self._last_events = 0
        self._last_mono: float | None = None

    def render(self) -> Text:
        return self._text

    def sample_rate(self, events: int, mono: float) -> None:
        """Events/s over windows of at least a second (called by the refresh tick with the app's clock)."""
        if self._last_mono is None:
            self._last_events, self._last_mono = events, mono
        elif mono - self._last_mono >= 1.0:
            self._rate = max(0.0, (events - self._last_events) / (mono - self._last_mono))
            self._last_events, self._last_mono = events, mono

    def refresh_from(self, model: DeskModel) -> None:
        # set by the remote console; an in-process desk (link None) is always live
        link = getattr(model, "link", None) or "live"
        if link != "live":
            text = Text(f"⚠ {str(link).upper()} ", style="bold reverse")
            text.append(f"  {getattr(self.app, 'sub_title', '') or 'not connected to the desk'}", style="bold")
            self.set_class(False, "-halted")
            self.set_class(True, "-reducing")
            if text != self._text:
                self._text = text
                self.refresh()
            return
        state = model.desk_state()
        self.set_class(state == "halted", "-halted")
        self.set_class(state == "reducing", "-reducing")
        others = [s for s in model.halted_scopes() if s != "desk"]
        if state == "halted":
            reason = model.state_reason.get("desk", "") or "no reason given"
            text = Text("■ ■ ■   DESK HALTED   ■ ■ ■", style="bold", justify="center")
            text.append(f"\n{reason}", style="bold")
            hint = "nothing trades, cancels only · ctrl+r re-arms"
            if others:
                hint += f" · also halted: {', '.join(others)}"
            text.append(f"\n{hint}", style="not bold")
        else:
            text = Text()
            text.append(f"opdesk · {model.desk_name}  ", style="bold")
            text.append(STATE_LABEL.get(state, state.upper()), style="bold reverse" if state != "active" else "bold")
            if others:
                text.append(f"  ■ {', '.join(others)} halted", style="bold")
            running = sum(1 for s in model.engines.values() if s == "running")
            text.append(f"  engines {running}/{len(model.engines)}")
            # a failed engine stays in view until it runs again (a failed start stops the whole desk:
            # without this the bar read as a quiet desk; the reason is in the event log)
            failed = sorted(name for name, s in model.engines.items() if s == "failed")
            if failed:
                text.append(f" ✖ {', '.join(failed)} failed (log: 5)", style="bold reverse")
            text.append(f"  {clock(model.last_ts)} UTC")
            # Optional figures, as many as fit the width.
            room = max(0, self.size.width - 2) or 200
            for sym in model.symbols:
                price = model.prices.get(sym)
                part = f"  {sym} {grouped(price)}" if price is not None else ""
                if part and text.cell_len + len(part) <= room:
                    text.append(part)
            part = f"  {self._rate:,.0f} ev/s" if self._rate is not None else ""
            if part and text.cell_len + len(part) <= room:
                text.append(part)
        if text != self._text:
            self._text = text
            self.refresh()
