"""The opdesk operator console: one App, a default main screen, panels fed from a plain desk model.

Live data is pulled: the bus writes into :class:`console.model.DeskModel` (conflated state, dirty
flags, ring buffers) and one timer at ``ui.refresh_hz`` refreshes the visible, dirty panels inside
``batch_update()``. Trading-state, kill-switch and FIX-session changes go straight through as
:class:`OpdeskApp.DeskAlert` messages. Every operator action goes through one adapter
(:class:`console.actions.DeskActions`), so a remote console can swap in a remote implementation.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from textual import events, on
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen, Screen

from console.actions import ActionUnavailable, DeskActions
from console.commands import DeskCommands
from console.keys_panel import WIDE_DESK, KeysPanel, desk_width, keys_panel_open
from console.logsink import ModelLogHandler
from console.model import DeskModel
from console.panels.base import Panel
from console.panels.bots import BotsPanel
from console.panels.fix_sessions import FixSessionsPanel
from console.panels.grid import GridPanel
from console.panels.order_book import OrderBookPanel
from console.panels.status_bar import StatusBar
from console.screens.bot_detail import BotDetailScreen
from console.screens.confirm import ConfirmScreen
from console.screens.inspector import FixInspectorScreen
from console.screens.kill_progress import KillProgressScreen
from console.screens.main import PANEL_IDS, MainScreen
from console.screens.orders import OrdersScreen
from console.screens.scope import ScopeScreen
from console.themes import VARIABLE_DEFAULTS, load_themes
from engines.clock import Clock
from engines.config import DeskConfig

log = logging.getLogger("console.app")

ZOOM_HINT = "1 book 2 bots 3 grid 4 fix 5 log · 0 all"
_FAILED = object()  # an action that raised (already reported to the operator)

PANEL_NAMES = {"book": "Order book", "bots": "Bots", "grid": "Grid", "fix": "FIX sessions", "log": "Event log"}


class OpdeskApp(App[int]):
    TITLE = "opdesk"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {DeskCommands}
    COMMAND_PALETTE_BINDING = "ctrl+p"

    BINDINGS = [
        Binding("ctrl+k", "kill", "Kill…", priority=True, id="kill",
                tooltip="Kill switch: choose desk, bot or instrument, confirm, watch the cancels"),
        Binding("ctrl+x", "panic", "PANIC", priority=True, id="panic",
                tooltip="Kill the whole desk now (confirmation per ui.confirm_panic_kill)"),
        Binding("ctrl+r", "rearm", "Re-arm…", priority=True, id="rearm", tooltip="Re-arm a halted scope"),
        Binding("ctrl+q", "request_quit", "Quit", priority=True, id="quit", tooltip="Stop the desk and quit"),
        Binding("f1", "toggle_keys", "Keys", id="keys", tooltip="Show or hide every key of the current view"),
        # Only while the f1 keys panel is open (check_action): it pages without taking the focus. Kept out of
        # the list (system) so it does not lengthen it; the panel's first line names them.
        Binding("shift+down", "scroll_keys(1)", "Keys ↓", id="keys.down", show=False, system=True,
                tooltip="Page the keys panel down"),
        Binding("shift+up", "scroll_keys(-1)", "Keys ↑", id="keys.up", show=False, system=True,
                tooltip="Page the keys panel up"),
    ]

    class DeskAlert(Message):
        """An operator-critical bus event (trading state, kill progress, breach, FIX session, reject)."""

        def __init__(self, event: Any) -> None:
            super().__init__()
            self.event = event

    def __init__(
        self,
        config: DeskConfig,
        desk: Any = None,
        *,
        clock: Clock | None = None,
        live: bool = True,
        start_desk: bool | None = None,
        model: DeskModel | None = None,
        actions: Any = None,
    ) -> None:
        super().__init__()
        if desk is None and model is None:
            from engines.runtime import Desk

            desk = Desk(config, clock=clock).build()
        self.config = config
        self.desk = desk
        self.live = live
        self.start_desk = live if start_desk is None else start_desk
        self._desk_started = False
        self.clock: Clock = clock or (desk.clock if desk is not None else _MonoClock())
        bot_names = [b.name for b in config.mm] + [g.name for g in config.grid]
        self.model = model or DeskModel(
            desk.instruments if desk is not None else config.instrument_map(),
            own_owners=bot_names,
            desk_name=config.desk.name,
        )
        self.actions = actions or DeskActions(desk)
        # The operator dispatcher echoes each action as a LogRecordEvent; the console logs its own.
        self._quiet_source = f"{getattr(self.actions, 'source', 'console')}:{getattr(self.actions, 'actor', 'operator')}"
        self.model.quiet_sources.add(self._quiet_source)
        self._subscriptions = self.model.attach(desk.bus) if (desk is not None and model is None) else []
        self.model.urgent.append(self._urgent)
        self._alert_pending = False
        self._alerts: list[Any] = []
        self._rejects_unshown = 0
        self._last_reject_toast = 0.0
        self.zoomed = ""
        self._main_ready = False
        self._panels: list[Panel] = []
        self._status: StatusBar | None = None
        self.frames = 0  # panel refreshes done by the tick (bench figure)
        self.ticks = 0
        self._last_refresh: dict[str, float] = {}
        self._log_handler: ModelLogHandler | None = None
        for theme in load_themes().values():
            self.register_theme(theme)
        wanted = config.ui.theme
        self.theme = wanted if wanted in self.available_themes else "opdesk-dark"
        if wanted not in self.available_themes:
            self.model.add_log("warning", "console", f"unknown theme {wanted!r}; using opdesk-dark")
        if not live:
            self.animation_level = "none"

    # --- setup ---------------------------------------------------------------------------------------
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def get_default_screen(self) -> Screen[Any]:
        return MainScreen(id="main")

    @property
    def main(self) -> MainScreen:
        return self.screen_stack[0]  # type: ignore[return-value]

    @property
    def panels(self) -> list[Panel]:
        return self._panels

    @property
    def status_bar(self) -> StatusBar:
        assert self._status is not None
        return self._status

    def on_mount(self) -> None:
        self.set_keymap(dict(self.config.ui.keymap))
        self._log_handler = ModelLogHandler(lambda: self.model)
        logging.getLogger().addHandler(self._log_handler)
        self.theme_changed_signal.subscribe(self, lambda _t: self.model.mark_all_dirty())
        if self.live:
            self.set_interval(1 / self.config.ui.refresh_hz, self.refresh_panels, name="refresh")
        if self.start_desk and self.desk is not None:
            self.run_worker(self._start_desk(), name="desk-start", exit_on_error=False)

    def main_ready(self) -> None:
        """The main screen has composed its panels (called from its on_mount)."""
        self._panels = list(self.main.query(Panel))
        self._status = self.main.query_one(StatusBar)
        self._main_ready = True
        if self.live:
            # Everything built so far lives as long as the app: keep it out of the cyclic GC's full
            # collections, which otherwise stall the event loop for tens of ms on a busy desk.
            gc.freeze()
        book = self.main.query_one(OrderBookPanel)
        if self.model.symbols:
            book.select(self.model.symbols[0])
        self.read_desk_status()
        self.apply_layout()

    def read_desk_status(self) -> None:
        """What the engines report only in ``status()`` (the matching engine's order book) into the model;
        the remote console gets the same from each snapshot."""
        if self.desk is None:
            return
        try:
            self.model.set_desk_status(self.desk.status())
        except Exception:  # an engine's status() failing must not take the console down
            log.exception("desk status failed")

    async def _start_desk(self) -> None:
        try:
            await self.desk.start()
            self._desk_started = True
            self.read_desk_status()
        except Exception as exc:
            log.exception("desk failed to start")
            self.toast(f"desk failed to start: {exc}", title="Desk", severity="error", timeout=10)

    async def on_unmount(self) -> None:
        self._main_ready = False
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
        for sub in self._subscriptions:
            sub.cancel()
        if self._desk_started:
            await self.desk.stop()

    # --- the refresh tick ----------------------------------------------------------------------------
    def refresh_panels(self) -> None:
        """Redraw visible, dirty panels (one batch); the live timer calls this at ui.refresh_hz."""
        m = self.model
        if not self._main_ready or not self.screen_stack:
            return
        main = self.main
        screen = self.screen
        self.ticks += 1
        with self.batch_update():
            if screen is main or isinstance(screen, ModalScreen):
                status = self.status_bar
                if self.live:
                    status.sample_rate(m.events, self.clock.monotonic())
                m.dirty.discard("status")
                status.refresh_from(m)
                now = time.monotonic()
                capped_done = False
                for panel in self.panels:
                    if panel.display and panel.key in m.dirty:
                        if self.live and panel.max_hz:
                            # Rate-capped panels: at most one per tick, so their (costly) renders are
                            # spread over the ticks instead of landing in the same frame.
                            if capped_done or now - self._last_refresh.get(panel.key, 0.0) < 1 / panel.max_hz:
                                continue  # stays dirty: refreshed on a later tick
                            capped_done = True
                        self._last_refresh[panel.key] = now
                        m.dirty.discard(panel.key)
                        panel.refresh_from(m)
                        self.frames += 1
            if screen is not main and hasattr(screen, "refresh_from"):
                screen.refresh_from(m)

    def apply_layout(self) -> None:
        if not self._main_ready:
            return
        main = self.main
        # by the width the panels get: the keys panel (f1) takes its columns off the screen's
        width = desk_width(main)
        narrow = width and width < WIDE_DESK
        zoom = self.zoomed or ("book" if narrow else "")
        main.set_class(bool(zoom), "-zoom")
        for panel in self.panels:
            panel.display = not zoom or panel.id == zoom
            if panel.id != "book":
                panel.border_subtitle = ZOOM_HINT if zoom else ""
        if zoom == "book":
            main.query_one(OrderBookPanel).border_subtitle = "[ ] instrument · " + ZOOM_HINT
        else:
            main.query_one(OrderBookPanel).border_subtitle = "[ ] instrument · 1-5 one panel"
        left = main.query_one("#left")
        right = main.query_one("#right")
        left.display = not zoom or zoom in ("book", "grid")
        right.display = not zoom or zoom in ("fix", "bots", "log")
        self.model.mark_all_dirty()
        self.call_after_refresh(self.refresh_panels)

    def on_resize(self, event: events.Resize) -> None:
        for screen in self.screen_stack:
            for keys in screen.query(KeysPanel):
                keys.fit(event.size.width)  # (runs before App updates self.size)
        self.call_after_refresh(self.apply_layout)

    # --- urgent events -------------------------------------------------------------------------------
    def _urgent(self, ev: Any) -> None:
        """Called synchronously by the model on the bus's publish; hands off to the message queue."""
        if type(ev).__name__ == "OrderRejected":
            self._rejects_unshown += 1
            if self._alert_pending:
                return
        self._alerts.append(ev)
        if not self._alert_pending:
            self._alert_pending = True
            self.post_message(self.DeskAlert(ev))

    @on(DeskAlert)
    def _on_alert(self, message: DeskAlert) -> None:
        self._alert_pending = False
        alerts, self._alerts = self._alerts, []
        m = self.model
        for ev in alerts:
            name = type(ev).__name__
            if not self._main_ready:
                continue
            if name == "TradingStateChanged":
                self.status_bar.refresh_from(m)
                state = str(getattr(ev.state, "value", ev.state))
                sev = "error" if state == "halted" else "warning" if state == "reducing" else "information"
                self.toast(f"{ev.scope} {state.upper()}: {ev.reason}", title="Trading state", severity=sev)
            elif name == "KillProgress":
                screen = self.screen
                if isinstance(screen, KillProgressScreen) and screen.scope == ev.scope:
                    screen.refresh_from(m)
            elif name == "RiskBreach":
                self.toast(f"{ev.scope}: {ev.rule} {ev.value} > {ev.limit}", title="Risk breach", severity="error")
            elif name == "FixSessionState":
                state = str(getattr(ev.state, "value", ev.state))
                if state in ("DISCONNECTED", "RECONNECTING"):
                    why = f": {ev.reason}" if getattr(ev, "reason", "") else ""
                    self.toast(f"{ev.session} {state}{why}", title="FIX session", severity="warning")
                fix = self.main.query_one(FixSessionsPanel)
                if fix.display:
                    m.dirty.discard("fix")
                    fix.refresh_from(m)
            elif name == "OrderRejected":
                now = time.monotonic()
                if now - self._last_reject_toast >= 2.0:
                    n, self._rejects_unshown = self._rejects_unshown, 0
                    more = f" (+{n - 1} more)" if n > 1 else ""
                    self.toast(f"{ev.owner} {ev.symbol}: {ev.reason}{more}", title="Order rejected",
                                severity="warning")
                    self._last_reject_toast = now
            elif name == "EngineStatusChanged":
                state = str(getattr(ev.state, "value", ev.state))
                if state in ("failed", "degraded"):
                    self.toast(f"{ev.engine} {state}: {ev.detail}", title="Engine", severity="error")
            elif name == "QueueOverflow" and ev.cut_off:
                self.toast(f"bus consumer {ev.consumer} cut off", title="Bus", severity="error")

    # --- helpers -------------------------------------------------------------------------------------
    def toast(self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None) -> None:
        """A notification; without the live timer (tests) it stays up so screenshots are repeatable."""
        if timeout is None:
            timeout = 8.0 if severity == "error" else 5.0
        self.notify(message, title=title, severity=severity, timeout=timeout if self.live else 3600.0)

    @property
    def book_symbol(self) -> str:
        return self.main.query_one(OrderBookPanel).ladder.symbol

    def bot_names(self) -> list[str]:
        names = set(self.model.bots) | set(self.model.grids)
        names |= {b.name for b in self.config.mm} | {g.name for g in self.config.grid}
        return sorted(names)

    def bot_params(self, name: str) -> dict[str, Any]:
        for section in (self.config.mm, self.config.grid):
            for bot in section:
                if bot.name == name:
                    return {k: v for k, v in bot.model_dump().items()}
        return {}

    async def _act(self, what: str, coro_fn: Callable[[], Any]) -> Any:
        try:
            result = await coro_fn()
        except ActionUnavailable as exc:
            self.model.add_log("warning", "console", f"{what}: {exc}")
            self.toast(str(exc), title=what, severity="error")
            return _FAILED
        except Exception as exc:
            log.exception("%s failed", what)
            self.toast(f"{what} failed: {exc}", title=what, severity="error")
            return _FAILED
        return result

    def _run(self, what: str, coro_fn: Callable[[], Any], done: str | None = None) -> None:
        async def job() -> None:
            result = await self._act(what, coro_fn)
            if done and result is not _FAILED:
                self.toast(done.format(result=result), title=what)

        self.run_worker(job(), name=what, exit_on_error=False)

    # --- kill switch ---------------------------------------------------------------------------------
    def kill_scopes(self) -> list[tuple[str, str]]:
        m = self.model
        scopes = [("desk", f"■ whole desk — halt everything, cancel {m.open_count()} open orders")]
        for name in self.bot_names():
            scopes.append((f"bot:{name}", f"bot {name} — {m.open_count(owner=name)} open orders"))
        for sym in m.symbols:
            scopes.append((f"instrument:{sym}", f"instrument {sym} — {m.open_count(symbol=sym)} open orders"))
        return scopes

    def action_kill(self) -> None:
        self.push_screen(ScopeScreen("Kill switch: what do you want to halt?", self.kill_scopes()),
                         callback=self._kill_scope_chosen)

    def _kill_scope_chosen(self, scope: str | None) -> None:
        if scope:
            self.confirm_kill(scope)

    def action_panic(self) -> None:
        self.confirm_kill("desk", skip_confirm=not self.config.ui.confirm_panic_kill)

    def confirm_kill(self, scope: str, *, skip_confirm: bool = False) -> None:
        if skip_confirm:
            self.start_kill(scope)
            return
        m = self.model
        if scope == "desk":
            n = m.open_count()
        elif scope.startswith("bot:"):
            n = m.open_count(owner=scope[4:])
        else:
            n = m.open_count(symbol=scope.split(":", 1)[1])
        body = (
            f"Halt {scope}: no new orders will be accepted for it, and its {n} open orders are cancelled.\n"
            f"Re-arm later with ctrl+r."
        )
        self.push_screen(
            ConfirmScreen(f"■ KILL {scope.upper()}?", body, yes="Kill", no="Cancel", danger=True),
            callback=lambda ok: self.start_kill(scope) if ok else None,
        )

    def start_kill(self, scope: str) -> None:
        # (logged by the kill switch itself: KillSwitchAction, state change, progress)
        screen = KillProgressScreen(scope)

        async def job() -> None:
            kill = asyncio.ensure_future(self._act("Kill", lambda: self.actions.kill(scope)))
            # Let the kill switch halt first (it does so before its first await) so the HALTED alert is
            # queued ahead of the progress screen's mount: the operator sees HALTED at once.
            await asyncio.sleep(0)
            self.push_screen(screen)
            report = await kill
            if report is _FAILED and screen.is_attached:
                screen.dismiss(None)
                return
            if screen.is_attached:
                screen.refresh_from(self.model)

        self.run_worker(job(), name=f"kill {scope}", exit_on_error=False)

    def action_rearm(self) -> None:
        halted = sorted(self.model.halted_scopes(), key=lambda s: (s != "desk", s))
        if not halted:
            self.toast("nothing is halted", title="Re-arm")
            return
        if len(halted) == 1:
            self.confirm_rearm(halted[0])
            return
        options = [(s, f"{s} — {self.model.states[s].upper()}: {self.model.state_reason.get(s, '')}") for s in halted]
        self.push_screen(ScopeScreen("Re-arm: which scope?", options),
                         callback=lambda s: self.confirm_rearm(s) if s else None)

    def confirm_rearm(self, scope: str) -> None:
        reason = self.model.state_reason.get(scope, "")
        body = f"{scope} was halted: {reason or 'no reason given'}.\nRe-arming lets it trade again."
        self.push_screen(
            ConfirmScreen(f"Re-arm {scope}?", body, yes="Re-arm", no="Cancel"),
            callback=lambda ok: self._do_rearm(scope) if ok else None,
        )

    def _do_rearm(self, scope: str) -> None:
        self._run("Re-arm", lambda: self.actions.rearm(scope))

    # --- bots ----------------------------------------------------------------------------------------
    def _selected_bot(self) -> str | None:
        bots = self.main.query_one(BotsPanel)
        return bots.selected or next(iter(sorted(self.model.bots)), None)

    def pause_bot(self, name: str) -> None:
        self.model.add_log("action", "console", f"operator pause {name}")
        self._run("Pause", lambda: self.actions.pause(name), done=f"{name} paused")

    def resume_bot(self, name: str) -> None:
        self.model.add_log("action", "console", f"operator resume {name}")
        self._run("Resume", lambda: self.actions.resume(name), done=f"{name} resumed")

    def action_pause_selected(self) -> None:
        name = self._selected_bot()
        if name:
            self.pause_bot(name)

    def action_resume_selected(self) -> None:
        name = self._selected_bot()
        if name:
            self.resume_bot(name)

    def action_pause_grid(self) -> None:
        name = self.main.query_one(GridPanel).view.bot
        if name:
            self.pause_bot(name)

    def action_resume_grid(self) -> None:
        name = self.main.query_one(GridPanel).view.bot
        if name:
            self.resume_bot(name)

    def action_next_grid(self) -> None:
        panel = self.main.query_one(GridPanel)
        panel.cycle(self.model)
        panel.refresh_from(self.model)

    def show_bot_detail(self, name: str) -> None:
        self.push_screen(BotDetailScreen(self.model, name, self.bot_params(name)))

    def action_bot_detail(self) -> None:
        name = self._selected_bot()
        if name:
            self.show_bot_detail(name)

    def action_grid_detail(self) -> None:
        name = self.main.query_one(GridPanel).view.bot
        if name:
            self.show_bot_detail(name)

    # --- orders / instruments ------------------------------------------------------------------------
    def action_instrument(self, delta: int) -> None:
        syms = self.model.symbols
        if not syms:
            return
        cur = self.book_symbol
        i = syms.index(cur) if cur in syms else 0
        self.show_instrument(syms[(i + delta) % len(syms)])

    def show_instrument(self, symbol: str) -> None:
        book = self.main.query_one(OrderBookPanel)
        book.select(symbol)
        book.refresh_from(self.model)

    def action_cancel_all_instrument(self) -> None:
        self.confirm_cancel_all(self.book_symbol)

    def confirm_cancel_all(self, symbol: str) -> None:
        n = self.model.open_count(symbol=symbol)
        self.push_screen(
            ConfirmScreen(f"Cancel all on {symbol}?", f"Cancel every open order on {symbol} ({n} open now)."
                          "\nTrading stays armed: bots may quote again.", yes="Cancel all", no="Keep",
                          danger=True),
            callback=lambda ok: self._do_cancel_all(symbol) if ok else None,
        )

    def _do_cancel_all(self, symbol: str) -> None:
        self.model.add_log("action", "console", f"operator cancel all {symbol}")
        self._run("Cancel all", lambda: self.actions.cancel_all(symbol), done=f"{symbol}: {{result}} cancelled")

    def action_orders(self) -> None:
        self.push_screen(OrdersScreen(self.model))

    # --- FIX -----------------------------------------------------------------------------------------
    def _selected_session(self) -> str | None:
        return self.main.query_one(FixSessionsPanel).selected or next(iter(sorted(self.model.fix)), None)

    def action_fix_inspector(self, session: str | None = None) -> None:
        self.push_screen(FixInspectorScreen(self.model, session, blink=self.live))

    def action_fix_logout_selected(self) -> None:
        session = self._selected_session()
        if session:
            self.confirm_fix_logout(session)

    def confirm_fix_logout(self, session: str) -> None:
        self.push_screen(
            ConfirmScreen(f"Log out {session}?", "The session sends Logout and disconnects.", yes="Log out"),
            callback=lambda ok: self._run("FIX logout", lambda: self.actions.fix_logout(session)) if ok else None,
        )

    def action_fix_reconnect_selected(self) -> None:
        session = self._selected_session()
        if session:
            self.fix_reconnect(session)

    def fix_reconnect(self, session: str) -> None:
        self.model.add_log("action", "console", f"operator FIX reconnect {session}")
        self._run("FIX reconnect", lambda: self.actions.fix_reconnect(session), done=f"{session} reconnecting")

    # --- layout / misc -------------------------------------------------------------------------------
    def action_zoom(self, panel: str) -> None:
        self.zoomed = "" if panel == self.zoomed else panel
        self.apply_layout()
        if self.zoomed:
            target = self.main.query_one(f"#{self.zoomed}")
            focusables = [w for w in target.query("*") if w.focusable]
            if focusables:
                focusables[0].focus()
            elif target.focusable:
                target.focus()

    def action_request_quit(self) -> None:
        self.push_screen(
            ConfirmScreen("Quit opdesk?", "Quitting stops this desk: the bots stop quoting, FIX sessions log out "
                          "and every engine shuts down.", yes="Quit", no="Stay"),
            callback=lambda ok: self.exit(0) if ok else None,
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "scroll_keys":
            # Not bound (nor listed) while no keys panel is open: the keys stay free for the focused widget.
            return keys_panel_open(self.screen)
        return True

    def action_scroll_keys(self, pages: int) -> None:
        for keys in self.screen.query(KeysPanel):
            keys.scroll_keys(pages)

    def action_toggle_keys(self) -> None:
        if keys_panel_open(self.screen):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_show_help_panel(self) -> None:
        """F1's keys panel (and the palette's "Keys"): ours, sized so the desk beside it stays usable."""
        if not self.screen.query("HelpPanel"):
            self.screen.mount(KeysPanel())

    def set_theme(self, name: str) -> None:
        self.theme = name

    def palette_commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        """Every console action as (name, callback, help) for the command palette."""
        cmds: list[tuple[str, Callable[[], Any], str]] = [
            ("Kill: whole desk", lambda: self.confirm_kill("desk"), "Halt the desk and cancel every open order"),
            ("Kill: choose scope…", self.action_kill, "Desk, one bot, or one instrument"),
            ("Re-arm…", self.action_rearm, "Re-arm a halted scope"),
            ("FIX message inspector", self.action_fix_inspector, "Every FIX message, decoded, searchable"),
            ("Orders", self.action_orders, "Recent orders; enter shows an order's lifecycle"),
            ("Grid: next grid bot", self.action_next_grid, "Show the next grid bot in the grid panel (key g)"),
            ("Show all panels", lambda: self.action_zoom(""), "Every panel on one screen"),
            ("Quit", self.action_request_quit, "Stop the desk and quit"),
        ]
        for key, panel in PANEL_IDS.items():
            cmds.append((f"Show panel: {PANEL_NAMES[panel]}", lambda p=panel: self.action_zoom(p), f"key {key}"))
        for name in self.bot_names():
            cmds += [
                (f"Kill: bot {name}", lambda n=name: self.confirm_kill(f"bot:{n}"), "Halt this bot, cancel its orders"),
                (f"Pause bot {name}", lambda n=name: self.pause_bot(n), "Stop quoting; orders cancelled by the bot"),
                (f"Resume bot {name}", lambda n=name: self.resume_bot(n), "Quote again"),
                (f"Bot detail: {name}", lambda n=name: self.show_bot_detail(n), "Parameters and status"),
            ]
        for sym in self.model.symbols:
            cmds += [
                (f"Kill: instrument {sym}", lambda s=sym: self.confirm_kill(f"instrument:{s}"),
                 "Halt trading in this instrument"),
                (f"Cancel all on {sym}", lambda s=sym: self.confirm_cancel_all(s), "Cancel every open order"),
                (f"Book: show {sym}", lambda s=sym: self.show_instrument(s), "Order book ladder"),
            ]
        for scope in self.model.halted_scopes():
            cmds.append((f"Re-arm {scope}", lambda s=scope: self.confirm_rearm(s), "Let it trade again"))
        for session in sorted(self.model.fix):
            cmds += [
                (f"FIX logout {session}", lambda s=session: self.confirm_fix_logout(s), "Send Logout"),
                (f"FIX reconnect {session}", lambda s=session: self.fix_reconnect(s), "Reconnect the session"),
                (f"FIX messages {session}", lambda s=session: self.action_fix_inspector(s), "Inspector"),
            ]
        for theme in sorted(t for t in self.available_themes if t.startswith("opdesk")):
            cmds.append((f"Theme: {theme}", lambda t=theme: self.set_theme(t), "Switch the console theme"))
        return cmds


class _MonoClock:
    def time_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()


def build_app(config: DeskConfig, desk: Any = None, clock: Clock | None = None, live: bool = True) -> OpdeskApp:
    """The console app. Tests pass a seeded desk and ``live=False``: no refresh timer (call
    ``app.refresh_panels()``), the desk is not started by the app, no animations or cursor blink."""
    return OpdeskApp(config, desk, clock=clock, live=live)
