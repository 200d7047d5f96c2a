"""A DataTable that is updated by cell diffs: rows are added once, changed cells are updated with
``update_cell``, and the table is never cleared and rebuilt (which would reset the cursor and redraw
everything)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual.widgets import DataTable


class DiffTable(DataTable[Any]):
    DEFAULT_CSS = """
    DiffTable { height: 1fr; background: $surface; }
    """

    def __init__(self, columns: Sequence[tuple[str, str] | tuple[str, str, int]], *, id: str | None = None) -> None:
        """``columns``: (key, label) or (key, label, width) — a fixed width keeps later, longer values
        from being cut (auto widths are taken from the first rows only)."""
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._column_spec = list(columns)
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._reselect: str | None = None  # the row to select again after a column switch
        self.updates = 0

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for spec in self._column_spec:
            key, label = spec[0], spec[1]
            self.add_column(label, key=key, width=spec[2] if len(spec) > 2 else None)  # type: ignore[misc]

    @property
    def column_keys(self) -> list[str]:
        return [spec[0] for spec in self._column_spec]

    def set_columns(self, columns: Sequence[tuple[str, str] | tuple[str, str, int]]) -> bool:
        """Switch to another column set (e.g. a compact one for a narrow terminal). Rows are dropped:
        the next :meth:`sync` adds them back. Returns whether anything changed."""
        if list(columns) == self._column_spec:
            return False
        selected = self.selected_key
        self._column_spec = list(columns)
        self.clear(columns=True)
        self._cells.clear()
        self._add_columns()
        self._reselect = selected
        return True

    def sync(self, rows: Mapping[str, Sequence[Any]]) -> None:
        keys = [spec[0] for spec in self._column_spec]
        for row_key, cells in rows.items():
            cells = tuple(cells)
            old = self._cells.get(row_key)
            if old is None:
                self.add_row(*cells, key=row_key)
                self.updates += 1
            else:
                for i, (a, b) in enumerate(zip(old, cells)):
                    if a != b:
                        self.update_cell(row_key, keys[i], b)
                        self.updates += 1
            self._cells[row_key] = cells
        for gone in [k for k in self._cells if k not in rows]:
            self.remove_row(gone)
            del self._cells[gone]
        if self._reselect is not None:
            if self._reselect in self._cells:
                self.move_cursor(row=self.get_row_index(self._reselect))
            self._reselect = None

    @property
    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:
            return None
        return row_key.value
