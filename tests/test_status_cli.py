"""``opdesk status`` says which order book the matching engine runs (compiled or pure Python), on the
venue's line, and the control API's ``/status`` carries every engine's own status.

A real desk (matching engine + control API on a real 127.0.0.1 socket) runs in this process; the CLI
runs as a subprocess against it, as an operator would.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from engines.config import DeskConfig
from engines.matching import book_impl
from engines.runtime import Desk

BUILDERS = ["engines.matching.service:build", "engines.control.service:build"]
INSTRUMENTS = {"BTC-USD": {"tick_size": "0.5", "lot_size": "0.001", "base": "BTC", "quote": "USD",
                           "ref_price": 65000.0}}


async def opdesk_status(data_dir: Path, *args: str) -> str:
    address = json.loads((data_dir / "control.json").read_text())
    token = (data_dir / "control.token").read_text().strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPDESK_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "opdesk", "status", "--url", address["url"], f"--token={token}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def run_status(tmp_path: Path, compiled_book: str, *args: str) -> str:
    cfg = DeskConfig(
        desk={"name": "books", "data_dir": str(tmp_path)},
        instruments=INSTRUMENTS,
        matching={"compiled_book": compiled_book, "journal": False},
    )
    desk = Desk(cfg, data_dir=tmp_path).build(BUILDERS)
    await desk.start()
    try:
        return await opdesk_status(tmp_path, *args)
    finally:
        await desk.stop()


async def test_status_names_the_pure_python_book(tmp_path: Path) -> None:
    out = await run_status(tmp_path, "off")
    lines = out.splitlines()
    assert lines[0] == f"desk books (pid {os.getpid()}): UNKNOWN"  # no risk engine on this desk
    assert lines[1:] == ["  venue sim: connected · matching engine running, pure-Python order book"]


async def test_status_names_the_book_the_engine_picked(tmp_path: Path) -> None:
    # "auto": the compiled build when it is installed and current, else book.py (a warning says why)
    expected = {"compiled": "compiled order book", "python": "pure-Python order book"}[
        book_impl.impl_name(book_impl.select("auto"))
    ]
    out = await run_status(tmp_path, "auto")
    assert f"  venue sim: connected · matching engine running, {expected}" in out.splitlines()


@pytest.mark.skipif(book_impl.compiled()[0] is None, reason=book_impl.compiled()[1] or "no compiled book")
async def test_status_names_the_compiled_book(tmp_path: Path) -> None:
    out = await run_status(tmp_path, "required")
    assert "  venue sim: connected · matching engine running, compiled order book" in out.splitlines()


async def test_status_json_carries_every_engines_status(tmp_path: Path) -> None:
    r = json.loads(await run_status(tmp_path, "off", "--json"))
    assert sorted(r["engines"]) == ["control", "matching"]
    matching = r["engines"]["matching"]
    assert (matching["state"], matching["venue"], matching["book_impl"]) == ("running", "sim", "python")
    assert r["venues"] == {"sim": True}
