from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest

from engines.config import DEFAULT_CONFIG, ConfigError, load_config


def write(tmp_path, text: str):
    p = tmp_path / "desk.toml"
    p.write_text(text)
    return p


def test_default_desk_loads():
    cfg = load_config()
    assert cfg.desk.name == "demo"
    assert set(cfg.instruments) == {"BTC-USD", "ETH-USD"}
    btc = cfg.instrument_map()["BTC-USD"]
    assert (btc.tick_size, btc.lot_size) == (Decimal("0.5"), Decimal("0.001"))
    assert [b.name for b in cfg.mm] == ["mm-btc"]
    assert cfg.control.host == "127.0.0.1"


def test_user_file_overrides_default_and_env_overrides_file(tmp_path, monkeypatch):
    p = write(tmp_path, '[ui]\ntheme = "opdesk-light"\nrefresh_hz = 12\n')
    monkeypatch.setenv("OPDESK_UI__REFRESH_HZ", "20")
    cfg = load_config(p)
    assert cfg.ui.theme == "opdesk-light"
    assert cfg.ui.refresh_hz == 20.0
    assert cfg.instruments["BTC-USD"].ref_price == 65000.0  # untouched default


def test_config_file_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OPDESK_CONFIG", str(write(tmp_path, '[desk]\nname = "lab"\n')))
    assert load_config().desk.name == "lab"


def test_unknown_key_names_file_and_path(tmp_path):
    p = write(tmp_path, "[ui]\nrefresh_hzz = 12\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value) == f"invalid configuration:\n  {p}: ui.refresh_hzz: unknown key (value 12)"


def test_bad_type_names_value_and_expectation(tmp_path):
    p = write(tmp_path, '[ui]\nrefresh_hz = "fast"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value) == (
        f"invalid configuration:\n  {p}: ui.refresh_hz: bad value 'fast': "
        "Input should be a valid number, unable to parse string as a number"
    )


def test_out_of_range_value(tmp_path):
    p = write(tmp_path, "[instruments.X-USD]\ntick_size = \"0\"\nlot_size = \"1\"\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value) == (
        f"invalid configuration:\n  {p}: instruments.X-USD.tick_size: bad value '0': Input should be greater than 0"
    )


def test_bad_environment_variable_is_named(monkeypatch):
    monkeypatch.setenv("OPDESK_UI__REFRESH_HZ", "500")
    with pytest.raises(ConfigError) as exc:
        load_config()
    assert str(exc.value) == (
        "invalid configuration:\n  environment variable OPDESK_UI__REFRESH_HZ: ui.refresh_hz: "
        "bad value '500': Input should be less than or equal to 60"
    )


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "nope.toml")
    assert str(exc.value) == f"config file not found: {tmp_path / 'nope.toml'}"


def test_invalid_toml(tmp_path):
    p = write(tmp_path, "[ui\n")
    with pytest.raises(ConfigError, match=rf"^{p}: not valid TOML: "):
        load_config(p)


def test_bot_on_unknown_instrument(tmp_path):
    p = write(tmp_path, '[[mm]]\nname = "x"\nsymbol = "DOGE-USD"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert "mm[0].symbol: 'DOGE-USD' is not a configured instrument (known: BTC-USD, ETH-USD)" in str(exc.value)


def test_secret_from_secrets_file_never_prints(tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[control]\ntoken = "s3cr3t-token"\n')
    monkeypatch.setenv("OPDESK_SECRETS_FILE", str(secrets))
    cfg = load_config()
    assert cfg.control.token is not None
    assert cfg.control.token.get_secret_value() == "s3cr3t-token"
    assert "s3cr3t-token" not in repr(cfg) and "s3cr3t-token" not in str(cfg.control)


def test_cli_check_config_exit_codes(tmp_path):
    ok = subprocess.run(
        [sys.executable, "-m", "opdesk", "check-config", str(DEFAULT_CONFIG)], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"{DEFAULT_CONFIG}: OK\n")
    p = write(tmp_path, "bogus = 1\n")
    bad = subprocess.run([sys.executable, "-m", "opdesk", "check-config", str(p)], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr == f"opdesk: invalid configuration:\n  {p}: bogus: unknown key (value 1)\n"
    assert "Traceback" not in bad.stderr
    run = subprocess.run(
        [sys.executable, "-m", "opdesk", "--headless", "--config", str(p)], capture_output=True, text=True
    )
    assert run.returncode == 2 and "bogus: unknown key" in run.stderr


def test_version():
    out = subprocess.run([sys.executable, "-m", "opdesk", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "opdesk 0.1.0"
