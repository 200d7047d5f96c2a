"""The console attached to a remote desk (``opdesk attach``): same app, same panels, same commands.

The desk's state arrives over :class:`engines.remote.client.RemoteDeskClient`; each snapshot builds a
fresh :class:`DeskModel` (so nothing stale survives a reconnect), events then feed it exactly as the
in-process bus would. Actions go over the channel and resolve when the desk acknowledges them.
While the link is down the console says so in the status bar, greys the last known state and the
client reconnects with backoff.
"""

from __future__ import annotations

from typing import Any

from console.actions import ActionUnavailable, DeskActions
from console.app import OpdeskApp
from console.model import DeskModel
from engines.config import DeskConfig
from engines.events import Event
from engines.remote.client import CommandFailed, LinkState, RemoteDeskClient


class RemoteDeskActions(DeskActions):
    """Operator actions sent to a remote desk over the channel: the same methods as the in-process
    :class:`DeskActions`, with only the transport swapped."""

    source = "remote"

    def __init__(self, client: RemoteDeskClient) -> None:
        super().__init__(None)
        self.client = client

    async def _do(self, action: str, **params: Any) -> Any:
        try:
            return await self.client.command(action, params)
        except CommandFailed as exc:
            raise ActionUnavailable(str(exc)) from None


class RemoteConsoleApp(OpdeskApp):
    """The console on a desk in another process or on another machine."""

    CSS = """
    MainScreen.-stale #body {
        tint: $background 45%;
        text-style: dim;
    }
    """

    def __init__(self, config: DeskConfig, url: str, token: str, *, ssl_context: Any = None, **kwargs: Any) -> None:
        self.url = url
        self.client = RemoteDeskClient(
            url,
            token,
            on_snapshot=self._on_snapshot,
            on_events=self._on_events,
            on_link=self._on_link,
            ssl_context=ssl_context,
        )
        model = DeskModel({}, desk_name="(connecting)")
        super().__init__(config, desk=None, model=model, actions=RemoteDeskActions(self.client), **kwargs)
        self.link = LinkState.DISCONNECTED
        self.link_detail = ""
        self.sub_title = f"attaching to {url}"

    def on_mount(self) -> None:
        super().on_mount()
        self.client.start()

    async def on_unmount(self) -> None:
        await self.client.close()
        await super().on_unmount()

    def action_request_quit(self) -> None:
        # Detaching leaves the desk running, so there is nothing to confirm.
        self.exit(0)

    # --- channel callbacks (run in the app's event loop) -------------------------------------------
    def _on_snapshot(self, events: list[Event], status: dict[str, Any]) -> None:
        model = DeskModel(
            self.client.instruments, own_owners=self.client.bots, desk_name=self.client.desk or "desk"
        )
        for ev in events:  # replayed quietly: a snapshot is state, not news to toast
            model.apply(ev)
        model.set_desk_status(status)
        model.urgent.extend(self.model.urgent)
        model.link = self.link  # type: ignore[attr-defined]
        self.model = model
        model.mark_all_dirty()
        if self._main_ready:
            self._select_book_symbol()
            self.refresh_panels()

    def _select_book_symbol(self) -> None:
        from console.panels.order_book import OrderBookPanel

        book = self.main.query_one(OrderBookPanel)
        symbols = self.model.symbols
        if symbols and getattr(book, "symbol", None) not in symbols:
            book.select(symbols[0])

    def _on_events(self, events: list[Event]) -> None:
        apply = self.model.apply
        for ev in events:
            apply(ev)

    def _on_link(self, state: LinkState, detail: str) -> None:
        previous, self.link, self.link_detail = self.link, state, detail
        self.model.link = state  # type: ignore[attr-defined]
        role = f" as {self.client.name} ({self.client.role})" if self.client.name else ""
        labels = {
            LinkState.LIVE: f"attached to {self.url}{role}",
            LinkState.CONNECTING: f"connecting to {self.url}…",
            LinkState.DISCONNECTED: f"DISCONNECTED from {self.url}: {detail} — showing last known state, reconnecting",
            LinkState.REFUSED: f"REFUSED by {self.url}: {detail}",
        }
        self.sub_title = labels[state]
        stale = state is not LinkState.LIVE
        if self.screen_stack:
            self.main.set_class(stale, "-stale")
        self.model.mark_all_dirty()
        if state is LinkState.DISCONNECTED and previous is LinkState.LIVE:
            self.notify(f"lost the desk at {self.url}: {detail}. Reconnecting…", title="Remote desk", severity="error", timeout=8)
        elif state is LinkState.LIVE and previous is not LinkState.LIVE and self.client.connects > 1:
            self.notify(f"re-attached to {self.url}; state re-snapshotted", title="Remote desk", timeout=5)
        elif state is LinkState.REFUSED:
            self.notify(f"{detail}", title="Remote desk", severity="error", timeout=30)
