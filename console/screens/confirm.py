"""A yes/no confirmation: ``ModalScreen[bool]``."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; background: $background 60%; }
    ConfirmScreen > Vertical {
        width: 64; max-width: 95%; height: auto;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    ConfirmScreen.-danger > Vertical { border: thick $halted; }
    ConfirmScreen #title { text-style: bold; width: 100%; margin-bottom: 1; }
    ConfirmScreen.-danger #title { color: $text; background: $halted; color: $halted-text; padding: 0 1; }
    ConfirmScreen #message { width: 100%; margin-bottom: 1; }
    ConfirmScreen Horizontal { height: auto; align: right middle; }
    ConfirmScreen Button { margin-left: 2; }
    """

    def __init__(self, title: str, body: str, *, yes: str = "Yes", no: str = "Cancel", danger: bool = False) -> None:
        super().__init__(classes="-danger" if danger else "")
        self._title, self._body, self._yes, self._no = title, body, yes, no
        self._danger = danger

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, id="title")
            yield Label(self._body, id="message")
            with Horizontal():
                yield Button(f"{self._no} (n)", id="no")
                yield Button(f"{self._yes} (y)", id="yes", variant="error" if self._danger else "primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)
