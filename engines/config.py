"""The desk's configuration: pydantic models for every section, loaded from layered sources.

Sources, later wins: ``config/default.toml`` → the file given with ``--config`` or ``OPDESK_CONFIG``
→ a secrets file (``OPDESK_SECRETS_FILE``; tokens and passwords live there or in the environment,
never in the config file) → ``OPDESK_…`` environment variables, nested with ``__``
(``OPDESK_UI__THEME=opdesk-light``).

A bad config raises :class:`ConfigError` whose message names the file, the key path, the bad value
and what was expected; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from engines.configbase import Listen, Section
from engines.fix.config import FixConfig
from engines.grid.config import GridBotConfig
from engines.instruments import Instrument
from engines.matching.config import MatchingConfig
from engines.mm.config import MMBotConfig
from engines.remote.config import RemoteConfig
from engines.risk.config import RiskConfig
from engines.sim.config import SimConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config" / "default.toml"
THEMES_DIR = REPO_ROOT / "themes"


class InstrumentConfig(Section):
    tick_size: Decimal = Field(gt=0)
    lot_size: Decimal = Field(gt=0)
    min_qty: Decimal | None = Field(default=None, gt=0)
    base: str = ""
    quote: str = "USD"
    # Simulated reference price for the demo desk.
    ref_price: float = Field(default=100.0, gt=0)
    volatility: float = Field(default=0.5, ge=0, description="annualised-free: stdev of returns per second, in %")

    def instrument(self, symbol: str) -> Instrument:
        min_lots = 1 if self.min_qty is None else int(self.min_qty / self.lot_size)
        return Instrument(symbol, self.tick_size, self.lot_size, max(1, min_lots), self.base, self.quote)


class DeskSection(Section):
    name: str = "demo"
    data_dir: Path = Path("~/.local/share/opdesk")
    status_interval: float = Field(default=5.0, gt=0, description="seconds between headless status lines")
    # Cyclic-GC tuning, applied once every engine has started and undone when the desk stops (see
    # engines.runtime.Desk.start): the collector's walks of the heap cost the order path ~20% of its CPU.
    gc_freeze: bool = Field(default=True, description="gc.freeze() the start-up objects once the desk runs")
    gc_threshold: tuple[int, int, int] | None = Field(
        default=(20_000, 20, 20), description="gc.set_threshold(...) while the desk runs; None keeps Python's"
    )

    @property
    def path(self) -> Path:
        return (self.data_dir.expanduser() / self.name).resolve()


class ControlConfig(Listen):
    """The local control API (kill, re-arm, status). Needs a bearer token."""

    port: int = Field(default=8765, ge=0, le=65535)
    token: SecretStr | None = None


class UIConfig(Section):
    refresh_hz: float = Field(default=15.0, ge=1, le=60)
    theme: str = "opdesk-dark"
    keymap: dict[str, str] = {}
    confirm_panic_kill: bool = True


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: Path | None = None


_user_file: ContextVar[Path | None] = ContextVar("opdesk_user_config", default=None)
_secrets_file: ContextVar[Path | None] = ContextVar("opdesk_secrets_file", default=None)


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        return _read_toml(self.path)


class DeskConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPDESK_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    desk: DeskSection = DeskSection()
    instruments: dict[str, InstrumentConfig] = {}
    sim: SimConfig = SimConfig()
    matching: MatchingConfig = MatchingConfig()
    risk: RiskConfig = RiskConfig()
    mm: list[MMBotConfig] = []
    grid: list[GridBotConfig] = []
    fix: FixConfig = FixConfig()
    control: ControlConfig = ControlConfig()
    remote: RemoteConfig = RemoteConfig()
    ui: UIConfig = UIConfig()
    logging: LoggingConfig = LoggingConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _TomlSource(settings_cls, _secrets_file.get()),
            _TomlSource(settings_cls, _user_file.get()),
            _TomlSource(settings_cls, DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None),
        )

    @field_validator("instruments")
    @classmethod
    def _symbols(cls, value: dict[str, InstrumentConfig]) -> dict[str, InstrumentConfig]:
        for symbol in value:
            if not symbol or any(c.isspace() for c in symbol):
                raise ValueError(f"instrument symbol {symbol!r} must be non-empty without spaces")
        return value

    @model_validator(mode="after")
    def _references(self) -> DeskConfig:
        names: set[str] = set()
        for section, bots in (("mm", self.mm), ("grid", self.grid)):
            for i, bot in enumerate(bots):
                if bot.symbol not in self.instruments:
                    raise ValueError(
                        f"{section}[{i}].symbol: {bot.symbol!r} is not a configured instrument "
                        f"(known: {', '.join(sorted(self.instruments)) or 'none'})"
                    )
                if bot.name in names:
                    raise ValueError(f"{section}[{i}].name: bot name {bot.name!r} is used twice")
                names.add(bot.name)
        return self

    def instrument_map(self) -> dict[str, Instrument]:
        return {sym: ic.instrument(sym) for sym, ic in self.instruments.items()}


class ConfigError(Exception):
    """A configuration problem, already phrased for the operator."""


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _lookup(data: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    node: Any = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (isinstance(node, list) and isinstance(part, int) and part < len(node)):
            node = node[part]
        else:
            return False
    return True


def _origin(loc: tuple[Any, ...], layers: list[tuple[str, dict[str, Any]]]) -> str:
    """Which source set the key at ``loc`` (the highest-precedence one that has it)."""
    env_name = "OPDESK_" + "__".join(str(p).upper() for p in loc)
    if env_name in os.environ:
        return f"environment variable {env_name}"
    for name, data in layers:
        if _lookup(data, loc):
            return name
    # A missing required key or a model-level check: blame the most specific file given.
    return layers[0][0] if layers else "configuration"


def _format_errors(exc: ValidationError, layers: list[tuple[str, dict[str, Any]]]) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
        where = _origin(loc, layers)
        kind = err["type"]
        if kind == "extra_forbidden":
            lines.append(f"{where}: {path}: unknown key (value {err['input']!r})")
        elif kind == "missing":
            lines.append(f"{where}: {path}: required key is missing")
        elif kind == "value_error" and not loc:
            lines.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {path}: bad value {err['input']!r}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_config(path: Path | str | None = None, *, secrets: Path | str | None = None) -> DeskConfig:
    """Load the desk config. ``path`` defaults to ``$OPDESK_CONFIG``; secrets to ``$OPDESK_SECRETS_FILE``."""
    if path is None and os.environ.get("OPDESK_CONFIG"):
        path = os.environ["OPDESK_CONFIG"]
    if secrets is None and os.environ.get("OPDESK_SECRETS_FILE"):
        secrets = os.environ["OPDESK_SECRETS_FILE"]
    user = Path(path).expanduser() if path is not None else None
    secret_path = Path(secrets).expanduser() if secrets is not None else None
    layers: list[tuple[str, dict[str, Any]]] = []
    for p in (secret_path, user):
        if p is not None:
            layers.append((str(p), _read_toml(p)))  # raises ConfigError for missing/invalid files
    if DEFAULT_CONFIG.exists():
        layers.append((str(DEFAULT_CONFIG), _read_toml(DEFAULT_CONFIG)))
    t1 = _user_file.set(user)
    t2 = _secrets_file.set(secret_path)
    try:
        return DeskConfig()
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, layers)) from None
    finally:
        _user_file.reset(t1)
        _secrets_file.reset(t2)
