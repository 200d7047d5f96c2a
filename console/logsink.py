"""Console logging: never print (Textual draws on the terminal). Records go to a file under the
desk's data dir, and warnings plus operator actions go to the event-log panel through the model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engines.logs import JsonLinesFormatter, RedactingFilter, redact

if TYPE_CHECKING:
    from console.model import DeskModel


class ModelLogHandler(logging.Handler):
    """The console's own records (INFO and up) and anyone's errors into the event-log panel.

    Engines' operator-relevant lines reach the event log as bus events (``LogRecordEvent``), which a
    remote console sees too; their stdlib warnings would only duplicate those, so they go to the file.
    """

    def __init__(self, model: DeskModel | Callable[[], DeskModel]) -> None:
        super().__init__(logging.INFO)
        # A callable follows the app's current model (a remote console swaps it on each snapshot).
        self._model = model if callable(model) else (lambda: model)

    @property
    def model(self) -> DeskModel:
        return self._model()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.ERROR and not record.name.startswith("console."):
            return
        try:
            text = redact(record.getMessage())
        except Exception:
            return
        level = "error" if record.levelno >= logging.ERROR else "warning" if record.levelno >= logging.WARNING else "info"
        if record.name == "console.actions":
            level = "action"
        self.model.add_log(level, record.name, text)


def setup_console_logging(level: str, file: Path) -> None:
    """Route the root logger to ``file`` only (JSON lines, secrets redacted)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(file, encoding="utf-8")
    handler.setFormatter(JsonLinesFormatter())
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level)
