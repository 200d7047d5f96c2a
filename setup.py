"""Optional compiled order book: the only reason this file exists (project metadata is in pyproject.toml).

``engines/matching/book.py`` and its Cython declarations ``book.pxd`` are copied, unchanged, as
``engines/matching/_cbook.py``/``.pxd`` into the build directory, with one line appended: the SHA-256 of
the two source files (``SOURCE_SHA256``, which ``engines.matching.book_impl`` compares with the files
next to it before using the module). Cython turns the copy into C there and the compiler builds the
extension module ``engines.matching._cbook``. Nothing generated lands in the source tree except the
built module itself in an editable install (``engines/matching/_cbook.*.so``, git-ignored).

The extension is optional: without Cython (a ``--no-build-isolation`` install into an environment
without it) or a C compiler, or if compilation fails, the install goes on with the pure-Python book
and the build output says why (a ``CompiledBookWarning``, which pip shows; the desk logs it again at
start).
``OPDESK_NO_COMPILE=1`` skips the build on purpose.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import warnings
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
BOOK_DIR = HERE / "engines" / "matching"
EXT_NAME = "engines.matching._cbook"


def _book_impl():  # type: ignore[no-untyped-def]
    """engines/matching/book_impl.py loaded by path: its digest function, without the package's deps."""
    spec = importlib.util.spec_from_file_location("_opdesk_book_impl", BOOK_DIR / "book_impl.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class CompiledBookWarning(UserWarning):
    """The optional compiled order book was not built."""


def _warn(why: str) -> None:
    # a Python warning: pip shows a build backend's warnings even without -v (plain output it hides)
    warnings.warn(
        f"opdesk's compiled order book ({EXT_NAME}) is NOT built ({why}); "
        "the desk will run the pure-Python order book (same behaviour, slower)",
        CompiledBookWarning,
        stacklevel=2,
    )


class OptionalCythonBuildExt(build_ext):
    """build_ext that generates the C source with Cython first and never fails the install."""

    def run(self) -> None:
        if os.environ.get("OPDESK_NO_COMPILE", "") not in ("", "0"):
            _warn("OPDESK_NO_COMPILE is set")
            self.extensions = []
            return
        try:
            from Cython.Build import cythonize
        except ImportError:
            _warn("Cython is not installed in the build environment (pip install cython)")
            self.extensions = []
            return
        try:
            src = Path(self.build_temp) / "cbook_src"
            pkg = src / "engines" / "matching"
            if src.exists():
                shutil.rmtree(src)
            pkg.mkdir(parents=True)
            # package markers so that Cython names the module engines.matching._cbook
            (src / "engines" / "__init__.py").write_text("")
            (pkg / "__init__.py").write_text("")
            digest = _book_impl().source_digest(BOOK_DIR)
            code = (BOOK_DIR / "book.py").read_text(encoding="utf-8")
            (pkg / "_cbook.py").write_text(
                f'{code}\n\n# added by setup.py: the source this module was compiled from\nSOURCE_SHA256 = "{digest}"\n',
                encoding="utf-8",
            )
            shutil.copyfile(BOOK_DIR / "book.pxd", pkg / "_cbook.pxd")
            generated = cythonize(
                [Extension(EXT_NAME, [str(pkg / "_cbook.py")])],
                compiler_directives={"language_level": 3, "annotation_typing": False},
                quiet=True,
                force=True,
            )
            for ext in self.extensions:
                if ext.name == EXT_NAME:
                    ext.sources = list(generated[0].sources)
            super().run()
        except Exception as e:  # optional: any failure (no compiler, no Python.h, Cython error) falls back
            _warn(f"{type(e).__name__}: {e}")
            self.extensions = []
            return
        print(f"opdesk: built the compiled order book {EXT_NAME} (source sha256 {digest[:12]})", file=sys.stderr)


setup(
    # the placeholder source is replaced by the generated C file in OptionalCythonBuildExt.run
    ext_modules=[Extension(EXT_NAME, sources=["engines/matching/book.py"])],
    cmdclass={"build_ext": OptionalCythonBuildExt},
)
