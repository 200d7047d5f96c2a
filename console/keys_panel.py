"""F1's keys panel: Textual's HelpPanel, sized so the desk beside it keeps a usable width.

Textual's HelpPanel takes a third of the terminal (30 to 60 columns) off the right of the screen. At
80 columns that squeezed the order book to 48 columns (its trade lines cut); between 120 and ~180
columns the main screen kept its two-column layout in what was left, and the right column (FIX
sessions, bots, log) shrank to ~20 columns. Here the panel's width follows the terminal's:

* narrower than 120 columns: 28 columns (fewer on very narrow terminals), so the book keeps 52;
* from 120 columns: what is left over 120 for the desk, between 30 and 60 columns. From 150 columns the
  desk keeps its 120 columns and its two-column layout; between 120 and 150 it has less than 120, and the
  main screen shows one panel at a time as on a narrow terminal (``OpdeskApp.apply_layout`` lays out by
  :func:`desk_width`, the width the panels actually get).

The panel also says how to close it (f1) and scroll it, since the footer beside it may be too narrow.

It scrolls from the keyboard without taking the focus: the keys it lists are those of the focused widget,
so focusing the panel would list only its own. ``shift+down`` / ``shift+up`` (app bindings ``keys.down``
/ ``keys.up``, remappable) page it while it is open and are left to the focused widget otherwise.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import HelpPanel, KeyPanel, Static

#: the keys panel's width on terminals narrower than 120 columns (border and padding included)
NARROW_WIDTH = 28
#: what the desk keeps beside a narrow keys panel before the panel gives up columns (down to MIN_WIDTH)
DESK_KEEPS = 52
MIN_WIDTH = 22
#: the main screen's two-column layout needs this many columns (console/app.py)
WIDE_DESK = 120


def keys_panel_width(terminal_width: int) -> int:
    """Columns the keys panel takes on a terminal this wide."""
    if terminal_width < WIDE_DESK:
        return max(MIN_WIDTH, min(NARROW_WIDTH, terminal_width - DESK_KEEPS))
    return max(30, min(60, terminal_width - WIDE_DESK))


def keys_panel_open(screen: Screen[Any]) -> bool:
    return any(p.is_attached and p.display for p in screen.query(KeysPanel))  # (display: not being removed)


def desk_width(screen: Screen[Any]) -> int:
    """The width the screen's own widgets get: the screen's, less the keys panel when it is open."""
    width = screen.size.width
    return width - keys_panel_width(width) if keys_panel_open(screen) else width


class KeysPanel(HelpPanel):
    DEFAULT_CSS = """
    KeysPanel { min-width: 0; }
    KeysPanel #keys-hint { height: 1; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Static("[b]f1[/b] hides · [b]⇧↑ ⇧↓[/b] scroll", id="keys-hint")
        yield from super().compose()

    def on_mount(self) -> None:
        super().on_mount()
        self.fit()
        self.app.call_after_refresh(self._changed)

    def on_unmount(self) -> None:
        self.app.call_after_refresh(self._changed)

    def fit(self, terminal_width: int | None = None) -> None:
        """Size the panel for the terminal (called on mount and when the terminal is resized)."""
        self.styles.width = keys_panel_width(terminal_width or self.app.size.width)

    def scroll_keys(self, pages: int) -> None:
        """Page the list of keys (Textual's KeyPanel inside) down (``pages`` > 0) or up."""
        for keys in self.query(KeyPanel):
            for _ in range(abs(pages)):
                if pages > 0:
                    keys.scroll_page_down(animate=False)
                else:
                    keys.scroll_page_up(animate=False)

    def _changed(self) -> None:
        # the scroll keys are bound only while a keys panel is open (OpdeskApp.check_action)
        self.app.refresh_bindings()
        relayout = getattr(self.app, "apply_layout", None)
        if relayout is not None:
            relayout()
