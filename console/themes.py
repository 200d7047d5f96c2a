"""Console themes: TOML files in ``themes/`` loaded into :class:`textual.theme.Theme`.

Each file holds the Textual base colours at top level and the desk's own variables (``bid``, ``ask``,
``pnl-up``, ``pnl-down``, ``halted`` …) in ``[variables]``; TCSS refers to them as ``$bid`` etc.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from textual.theme import Theme

from engines.config import THEMES_DIR

#: Fallbacks so TCSS using the desk variables parses under any theme (e.g. Textual's built-ins).
VARIABLE_DEFAULTS: dict[str, str] = {
    "bid": "#3FB68B",
    "ask": "#E5675B",
    "pnl-up": "#46B37A",
    "pnl-down": "#E5534B",
    "halted": "#C0262D",
    "halted-text": "#FFFFFF",
    "own": "#E0A84A",
    "muted": "#7A8594",
}

_FIELDS = (
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "dark",
)


class ThemeFileError(ValueError):
    pass


def load_theme(path: Path) -> Theme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ThemeFileError(f"{path}: {exc}") from exc
    if "primary" not in data:
        raise ThemeFileError(f"{path}: primary: missing (every theme needs a primary colour)")
    unknown = set(data) - {*_FIELDS, "name", "variables"}
    if unknown:
        raise ThemeFileError(f"{path}: unknown keys {', '.join(sorted(unknown))}")
    variables = {**VARIABLE_DEFAULTS, **{k: str(v) for k, v in data.get("variables", {}).items()}}
    kwargs = {k: data[k] for k in _FIELDS if k in data}
    return Theme(name=data.get("name", path.stem), variables=variables, **kwargs)


def load_themes(directory: Path = THEMES_DIR) -> dict[str, Theme]:
    """Every ``*.toml`` theme in ``directory`` by name, sorted."""
    themes: dict[str, Theme] = {}
    for path in sorted(directory.glob("*.toml")):
        theme = load_theme(path)
        themes[theme.name] = theme
    return themes
