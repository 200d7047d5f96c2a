"""The desk runtime's GC tuning ([desk] gc_freeze / gc_threshold): applied while desks run, and the
process's own settings back once the last running desk has stopped (tests run several desks at once)."""

from __future__ import annotations

import gc
from pathlib import Path

from engines.config import DeskConfig
from engines.runtime import Desk


def desk(tmp_path: Path, name: str, **gc_options: object) -> Desk:
    return Desk(DeskConfig(desk={"name": name, "data_dir": str(tmp_path), **gc_options}, mm=[], grid=[])).build([])


async def test_gc_tuned_while_desks_run_and_restored_after_the_last(tmp_path: Path) -> None:
    before = gc.get_threshold()
    gc.unfreeze()
    a, b = desk(tmp_path, "a"), desk(tmp_path, "b", gc_threshold=(30_000, 30, 30))
    await a.start()
    assert gc.get_threshold() == (20_000, 20, 20)
    assert gc.get_freeze_count() > 0
    await b.start()
    assert gc.get_threshold() == (30_000, 30, 30)
    await a.stop()  # b still runs: still tuned
    assert gc.get_threshold() == (30_000, 30, 30) and gc.get_freeze_count() > 0
    await b.stop()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_gc_tuning_can_be_switched_off(tmp_path: Path) -> None:
    before = gc.get_threshold()
    gc.unfreeze()
    d = desk(tmp_path, "plain", gc_freeze=False, gc_threshold=None)
    await d.start()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    await d.stop()
    assert gc.get_threshold() == before
