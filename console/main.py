"""Entry point: run the console on a desk built in this process."""

from __future__ import annotations

from typing import Any

from engines.config import DeskConfig


def run_console(config: DeskConfig) -> int:
    from console.app import build_app
    from console.logsink import setup_console_logging

    app = build_app(config)
    # Never print while Textual owns the terminal: logs go to a file under the desk's data dir.
    setup_console_logging(config.logging.level, config.logging.file or app.desk.data_dir / "console.log")
    app.run()
    return app.return_code or 0


def run_remote_console(config: DeskConfig, url: str, token: str, *, ssl_context: Any = None) -> int:
    """The console attached to a desk running elsewhere (``opdesk attach``)."""
    from console.logsink import setup_console_logging
    from console.remote import RemoteConsoleApp

    app = RemoteConsoleApp(config, url, token, ssl_context=ssl_context)
    setup_console_logging(config.logging.level, config.logging.file or config.desk.path / "attach.log")
    app.run()
    return app.return_code or 0
