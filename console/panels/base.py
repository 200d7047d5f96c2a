"""What every main-screen panel provides to the app's refresh loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.containers import Vertical

if TYPE_CHECKING:
    from console.model import DeskModel


class Panel(Vertical):
    """A bordered, titled panel on the main screen; mounted once, shown or hidden with ``display``."""

    key: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: Cap on live refreshes per second (None: every tick). Tables and text blocks are costly to
    #: re-render and nobody reads a table faster than a few times a second; the ladder runs at full rate.
    max_hz: ClassVar[float | None] = None

    DEFAULT_CSS = """
    Panel {
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        height: 1fr;
        padding: 0 0;
    }
    Panel:focus-within {
        border: round $primary;
        border-title-color: $text;
        border-title-style: bold;
    }
    """

    def on_mount(self) -> None:
        self.border_title = self.title

    def set_title(self, title: str) -> None:
        """Set the border title only when it changes: a repaint of the panel repaints its children."""
        if str(self.border_title) != title:
            self.border_title = title

    def refresh_from(self, model: DeskModel) -> None:  # pragma: no cover - overridden
        raise NotImplementedError
