"""A line chart in braille characters (2x4 dots per cell) for terminal output. Pure: no rich import."""

from __future__ import annotations

from collections.abc import Sequence

# dot bit for (column 0..1, row 0..3) inside a braille cell (U+2800 + bits)
_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


def braille(values: Sequence[float], width: int = 60, height: int = 8) -> list[str]:
    """``height`` lines of ``width`` braille cells drawing ``values`` resampled to ``2·width``
    columns (each column its min..max, so spikes survive the resampling)."""
    n = len(values)
    if n == 0 or width < 1 or height < 1:
        return []
    cols = 2 * width
    rows = 4 * height
    lo_all = min(values)
    hi_all = max(values)
    span = hi_all - lo_all or 1.0
    grid = [[0] * width for _ in range(height)]

    def row_of(v: float) -> int:
        return rows - 1 - min(rows - 1, int((v - lo_all) / span * (rows - 1) + 0.5))

    prev: int | None = None
    for c in range(cols):
        a = c * n // cols
        b = max(a + 1, (c + 1) * n // cols)
        chunk = values[a:b]
        top, bottom = row_of(max(chunk)), row_of(min(chunk))
        if prev is not None:  # join to the previous column so the line is continuous
            top, bottom = min(top, prev), max(bottom, prev)
        for r in range(top, bottom + 1):
            grid[r // 4][c // 2] |= _BITS[c % 2][r % 4]
        prev = row_of(chunk[-1])
    return ["".join(chr(0x2800 + bits) for bits in line) for line in grid]
