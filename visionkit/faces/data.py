"""Face data: a folder per identity, P×K batches for triplet mining, verification pairs (all pairs or a CSV).

Layout: ``ROOT/<identity>/<image>``; the sub-folder name is the identity. Pairs CSV: a header with the
columns ``a``, ``b``, ``same`` (1/0, true/false, yes/no); image paths are relative to the CSV's folder (or absolute)
and must stay inside it (:func:`visionkit.core.paths.inside`): keep the CSV in the data set's top folder.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from visionkit.core.errors import DatasetError, UsageError
from visionkit.core.io import is_image_path
from visionkit.core.paths import inside

_TRUE = {"1", "true", "yes", "same", "y", "t"}
_FALSE = {"0", "false", "no", "different", "n", "f"}


@dataclass(frozen=True)
class FaceFolder:
    """Image paths and integer labels of an identity-folder dataset; ``names[label]`` is the identity."""

    paths: tuple[str, ...]
    labels: np.ndarray
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, identities: Sequence[str]) -> "FaceFolder":
        """Only the images of ``identities`` (labels renumbered 0…n-1 in that order)."""
        unknown = sorted(set(identities) - set(self.names))
        if unknown:
            raise UsageError(f"identities not in the data set: {', '.join(unknown)}")
        keep = [self.names.index(name) for name in identities]
        mapping = {old: new for new, old in enumerate(keep)}
        mask = np.isin(self.labels, keep)
        labels = np.array([mapping[int(v)] for v in self.labels[mask]], dtype=np.int64)
        return FaceFolder(tuple(np.asarray(self.paths)[mask]), labels, tuple(identities))


def identity_folders(root: str | os.PathLike, min_images: int = 1) -> FaceFolder:
    """Read ``root/<identity>/*`` image files. Identities with fewer than ``min_images`` images are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder; expected one sub-folder of images per identity")
    paths, labels, names = [], [], []
    for folder in sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=_natural):
        images = sorted((str(p) for p in folder.iterdir() if p.is_file() and is_image_path(p)), key=_natural)
        if len(images) < max(1, min_images):
            continue
        label = len(names)
        names.append(folder.name)
        paths.extend(images)
        labels.extend([label] * len(images))
    if len(names) < 2:
        raise DatasetError(f"{root}: found {len(names)} identity folder(s) with ≥ {max(1, min_images)} images; "
                           "need at least 2 (layout: ROOT/<identity>/<image>)")
    return FaceFolder(tuple(paths), np.asarray(labels, dtype=np.int64), tuple(names))


def _natural(path) -> tuple:
    """Sort key so that s2 < s10 and 2.png < 10.png."""
    import re

    name = Path(path).name
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def split_identities(names: Sequence[str], holdout: int | Sequence[str], seed: int = 0) -> tuple[list[str], list[str]]:
    """(training identities, held-out identities). ``holdout`` is a count (drawn with ``seed``) or a list of names."""
    names = list(names)
    if isinstance(holdout, int):
        if not 0 <= holdout <= len(names) - 2:
            raise UsageError(f"holdout must leave at least 2 training identities: received {holdout} of {len(names)}")
        order = np.random.default_rng(seed).permutation(len(names))
        held = sorted((names[i] for i in order[:holdout]), key=_natural)
    else:
        held = list(holdout)
        unknown = sorted(set(held) - set(names))
        if unknown:
            raise UsageError(f"held-out identities not in the data set: {', '.join(unknown)}")
    return [n for n in names if n not in held], held


def check_batches(labels: np.ndarray, identities_per_batch: int, images_per_identity: int) -> None:
    """Refuse P×K batches that ``labels`` (one identity per face) cannot fill: P ≥ 2, K ≥ 2, P ≤ the identities."""
    if identities_per_batch < 2 or images_per_identity < 2:
        raise UsageError(f"need P ≥ 2 identities × K ≥ 2 images per batch, received {identities_per_batch}×{images_per_identity}")
    present = len(np.unique(labels))
    if identities_per_batch > present:
        raise UsageError(f"P = {identities_per_batch} identities per batch but the data has {present}")


def pk_batches(labels: np.ndarray, identities_per_batch: int, images_per_identity: int, steps: int,
               seed: int = 0) -> Iterator[np.ndarray]:
    """``steps`` batches of indices: P identities × K images each (FaceNet §3.2's identity-balanced batches).

    Identities are drawn without replacement within a batch; images without replacement when an identity
    has ≥ K of them, else with replacement.
    """
    labels = np.asarray(labels)
    groups = [np.flatnonzero(labels == value) for value in np.unique(labels)]
    check_batches(labels, identities_per_batch, images_per_identity)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        chosen = rng.choice(len(groups), identities_per_batch, replace=False)
        batch = [rng.choice(groups[g], images_per_identity, replace=len(groups[g]) < images_per_identity) for g in chosen]
        yield np.concatenate(batch)


def all_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every unordered pair (i < j): index arrays ``i``, ``j`` and the boolean ``same`` label."""
    labels = np.asarray(labels)
    i, j = np.triu_indices(len(labels), k=1)
    return i, j, labels[i] == labels[j]


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool


def read_pairs_csv(path: str | os.PathLike) -> list[Pair]:
    """Pairs from a CSV with columns ``a,b,same``; paths resolved from the CSV's folder and kept inside it."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such pairs file")
    base = path.parent
    pairs = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"a", "b", "same"} - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(sorted(missing))}; expected a header a,b,same")
        for line, row in enumerate(reader, start=2):
            flag = (row.get("same") or "").strip().lower()
            if flag not in _TRUE | _FALSE or not (row.get("a") or "").strip() or not (row.get("b") or "").strip():
                raise DatasetError(f"{path}:{line}: expected two image paths and same = 1/0, received {dict(row)}")
            try:
                a, b = (str(inside(base, row[key].strip())) for key in ("a", "b"))
            except DatasetError as error:
                raise DatasetError(f"{path}:{line}: {error}") from None
            pairs.append(Pair(a, b, flag in _TRUE))
    if not pairs:
        raise DatasetError(f"{path}: no pairs")
    return pairs


def write_pairs_csv(path: str | os.PathLike, pairs: Sequence[Pair]) -> None:
    """Write pairs as ``a,b,same`` atomically."""
    from visionkit.core.writers import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["a", "b", "same"])
            writer.writerows((p.a, p.b, int(p.same)) for p in pairs)


def folder_pairs(folder: FaceFolder) -> list[Pair]:
    """All pairs of a face folder (n·(n−1)/2 of them)."""
    i, j, same = all_pairs(folder.labels)
    return [Pair(folder.paths[a], folder.paths[b], bool(s)) for a, b, s in zip(i, j, same)]


__all__ = ["FaceFolder", "identity_folders", "split_identities", "pk_batches", "all_pairs", "Pair", "read_pairs_csv",
           "write_pairs_csv", "folder_pairs"]
