"""Live view of a kill: cancels requested, confirmed, still pending, until the kill completes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Label, ProgressBar, Static

if TYPE_CHECKING:
    from console.model import DeskModel


class KillProgressScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter", "close", "Close", id="kill.close")]

    DEFAULT_CSS = """
    KillProgressScreen { align: center middle; background: $background 60%; }
    KillProgressScreen > Vertical {
        width: 72; max-width: 95%; height: auto; border: thick $halted; background: $surface; padding: 1 2;
    }
    KillProgressScreen #title { text-style: bold; background: $halted; color: $halted-text; width: 100%; padding: 0 1; }
    KillProgressScreen ProgressBar { margin: 1 0; }
    KillProgressScreen #pending { height: auto; max-height: 10; color: $text-muted; }
    KillProgressScreen #hint { color: $text-muted; }
    """

    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope
        self.done = False
        self._ready = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"■ KILL {self.scope} — cancelling open orders", id="title")
            yield ProgressBar(total=None, show_eta=False, id="bar")
            yield Label("waiting for the kill switch…", id="counts")
            yield Static("", id="pending")
            yield Label("esc/enter close (the kill carries on)", id="hint")

    def on_mount(self) -> None:
        self._ready = True
        model = getattr(self.app, "model", None)
        if model is not None:
            self.refresh_from(model)

    def refresh_from(self, model: DeskModel) -> None:
        if not self._ready:
            return  # pushed but not composed yet; on_mount shows the latest progress
        self.show(model.kill_progress.get(self.scope), model.states.get(self.scope, "active"))

    def show(self, progress: Any, state: str) -> None:
        if progress is None:
            return
        try:
            bar = self.query_one(ProgressBar)
            counts = self.query_one("#counts", Label)
            pending_view = self.query_one("#pending", Static)
            title = self.query_one("#title", Label)
        except NoMatches:  # not (fully) composed yet, or already closing: the next refresh tick shows it
            return
        bar.update(total=max(1, progress.requested), progress=progress.confirmed)
        status = "✔ done" if progress.done else "… confirming"
        counts.update(
            f"{status}: {progress.confirmed}/{progress.requested} cancels confirmed"
            f" · {progress.elapsed_ms:.1f} ms · {self.scope} {state.upper()}"
        )
        pending = list(progress.pending)
        text = Text("\n".join(f"  pending {p}" for p in pending[:8]))
        if len(pending) > 8:
            text.append(f"\n  … and {len(pending) - 8} more")
        pending_view.update(text)
        if progress.done and not self.done:
            self.done = True
            title.update(f"■ KILL {self.scope} — complete")

    def action_close(self) -> None:
        self.dismiss(None)
