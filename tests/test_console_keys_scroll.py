"""F1's keys panel pages from the keyboard (shift+down / shift+up) without taking the focus, and those keys
are bound only while it is open."""

from __future__ import annotations

from typing import Any

from textual.widgets import KeyPanel

from console.keys_panel import KeysPanel
from tests.test_console_pilot import console, settle


def key_list(app: Any) -> KeyPanel:
    (panel,) = [p for p in app.screen.query(KeysPanel) if p.display]
    return panel.query_one(KeyPanel)


async def test_keys_panel_pages_with_shift_arrows_and_keeps_the_focus(tmp_path: Any) -> None:
    async with console(tmp_path, size=(80, 24)) as (app, _desk, pilot):
        assert app.check_action("scroll_keys", (1,)) is False  # closed: the keys are the focused widget's
        await pilot.press("f1")
        await settle(app, pilot)
        keys = key_list(app)
        focused = app.focused
        assert focused is not None and not keys.has_focus
        page = keys.scrollable_content_region.height
        assert keys.scroll_y == 0 and keys.max_scroll_y > page  # more than two pages of keys at 80x24
        assert app.check_action("scroll_keys", (1,)) is True
        await pilot.press("shift+down")
        await pilot.pause()
        assert keys.scroll_y == page and app.focused is focused
        await pilot.press("shift+down", "shift+up")
        await pilot.pause()
        assert keys.scroll_y == page and app.focused is focused
        await pilot.press("shift+up")
        await pilot.pause()
        assert keys.scroll_y == 0 and app.focused is focused
        # the hidden (system) bindings do not lengthen the list
        assert "Keys ↓" not in str(keys.query_one("BindingsTable").render())
        await pilot.press("f1")
        await settle(app, pilot)
        assert app.check_action("scroll_keys", (1,)) is False

