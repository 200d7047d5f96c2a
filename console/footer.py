"""The console's footer: Textual's Footer, showing only the bindings that fit the terminal's width.

Textual's :class:`~textual.widgets.Footer` lays every shown binding out on one line and clips what
does not fit (at 80 columns the kill switch's keys were cut mid-word and a stray letter was left
behind the command-palette key). This footer composes the same keys (``Footer.compose``, untouched)
and keeps, in the footer's own order, those that fit: the operator-critical keys first (``essential``
actions, in that order), then the others in the order Textual lists them (the focused panel's keys
before the screen's). Whatever is left out is still bound, listed by F1 (the keys panel) and in the
command palette. It recomposes when its width changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.compose import compose
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel, KeyGroup

#: the app's actions that stay in the footer while anything does, most important first
ESSENTIAL = ("kill", "panic", "rearm", "request_quit", "toggle_keys")


class DeskFooter(Footer):
    """A compact footer that drops the least important bindings rather than clip them."""

    # The palette key ends at the screen's edge (Footer gives it a margin cell there in compact style).
    DEFAULT_CSS = """
    DeskFooter.-compact FooterKey.-command-palette {
        margin-right: 0;
    }
    """

    def __init__(self, *, essential: Iterable[str] = ESSENTIAL, compact: bool = True, **kwargs: Any) -> None:
        super().__init__(compact=compact, **kwargs)
        self.essential = tuple(essential)
        self.hidden: list[str] = []  # actions left out at the last compose (tests, the keys hint)
        self._composed_width = -1

    def compose(self) -> ComposeResult:
        nodes = compose(self, super().compose())
        width = self.size.width
        self._composed_width = width
        self.hidden = []
        if not width:  # not laid out yet: on_resize recomposes once the width is known
            yield from nodes
            return
        palette = [n for n in nodes if n.has_class("-command-palette")]
        keys = [n for n in nodes if not n.has_class("-command-palette")]
        budget = width - sum(self._width(n) for n in palette)
        rank = sorted(range(len(keys)), key=lambda i: (self._rank(keys[i]), i))
        keep: set[int] = set()
        for i in rank:
            w = self._width(keys[i])
            if w <= budget:
                keep.add(i)
                budget -= w
        for i, node in enumerate(keys):
            if i in keep:
                yield node
            elif isinstance(node, FooterKey):
                self.hidden.append(node.action)
        yield from palette

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._composed_width and self._bindings_ready:
            self.call_after_refresh(self.recompose)

    def _rank(self, node: Widget) -> int:
        action = node.action if isinstance(node, FooterKey) else ""
        return self.essential.index(action) if action in self.essential else len(self.essential)

    def _width(self, node: Widget) -> int:
        """Cells the node takes in the footer (its text, padding, margin and border, per Footer's CSS)."""
        if isinstance(node, FooterKey):
            key, desc = cell_len(node.key_display), cell_len(node.description)
            if node.has_class("-command-palette"):
                # docked right after a 1-cell border; compact: "k desc" (no margin, DEFAULT_CSS);
                # else " k " + "desc " + padding-right 1
                return 1 + key + 1 + desc if self.compact else 1 + key + 2 + desc + 1 + 1
            if node.has_class("-grouped"):
                return key + (0 if self.compact else 2)
            if self.compact:  # "k desc" + margin-right 1
                return key + (1 + desc if desc else 0) + 1
            return key + 2 + (desc + 1 if desc else 0)  # " k " + "desc "
        if isinstance(node, KeyGroup):
            return sum(self._width(child) for child in node._pending_children) + 2
        if isinstance(node, FooterLabel):
            return cell_len(str(node.content)) + (0 if self.compact else 1)
        return 0
