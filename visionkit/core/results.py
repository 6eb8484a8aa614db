"""The contract every result keeps, and the run every trainer returns.

Each task's result types (``visionkit/<task>/results.py``) extend :class:`Result`:

- ``source``: what the result is about (an image path or ``<array 3>``, a data set, a model);
- ``error``: ``None``, or the one line saying why this input could not be processed (a batch goes on past it);
- ``ok``: ``error is None``;
- ``to_dict()``: JSON-ready data (``error`` only when set); ``to_rows()``: flat rows for CSV and tables;
- ``save(path)``: the result written atomically, in the format of the path's extension.

Every trainer returns a :class:`Run` (its folder, the saved model, the held-out report, epochs, time, notes).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass


def plain(value):
    """``value`` as JSON-ready data: results and dataclasses as dicts, tuples as lists, numpy scalars as numbers."""
    if isinstance(value, Result):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    return value


class Result:
    """Base of every result. Subclasses are frozen dataclasses that declare ``source`` (a field, or a property
    when the result is about something else already named) and, when one input can fail, an ``error`` field;
    a result without one reads ``error`` as None. (No class attributes here: a dataclass would take them for its
    fields' defaults.)"""

    def __getattr__(self, name: str):
        if name == "error":  # only reached when the subclass has no error field
            return None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        """Every field as JSON-ready data; ``error`` only when it is set."""
        data = {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        if data.get("error", 0) is None:
            del data["error"]
        return data

    def to_rows(self) -> list[dict]:
        """Flat rows for CSV and tables (one by default)."""
        return [self.to_dict()]

    def save(self, path: str | os.PathLike) -> str:
        """Write the result to ``path``, atomically: ``.json`` one object, ``.jsonl`` one line, ``.csv`` its rows,
        anything else an aligned table. Returns the path."""
        from pathlib import Path

        from visionkit.core.writers import emit, write_json_atomic

        suffix = Path(path).suffix.lower().lstrip(".")
        fmt = suffix if suffix in ("json", "jsonl", "csv") else "table"
        if fmt == "json":
            write_json_atomic(path, self.to_dict())
        else:
            emit([self], fmt, path)
        return str(path)


@dataclass(frozen=True)
class Run(Result):
    """A finished training run: its folder, the saved model, the held-out report, epochs, wall time and notes."""

    run_dir: str
    model_path: str
    report: Result | None = None
    epochs: int = 0
    resumed_from: int | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return self.run_dir

    def to_dict(self) -> dict:
        return {"run_dir": self.run_dir, "model_path": self.model_path, "epochs": self.epochs,
                "resumed_from": self.resumed_from, "seconds": round(self.seconds, 1), "notes": list(self.notes),
                "report": self.report.to_dict() if self.report else None}

    def to_rows(self) -> list[dict]:
        return self.report.to_rows() if self.report else []


def failed(results) -> list:
    """The results whose input could not be processed."""
    return [r for r in results if getattr(r, "error", None)]


__all__ = ["Result", "Run", "failed", "plain"]
