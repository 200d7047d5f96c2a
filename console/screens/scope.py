"""Scope picker for kill / re-arm: the whole desk, one bot, or one instrument."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


class ScopeScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="scope.cancel")]

    DEFAULT_CSS = """
    ScopeScreen { align: center middle; background: $background 60%; }
    ScopeScreen > Vertical {
        width: 60; max-width: 95%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    ScopeScreen #title { text-style: bold; margin-bottom: 1; }
    ScopeScreen OptionList { height: auto; max-height: 16; }
    ScopeScreen #hint { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, title: str, scopes: list[tuple[str, str]]) -> None:
        """``scopes``: (scope, label) pairs; the first is highlighted."""
        super().__init__()
        self._title = title
        self._scopes = scopes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, id="title")
            yield OptionList(*[Option(label, id=scope) for scope, label in self._scopes], id="scopes")
            yield Label("↑↓ choose · enter select · esc cancel", id="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
