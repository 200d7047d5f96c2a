"""Find a running desk's control API and call it (for ``opdesk kill|rearm|status``).

The desk is found with ``--url``/``--token``, else from its data directory (``control.json`` written
by the running desk, ``control.token`` or ``control.token`` in the config/secrets/environment). The
config is the one given with ``--config`` or ``$OPDESK_CONFIG``, like the desk itself. Plain text
output: no rich here.
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
from pathlib import Path
from typing import Any


class ControlError(Exception):
    """Reported to the operator as ``opdesk: <message>``, exit status 1."""


def add_connection_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reaching the desk")
    g.add_argument("--url", help="control API URL (default: from the desk's data dir, control.json)")
    g.add_argument("--token", help="bearer token (default: control.token from config, or the data dir file)")
    g.add_argument(
        "--config", dest="sub_config", metavar="PATH", help="desk config file (also $OPDESK_CONFIG)"
    )
    g.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the desk (default 10)")


def resolve(args: argparse.Namespace) -> tuple[str, str]:
    url: str | None = args.url
    token: str | None = args.token
    if url is None or token is None:
        from engines.config import load_config

        cfg = load_config(getattr(args, "sub_config", None) or getattr(args, "config", None))
        data_dir: Path = cfg.desk.path
        if url is None:
            address = data_dir / "control.json"
            try:
                url = json.loads(address.read_text())["url"]
            except FileNotFoundError:
                raise ControlError(
                    f"no running desk found: {address} does not exist (start it, or pass --url)"
                ) from None
            except (ValueError, KeyError):
                raise ControlError(f"{address} is not a desk address file") from None
        if token is None:
            if cfg.control.token is not None and cfg.control.token.get_secret_value():
                token = cfg.control.token.get_secret_value()
            else:
                path = data_dir / "control.token"
                try:
                    token = path.read_text(encoding="utf-8").strip()
                except FileNotFoundError:
                    raise ControlError(
                        f"no token: {path} does not exist and control.token is not set (pass --token)"
                    ) from None
    return url, token


def actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def call(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    import httpx

    url, token = resolve(args)
    try:
        resp = httpx.request(
            method,
            url.rstrip("/") + path,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=args.timeout,
        )
    except httpx.HTTPError as exc:
        raise ControlError(f"cannot reach the desk at {url}: {exc}") from None
    try:
        data = resp.json()
    except ValueError:
        data = {"error": resp.text}
    if resp.status_code == 401:
        raise ControlError(f"control API refused: {data.get('error', resp.text)}")
    if resp.status_code >= 400:
        raise ControlError(f"control API error {resp.status_code}: {data.get('error', resp.text)}")
    return data


def run_guarded(fn: Any, args: argparse.Namespace) -> int:
    try:
        return int(fn(args) or 0)
    except ControlError as exc:
        print(f"opdesk: {exc}", file=sys.stderr)
        return 1
