"""Entry point: run the console on a desk built in this process."""

from __future__ import annotations

from engines.config import DeskConfig


def run_console(config: DeskConfig) -> int:
    from console.app import OpdeskApp

    app = OpdeskApp(config)
    app.run()
    return app.return_code or 0
