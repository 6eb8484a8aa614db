"""Render results as a terminal table, JSON, JSON lines or CSV; write files atomically."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence, TextIO

from visionkit.core.errors import WRITE_ERRNOS, UsageError, output_error

FORMATS = ("table", "json", "jsonl", "csv")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds.

    The temporary name carries this process's id (``.NAME.PID.XXXX.partSUFFIX``), so the leftovers of a process
    killed half-way (kill -9 leaves no chance to clean up) are removed by the next write to the same path. A full
    disk, a read-only folder or a missing permission becomes one :class:`~visionkit.core.errors.OutputError`.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(target.parent, f".{target.name}.", ".part" + target.suffix)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".part" + target.suffix,
                                   dir=target.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
    except OSError as error:
        if error.errno in WRITE_ERRNOS:
            raise output_error(target, error) from None
        raise
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as error:
        if error.errno in WRITE_ERRNOS:
            raise output_error(target, error) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_parts(folder: Path, prefix: str, suffix: str) -> None:
    """Delete ``folder/<prefix><pid>.*<suffix>`` files left by processes that no longer run."""
    import glob

    for leftover in folder.glob(glob.escape(prefix) + "*" + glob.escape(suffix)):
        pid = leftover.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, data) -> None:
    """``data`` as indented JSON (numpy values as numbers), written atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def rows_of(results: Iterable) -> list[dict]:
    rows: list[dict] = []
    for result in results:
        rows.extend(result.to_rows() if hasattr(result, "to_rows") else [result.to_dict()])
    return rows


def format_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """A plain aligned table (no colours), one row per dict."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def render(results: Sequence, fmt: str, columns: Sequence[str] | None = None) -> str:
    """The whole output text for ``results`` in format ``fmt``."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps([r.to_dict() for r in results], indent=2) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r.to_dict()) + "\n" for r in results)
    rows = rows_of(results)
    if fmt == "csv":
        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(columns or rows[0].keys()), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        return buffer.getvalue()
    return format_table(rows, columns) + "\n"


def emit(results: Sequence, fmt: str, output: str | os.PathLike | None = None, stream: TextIO | None = None,
         columns: Sequence[str] | None = None) -> None:
    """Write rendered results to ``output`` (atomically) or to ``stream`` (stdout)."""
    text = render(results, fmt, columns)
    if output:
        write_text_atomic(output, text)
    else:
        (stream or sys.stdout).write(text)


def format_from_path(output: str | os.PathLike | None, default: str = "table") -> str:
    """Guess the format from an output file's extension (``.json``, ``.jsonl``, ``.csv``)."""
    if not output:
        return default
    ext = Path(output).suffix.lower().lstrip(".")
    return ext if ext in ("json", "jsonl", "csv") else ("json" if default == "table" else default)
