"""Class-folder image datasets: ``DATA/<class>/*.jpg``, split stratified and seeded, decoded once.

Layouts:

- ``DATA/<class>/…``: one pool, split into train / dev / test by :func:`stratified_split`;
- ``DATA/train/<class>/…`` with ``DATA/dev`` (or ``val``/``valid``) and optionally ``DATA/test``: given splits,
  which is how a dev set from another distribution is supplied (the course's data-mismatch setting).

Images are decoded once (threaded, EXIF-aware, via :mod:`visionkit.core.io`), resized so their short side is
``resize`` and centre-cropped to ``resize``×``resize``; a training pipeline then crops ``input_size`` from it
(randomly when augmenting, in the centre otherwise, exactly as ``visionkit classify`` does at inference).
Corrupt or unreadable files are skipped and listed in :attr:`Decoded.skipped`; training goes on without them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from visionkit.core.errors import DatasetError, UsageError
from visionkit.core.io import is_image_path

SPLIT_NAMES = {"train": ("train",), "dev": ("dev", "val", "valid", "validation"), "test": ("test",)}
#: Above this many bytes the decoded pixels go to a memory-mapped file instead of RAM.
IN_MEMORY_LIMIT = 1 << 30


@dataclass(frozen=True)
class LabelledFiles:
    """Image paths with integer labels indexing ``class_names``; ``ignored`` lists files that are not images."""

    class_names: tuple[str, ...]
    files: tuple[str, ...]
    labels: np.ndarray
    ignored: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, indices: Sequence[int]) -> "LabelledFiles":
        indices = np.asarray(indices, dtype=np.int64)
        return LabelledFiles(self.class_names, tuple(self.files[i] for i in indices), self.labels[indices])

    def concat(self, other: "LabelledFiles") -> "LabelledFiles":
        return LabelledFiles(self.class_names, self.files + other.files, np.concatenate([self.labels, other.labels]))

    def counts(self) -> dict[str, int]:
        found = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, found)}


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_class_folders(root: str | os.PathLike, class_names: Sequence[str] | None = None,
                       min_classes: int = 2) -> LabelledFiles:
    """The images under ``root/<class>/`` (one level of sub-folders per class, searched recursively).

    ``class_names`` fixes the class order (e.g. a trained model's), and folders with other names are an error.
    Raises DatasetError for a missing folder, fewer than ``min_classes`` classes or an empty class folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder; expected one sub-folder of images per class")
    folders = _class_folders(root)
    if not folders:
        raise DatasetError(f"{root}: no class sub-folders; expected {root}/<class name>/<images>")
    if class_names is not None:
        unknown = sorted({f.name for f in folders} - set(class_names))
        if unknown:
            raise DatasetError(f"{root}: class folder(s) {', '.join(unknown)} are not classes of the model "
                               f"({', '.join(class_names)})")
        names = tuple(class_names)
    else:
        names = tuple(f.name for f in folders)
        if len(names) < min_classes:
            raise DatasetError(f"{root}: found {len(names)} class folder ({', '.join(names)}); a classifier needs at "
                               f"least {min_classes} classes, one sub-folder each")
    files, labels, ignored = [], [], []
    for folder in folders:
        found = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        images = [p for p in found if is_image_path(p)]
        ignored += [str(p) for p in found if not is_image_path(p)]
        if not images:
            raise DatasetError(f"{folder}: class folder holds no images; add some or remove the folder")
        files += [str(p) for p in images]
        labels += [names.index(folder.name)] * len(images)
    return LabelledFiles(names, tuple(files), np.asarray(labels, dtype=np.int64), tuple(ignored))


def find_split_folders(root: str | os.PathLike) -> dict[str, Path] | None:
    """``{"train": …, "dev": …, "test": …}`` when ``root`` holds split folders (train plus dev/val), else None."""
    root = Path(root)
    if not root.is_dir():
        return None
    found = {}
    for split, aliases in SPLIT_NAMES.items():
        for alias in aliases:
            if (root / alias).is_dir():
                found[split] = root / alias
                break
    return found if {"train", "dev"} <= set(found) else None


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split indices into ``len(fractions) + 1`` parts; part i+1 holds about ``fractions[i]`` of the data.

    Each part keeps the class proportions (scikit-learn's stratified shuffle), every class with at least
    two images keeps one in the first part, and the same ``seed`` gives the same parts.
    """
    from sklearn.model_selection import train_test_split

    remaining = np.arange(len(labels))
    parts = []
    left = 1.0
    for fraction in fractions:
        if fraction <= 0:
            parts.append(np.array([], dtype=np.int64))
            continue
        share = fraction / left
        count = int(round(share * len(remaining)))
        if count < 1 or count >= len(remaining):
            raise UsageError(f"a split of {fraction:.2f} of {len(labels)} images leaves an empty part; "
                             "change the fractions or add images")
        keep_classes = np.bincount(labels[remaining]).min() >= 2 and count >= len(np.unique(labels[remaining]))
        kept, taken = train_test_split(remaining, test_size=count, random_state=seed,
                                       stratify=labels[remaining] if keep_classes else None)
        parts.append(np.sort(taken))
        remaining = np.sort(kept)
        left -= fraction
    return [remaining, *parts]


@dataclass(frozen=True)
class Splits:
    """The labelled files of each split (``train_dev`` and ``test`` may be empty)."""

    train: LabelledFiles
    dev: LabelledFiles
    test: LabelledFiles
    train_dev: LabelledFiles
    given: bool = False  # True when the folders fixed the splits
    ignored: tuple[str, ...] = ()  # files in the class folders that are not images

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names

    def items(self):
        return [(name, part) for name, part in (("train", self.train), ("train_dev", self.train_dev),
                                                ("dev", self.dev), ("test", self.test)) if len(part)]


def make_splits(root: str | os.PathLike, dev_fraction: float = 0.15, test_fraction: float = 0.15,
                train_dev_fraction: float = 0.0, seed: int = 0) -> Splits:
    """Train / train-dev / dev / test parts of a class-folder dataset (split folders are used when present).

    ``train_dev_fraction`` is taken from the training part: same distribution as training, never trained on,
    so that dev error - train-dev error measures data mismatch (Ng, *Structuring ML Projects*, week 2).
    """
    for name, value in (("dev", dev_fraction), ("test", test_fraction), ("train-dev", train_dev_fraction)):
        if not 0 <= value < 1:
            raise UsageError(f"the {name} fraction must lie in [0, 1), received {value}")
    given = find_split_folders(root)
    if given:
        train = scan_class_folders(given["train"])
        dev = scan_class_folders(given["dev"], train.class_names)
        test = scan_class_folders(given["test"], train.class_names) if "test" in given else train.subset([])
        pool = train
        train_part, train_dev_part = stratified_split(train.labels, [train_dev_fraction], seed)
        return Splits(pool.subset(train_part), dev, test, pool.subset(train_dev_part), given=True,
                      ignored=train.ignored + dev.ignored + test.ignored)
    pool = scan_class_folders(root)
    if dev_fraction + test_fraction >= 0.9:
        raise UsageError(f"dev {dev_fraction} + test {test_fraction} leave too little to train on")
    rest, dev_part, test_part = stratified_split(pool.labels, [dev_fraction, test_fraction], seed)
    rest_pool = pool.subset(rest)
    train_part, train_dev_part = stratified_split(rest_pool.labels, [train_dev_fraction], seed + 1)
    return Splits(rest_pool.subset(train_part), pool.subset(dev_part), pool.subset(test_part),
                  rest_pool.subset(train_dev_part), given=False, ignored=pool.ignored)


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """scikit-learn's "balanced" weights n / (k · n_c), so each class adds the same total to the loss."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    values = compute_class_weight("balanced", classes=present, y=labels)
    weights = {int(c): 1.0 for c in range(num_classes)}
    weights.update({int(c): float(w) for c, w in zip(present, values)})
    return weights


@dataclass
class Decoded:
    """Decoded square pixels (N, S, S, 3) uint8, their labels and files, and the files that were skipped."""

    pixels: np.ndarray
    labels: np.ndarray
    files: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # input positions kept

    def rows_of(self, start: int, stop: int) -> np.ndarray:
        """Rows of the decoded arrays that came from input positions ``start`` … ``stop - 1``."""
        return np.flatnonzero((self.indices >= start) & (self.indices < stop))


def square_transform(size: int, interpolation: str = "bilinear") -> Callable[[np.ndarray], np.ndarray]:
    """Resize the short side to ``size`` and centre-crop ``size``×``size`` (the same steps as classify)."""
    from visionkit.core.preprocess import centre_crop, resize_short_side

    def transform(image: np.ndarray) -> np.ndarray:
        return centre_crop(resize_short_side(image, size, interpolation), size, size)

    return transform


def decode(files: LabelledFiles, size: int, interpolation: str = "bilinear", workers: int | None = None,
           scratch: str | os.PathLike | None = None, on_progress: Callable[[int, int], None] | None = None) -> Decoded:
    """Decode every file once to ``size``×``size``; unreadable ones are skipped and listed, never fatal.

    When the pixels would take more than :data:`IN_MEMORY_LIMIT` bytes they are written to a
    memory-mapped ``.npy`` file under ``scratch`` instead of being held in RAM.
    """
    from visionkit.core.io import iter_images

    count = len(files)
    nbytes = count * size * size * 3
    if nbytes > IN_MEMORY_LIMIT and scratch is not None:
        Path(scratch).mkdir(parents=True, exist_ok=True)
        pixels = np.lib.format.open_memmap(Path(scratch) / f"pixels-{size}-{os.getpid()}.npy", mode="w+",
                                           dtype=np.uint8, shape=(count, size, size, 3))
    else:
        pixels = np.empty((count, size, size, 3), dtype=np.uint8)
    kept, skipped = [], []
    items = iter_images(list(files.files), workers=workers or min(4, os.cpu_count() or 2), draft=size,
                        transform=square_transform(size, interpolation))
    for index, item in enumerate(items):
        if item.ok:
            pixels[len(kept)] = item.image
            kept.append(index)
        else:
            skipped.append((files.files[index], item.error))
        if on_progress:
            on_progress(index + 1, count)
    kept_array = np.asarray(kept, dtype=np.int64)
    return Decoded(pixels[: len(kept)], files.labels[kept_array] if count else files.labels,
                   [files.files[i] for i in kept], skipped, kept_array)
