"""The engines never import the UI: a headless desk runs without textual or rich in the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib, os, pkgutil, sys
    import engines
    for mod in pkgutil.walk_packages(engines.__path__, "engines."):
        importlib.import_module(mod.name)
    from engines.config import load_config
    from engines.runtime import Desk
    import engines.headless, opdesk.cli

    async def main():
        desk = Desk(load_config()).build()
        await desk.start()
        await asyncio.sleep(0.3)
        await desk.stop()

    asyncio.run(main())
    bad = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich", "console"))
    print("UI-MODULES:", ",".join(bad))
    """
)


def test_headless_desk_never_imports_textual_or_rich(tmp_path):
    env = {"OPDESK_DESK__DATA_DIR": str(tmp_path), "OPDESK_CONTROL__PORT": "0", "OPDESK_REMOTE__PORT": "0", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "UI-MODULES:"
