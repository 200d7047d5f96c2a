"""Grid bots: the levels with their state, a marker at the current price, round trips, grid profit,
fees, inventory and the market-state classification."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.binding import Binding
from textual.widget import Widget

from console.format import grouped, money
from console.panels.base import Panel

if TYPE_CHECKING:
    from console.model import DeskModel

LEVEL_MARK = {
    "buy": ("▼ buy ", "bid"),
    "sell": ("▲ sell", "ask"),
    "empty": ("· —   ", "muted"),
}


class GridView(Widget):
    DEFAULT_CSS = """
    GridView { height: 1fr; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = Text()
        self.bot: str | None = None

    def render(self) -> Text:
        return self._text

    def on_resize(self) -> None:
        # How many levels fit depends on the height: redraw for the new size.
        parent = self.parent
        if isinstance(parent, Panel):
            parent.refresh_from(self.app.model)  # type: ignore[attr-defined]

    def show(self, text: Text) -> None:
        if text != self._text:
            self._text = text
            self.refresh()


def grid_text(model: DeskModel, ev: Any, height: int, colours: dict[str, str]) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    name = ev.bot
    state = str(getattr(ev, "state", "?"))
    if model.states.get(f"bot:{name}", "active") != "active" or model.desk_state() != "active":
        state = f"■ {state}"
    market = str(getattr(ev, "market_state", "—"))
    t.append(f"{name}", style="bold")
    t.append(f" {getattr(ev, 'symbol', '')}  {state}  market: {market}\n")
    profit = float(getattr(ev, "grid_profit", 0.0))
    unreal = float(getattr(ev, "unrealised", 0.0))
    t.append(f"round trips {getattr(ev, 'round_trips', 0)} · grid profit ")
    t.append(money(profit), style=colours.get("pnl-up" if profit > 0 else "pnl-down" if profit < 0 else "", ""))
    t.append(f" · fees {float(getattr(ev, 'fees', 0.0)):,.2f}\n")
    t.append(f"inventory {float(getattr(ev, 'inventory', 0.0)):g} · unrealised ")
    t.append(money(unreal), style=colours.get("pnl-up" if unreal > 0 else "pnl-down" if unreal < 0 else "", ""))
    t.append("\n")
    levels = sorted(getattr(ev, "levels", ()) or (), key=lambda lv: -float(lv[0]))
    price = getattr(ev, "last_price", None) or model.prices.get(getattr(ev, "symbol", ""))
    rows: list[tuple[str, str | None]] = []
    marker_done = price is None
    for px, st in levels:
        if not marker_done and float(px) < float(price):
            rows.append((f"  ──▶ {grouped(float(price))}  price", "marker"))
            marker_done = True
        label, colour = LEVEL_MARK.get(str(st), (f"? {st}", "muted"))
        rows.append((f"  {grouped(float(px)):>12}  {label}", colour))
    if not marker_done:
        rows.append((f"  ──▶ {grouped(float(price))}  price", "marker"))
    room = max(1, height - 4)
    if len(rows) > room:
        centre = next((i for i, (_, c) in enumerate(rows) if c == "marker"), len(rows) // 2)
        start = max(0, min(len(rows) - room, centre - room // 2))
        rows = rows[start : start + room]
    for text, colour in rows:
        style = "bold reverse" if colour == "marker" else colours.get(colour or "", "")
        t.append(text + "\n", style=style)
    last_fill = getattr(ev, "last_fill", "")
    if last_fill:
        t.append(f"last fill: {last_fill}", style=colours.get("muted", ""))
    return t


class GridPanel(Panel):
    max_hz = 4.0
    key = "grid"
    title = "Grid bots"

    BINDINGS = [
        Binding("g", "app.next_grid", "Next", id="grid.next", tooltip="Show the next grid bot"),
        Binding("p", "app.pause_grid", "Pause", id="grid.pause", tooltip="Pause the shown grid bot"),
        Binding("r", "app.resume_grid", "Resume", id="grid.resume", tooltip="Resume the shown grid bot"),
        Binding("enter", "app.grid_detail", "Detail", id="grid.detail", tooltip="Grid bot detail"),
    ]

    can_focus = True

    def compose(self):  # type: ignore[override]
        yield GridView(id="grid-view")

    @property
    def view(self) -> GridView:
        return self.query_one(GridView)

    def cycle(self, model: DeskModel) -> None:
        names = sorted(model.grids)
        if names:
            cur = self.view.bot
            i = names.index(cur) + 1 if cur in names else 0
            self.view.bot = names[i % len(names)]

    def refresh_from(self, model: DeskModel) -> None:
        view = self.view
        names = sorted(model.grids)
        if not names:
            view.show(Text("no grid bot running", style="dim"))
            self.set_title("Grid bots · none running")
            return
        if view.bot not in model.grids:
            view.bot = names[0]
        colours = {
            k: self.app.theme_variables.get(k, "")
            for k in ("bid", "ask", "pnl-up", "pnl-down", "muted")
        }
        view.show(grid_text(model, model.grids[view.bot], view.size.height, colours))
        self.set_title(f"Grid · {view.bot} ({names.index(view.bot) + 1}/{len(names)})")
