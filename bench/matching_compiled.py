"""The core book bench on a fresh compiled build of the *current* ``book.py`` (for work on the book itself).

``bench/matching.py`` already times the compiled book the desk runs against ``book.py`` (when it is
installed: ``pip install -e .`` builds it, see ``setup.py``). While ``book.py``/``book.pxd`` are
being edited, the installed build is stale and the desk ignores it; this script builds the working
tree's source with ``setup.py build_ext`` (same Cython build, into a temporary directory: needs
Cython and a C compiler in this environment, ``pip install cython``), loads it in place of the
installed module, and runs ``bench/matching.py``'s core comparison (``--skip-engine --book both``).

Usage: ``python bench/matching_compiled.py [bench/matching.py options: --ops N --runs R --seed S]``.
Ends with ``bench/matching.py``'s JSON line.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import matching as mb  # noqa: E402 - bench/ is not a package: matching.py is found through sys.path

from engines.matching import book_impl  # noqa: E402


def build(tmp: Path) -> None:
    """Compile the working tree's book with setup.py into ``tmp`` and load it as the compiled module."""
    t = time.perf_counter()
    cmd = [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp), "--build-temp", str(tmp / "b")]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    (so,) = list((tmp / "engines" / "matching").glob("_cbook.*")) or [None]
    if p.returncode != 0 or so is None:
        raise SystemExit(f"the compiled book did not build:\n{p.stdout}{p.stderr}")
    loader = importlib.machinery.ExtensionFileLoader(book_impl.MODULE, str(so))
    spec = importlib.util.spec_from_file_location(book_impl.MODULE, so, loader=loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    sys.modules[book_impl.MODULE] = mod
    print(f"compiled the working tree's book.py with setup.py in {time.perf_counter() - t:.1f}s: {so.name}")


def main(argv: list[str] | None = None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp))
        cls, why = book_impl.compiled()
        if cls is None:
            raise SystemExit(f"fresh build not usable: {why}")
        return mb.main([*(sys.argv[1:] if argv is None else argv), "--skip-engine", "--book", "both"])


if __name__ == "__main__":
    sys.exit(main())
