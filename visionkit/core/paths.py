"""Paths named *inside* data-set files (a COCO ``file_name``, a pairs CSV) must stay inside the data set's folder.

A data set is often downloaded from somewhere else; its annotation file must not be able to make visionkit read
(or name in an output) ``/etc/passwd`` or ``../../private/photo.jpg``. The check is on the path as written
(``os.path.normpath``): ``..`` and absolute paths that leave the folder are refused, absolute paths into it are
fine. Symbolic links inside the folder are followed: they are the folder owner's choice (Python's tar extraction
filter already refuses links that point out of an archive's folder when a data set is unpacked).
"""

from __future__ import annotations

import os
from pathlib import Path

from visionkit.core.errors import DatasetError


def inside(root: str | os.PathLike, name: object) -> Path:
    """``root / name`` (normalised) when it stays inside ``root``; a DatasetError saying why otherwise."""
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise DatasetError(f"{name!r} is not a file name")
    base = os.path.abspath(root)
    candidate = os.path.normpath(os.path.join(base, name))  # an absolute ``name`` replaces ``base``
    if os.path.commonpath([base, candidate]) != base:
        raise DatasetError(f"{name!r} points outside {root}; a data set may only name files inside its own folder")
    return Path(root) / os.path.relpath(candidate, base)
