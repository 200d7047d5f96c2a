"""Regenerate the README screenshots from the real console on the seeded demo desk.

    python screenshots/make.py            # SVGs (and PNGs when cairosvg is installed)

Each shot builds the app with ``build_app(..., live=False)`` on ``console.seeded`` (ManualClock, prices
stepped by hand, orders on the real matching engine, the real kill switch), exactly like the snapshot
tests, so the pictures are reproducible.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import engines.risk.killswitch as killswitch_module  # noqa: E402
from console.app import build_app  # noqa: E402
from console.seeded import seed, seeded_config, seeded_desk, start_engines, stop_engines  # noqa: E402

SHOTS: list[dict[str, Any]] = [
    {"name": "desk", "size": (160, 48)},
    {"name": "desk-80x24", "size": (80, 24)},
    {"name": "keys-80x24", "size": (80, 24), "press": ["f1"]},
    {"name": "kill-confirm", "size": (160, 48), "press": ["ctrl+k", "enter"]},
    {"name": "kill-progress", "size": (160, 48), "kill": "desk"},
    {"name": "halted", "size": (160, 48), "kill": "desk", "press": ["escape"]},
    {"name": "fix-inspector", "size": (160, 48), "press": ["i", "up", "up"]},
    {"name": "bot-detail", "size": (160, 48), "press": ["2", "enter"]},
    {"name": "light", "size": (160, 48), "theme": "opdesk-light"},
    {"name": "high-contrast", "size": (160, 48), "theme": "opdesk-high-contrast"},
]


async def shoot(shot: dict[str, Any]) -> str:
    ticks = iter(i * 0.0005 for i in range(1_000_000))  # the kill's elapsed time, pinned
    killswitch_module.time = types.SimpleNamespace(perf_counter=lambda: next(ticks))  # type: ignore[attr-defined]
    cfg = seeded_config(Path(tempfile.mkdtemp(prefix="opdesk-shot-")), theme=shot.get("theme", "opdesk-dark"))
    desk = seeded_desk(cfg)
    app = build_app(cfg, desk=desk, clock=desk.clock, live=False)
    async with app.run_test(size=shot["size"]) as pilot:
        engines = await start_engines(desk)
        try:
            seed(desk)
            if shot.get("kill"):
                app.start_kill(shot["kill"])
                await pilot.pause()
                await app.workers.wait_for_complete()
                await pilot.pause()
        finally:
            await stop_engines(engines)
        desk.clock.advance(1.0)
        for _ in range(2):
            app.refresh_panels()
            await pilot.pause()
        await pilot.press(*shot.get("press", []))
        await pilot.pause()
        return app.export_screenshot(title=f"opdesk · {shot['name']}")


def main() -> int:
    try:
        import cairosvg  # type: ignore[import-not-found]
    except ImportError:
        cairosvg = None
    for shot in SHOTS:
        svg = asyncio.run(shoot(shot))
        path = HERE / f"{shot['name']}.svg"
        path.write_text(svg, encoding="utf-8")
        line = f"wrote {path.relative_to(HERE.parent)}"
        if cairosvg is not None:
            png = path.with_suffix(".png")
            cairosvg.svg2png(bytestring=svg.encode(), write_to=str(png), output_width=shot["size"][0] * 10)
            line += f" and {png.name}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
