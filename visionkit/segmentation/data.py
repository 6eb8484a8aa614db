"""Image/mask pairs for semantic segmentation: pairing by file stem, class files, mapping source ids to classes.

A data set is a folder with ``images/`` and ``masks/`` sub-folders; ``images/cat.jpg`` pairs with
``masks/cat.png``. A mask holds one class id per pixel (single-channel or palette PNG), or colours that a
class file maps to classes. Ids are then mapped to the classes to learn by a :class:`ClassMap`: the
identity, the class file's names, or a ``--classes`` rule such as ``"1:person,0:ignore,*:background"``.
Pixels mapped to ``ignore`` get :data:`IGNORE_INDEX` and count in neither loss nor metrics.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from visionkit.core.errors import DatasetError, UsageError
from visionkit.core.io import IMAGE_EXTENSIONS, load_image
from visionkit.segmentation.metrics import IGNORE_INDEX
from visionkit.core.io import image_size

IMAGES_DIR, MASKS_DIR = "images", "masks"
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".gif")
#: Source value treated as "ignore" unless a rule names it (the PASCAL VOC boundary / void value).
SOURCE_IGNORE = 255
IGNORE_NAMES = ("ignore", "void")
BACKGROUND = "background"
_RANGE = re.compile(r"^(\d+)-(\d+)$")


@dataclass(frozen=True)
class ClassFile:
    """Names of source ids (and, for colour masks, the colour of each id) read from a class file."""

    names: dict[int, str]
    colours: dict[tuple[int, int, int], int] = field(default_factory=dict)


def read_class_file(path: str | Path) -> ClassFile:
    """Read ``classes.txt`` (line i = id i: ``name``, ``name R G B`` or ``name #rrggbb``; ``#`` starts a comment line)
    or a JSON ``{id: name}``.

    A JSON file may keep the mapping under a ``"mask_ids"`` key (as coco128's ``classes.json`` does).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: class file not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
            data = data.get("mask_ids", data)
            return ClassFile({int(k): str(v) for k, v in data.items()})
        except (ValueError, AttributeError) as error:
            raise DatasetError(f"{path}: expected a JSON object {{id: name}} ({error})") from None
    names, colours = {}, {}
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for index, line in enumerate(lines):
        tokens = line.split()
        colour = None
        if len(tokens) >= 4 and all(t.isdigit() for t in tokens[-3:]):
            colour, tokens = tuple(int(t) for t in tokens[-3:]), tokens[:-3]
        elif len(tokens) >= 2 and re.fullmatch(r"#[0-9a-fA-F]{6}", tokens[-1]):
            colour, tokens = tuple(int(tokens[-1][i:i + 2], 16) for i in (1, 3, 5)), tokens[:-1]
        names[index] = " ".join(tokens)
        if colour is not None:
            if colour in colours or max(colour) > 255:
                raise DatasetError(f"{path}: line {index + 1}: colour {colour} is repeated or out of range")
            colours[colour] = index
    if colours and len(colours) != len(names):
        raise DatasetError(f"{path}: give a colour on every line or on none ({len(colours)} of {len(names)} have one)")
    return ClassFile(names, colours)


@dataclass(frozen=True)
class ClassMap:
    """Source id -> class id (``lut``; IGNORE_INDEX for ignored, -1 for ids outside the map) and class names."""

    names: tuple[str, ...]
    lut: np.ndarray
    colours: dict = field(default_factory=dict)  # (r, g, b) -> source id, for colour masks

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict:
        """JSON-ready form (for a model's sidecar): names, ``[first, last, class]`` runs of the lut, colours."""
        runs, start = [], 0
        for index in range(1, self.lut.size + 1):
            if index == self.lut.size or self.lut[index] != self.lut[start]:
                if self.lut[start] != -1:
                    runs.append([start, index - 1, int(self.lut[start])])
                start = index
        colours = [[*colour, int(source)] for colour, source in self.colours.items()]
        return {"names": list(self.names), "runs": runs, "colours": colours}

    @classmethod
    def from_dict(cls, data: dict) -> "ClassMap":
        lut = np.full(65536, -1, dtype=np.int32)
        for first, last, value in data["runs"]:
            lut[first:last + 1] = value
        colours = {tuple(int(v) for v in c[:3]): int(c[3]) for c in data.get("colours", [])}
        return cls(tuple(data["names"]), lut, colours)

    def describe(self) -> str:
        """``background=0, person=1; ignore: 0`` for logs and model cards."""
        mapped = ", ".join(f"{n}={i}" for i, n in enumerate(self.names))
        ignored = np.flatnonzero(self.lut == IGNORE_INDEX)
        return mapped + (f"; ignored source ids: {_ranges(ignored)}" if ignored.size else "")


def _ranges(values: np.ndarray) -> str:
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ",".join(parts)


def _lut(size: int = 65536) -> np.ndarray:
    lut = np.full(size, -1, dtype=np.int32)
    lut[SOURCE_IGNORE] = IGNORE_INDEX
    return lut


def identity_map(num_classes: int, names: Sequence[str] | None = None) -> ClassMap:
    """Mask values are the class ids 0..num_classes-1 (255 ignored)."""
    if not 2 <= num_classes <= 255:
        raise UsageError(f"number of classes must be 2..255, received {num_classes}")
    lut = _lut()
    lut[:num_classes] = np.arange(num_classes)
    return ClassMap(tuple(names or (str(i) for i in range(num_classes))), lut)


def class_file_map(class_file: ClassFile) -> ClassMap:
    """The class file's ids as classes; lines named ``ignore``/``void`` are ignored."""
    lut = _lut()
    names: list[str] = []
    for source in sorted(class_file.names):
        name = class_file.names[source]
        if name.lower() in IGNORE_NAMES:
            lut[source] = IGNORE_INDEX
        else:
            lut[source] = len(names)
            names.append(name)
    return ClassMap(tuple(names), lut, dict(class_file.colours))


def parse_classes(rule: str, class_file: ClassFile | None = None) -> ClassMap:
    """A ClassMap from ``"SRC:NAME,..."``; SRC is an id, a range ``2-200``, a class-file name, or ``*`` (all others).

    NAME ``ignore`` drops those pixels from loss and metrics. A class named ``background`` gets id 0;
    the others are numbered in order of first mention. Source value 255 stays ignored unless named.
    """
    pairs = [item.strip() for item in rule.split(",") if item.strip()]
    if not pairs:
        raise UsageError(f"--classes {rule!r} is empty; use e.g. '1:person,0:ignore,*:background'")
    by_name = {v.lower(): k for k, v in (class_file.names.items() if class_file else ())}
    targets, rest = [], None
    for item in pairs:
        source, sep, name = item.rpartition(":")
        source, name = source.strip(), name.strip()
        if not sep or not source or not name:
            raise UsageError(f"--classes item {item!r} is not SOURCE:NAME (e.g. '1:person' or '*:background')")
        if source == "*":
            rest = name
            continue
        match = _RANGE.match(source)
        if source.isdigit():
            ids = [int(source)]
        elif match:
            ids = list(range(int(match.group(1)), int(match.group(2)) + 1))
        elif source.lower() in by_name:
            ids = [by_name[source.lower()]]
        else:
            hint = "" if class_file else " (give --class-file to use names)"
            raise UsageError(f"--classes: source {source!r} is not an id, a range, '*' or a class-file name{hint}")
        targets.append((ids, name))
    ordered = [n for n in [*(n for _, n in targets), rest] if n and n.lower() not in IGNORE_NAMES]
    names = list(dict.fromkeys(ordered))
    if BACKGROUND in names:
        names.remove(BACKGROUND)
        names.insert(0, BACKGROUND)
    if len(names) < 2:
        raise UsageError(f"--classes {rule!r} gives {len(names)} class(es); segmentation needs at least 2")
    lut = _lut()
    if rest is not None:
        lut[:] = IGNORE_INDEX if rest.lower() in IGNORE_NAMES else names.index(rest)
        lut[SOURCE_IGNORE] = IGNORE_INDEX
    for ids, name in targets:
        if max(ids) >= lut.size:
            raise UsageError(f"--classes: source id {max(ids)} is above the largest mask value {lut.size - 1}")
        lut[ids] = IGNORE_INDEX if name.lower() in IGNORE_NAMES else names.index(name)
    return ClassMap(tuple(names), lut, dict(class_file.colours) if class_file else {})


def read_mask_values(path: str | Path, colours: dict | None = None) -> np.ndarray:
    """The source ids of a mask file as an int32 (H, W) array (palette PNGs give their indices)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            pixels = np.asarray(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetError(f"{path}: cannot read mask ({error.__class__.__name__}: {error})") from None
    if pixels.ndim == 2:
        return pixels.astype(np.int32)
    rgb = pixels[..., :3].astype(np.int32)
    if colours:
        return _colours_to_ids(rgb, colours, path)
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all():
        return rgb[..., 0]  # grey ids saved as RGB
    raise DatasetError(f"{path}: mask is a colour ({mode}) image but class ids were expected; save masks as "
                       "single-channel PNGs of class ids, or give a class file with a colour per class (--class-file)")


def _colours_to_ids(rgb: np.ndarray, colours: dict, path: Path) -> np.ndarray:
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    keys = np.array([(r << 16) | (g << 8) | b for r, g, b in colours], dtype=np.int64)
    ids = np.array(list(colours.values()), dtype=np.int32)
    order = np.argsort(keys)
    position = np.clip(np.searchsorted(keys[order], packed), 0, len(keys) - 1)
    found = keys[order][position] == packed
    if not found.all():
        value = int(packed[~found].flat[0])
        colour = (value >> 16 & 255, value >> 8 & 255, value & 255)
        raise DatasetError(f"{path}: colour {colour} ({int((~found).sum())} pixels) is not in the class file; "
                           "add it there (e.g. as 'ignore R G B')")
    return ids[order][position]


def apply_class_map(values: np.ndarray, class_map: ClassMap, path: str | Path = "mask") -> np.ndarray:
    """Source ids -> class ids (uint8, IGNORE_INDEX for ignored); DatasetError for ids outside the map."""
    if values.min(initial=0) < 0 or values.max(initial=0) >= class_map.lut.size:
        raise DatasetError(f"{path}: mask values {values.min()}..{values.max()} are outside 0..{class_map.lut.size - 1}")
    mapped = class_map.lut[values]
    if (mapped < 0).any():
        bad = np.unique(values[mapped < 0])
        raise DatasetError(f"{path}: mask values {_ranges(bad)[:80]} are outside the class map ({class_map.describe()[:160]}); "
                           "map them with --classes (e.g. '*:background' or '7:ignore')")
    return mapped.astype(np.uint8)


def _files_by_stem(folder: Path, extensions: Sequence[str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in extensions:
            if path.stem in found:
                raise DatasetError(f"{folder}: two files share the stem {path.stem!r} ({found[path.stem].name}, {path.name})")
            found[path.stem] = path
    return found


def find_pairs(root: str | Path, skip_unmasked: bool = False) -> list[tuple[Path, Path]]:
    """(image, mask) paths from ``root/images`` and ``root/masks`` paired by stem, sorted by stem."""
    root = Path(root)
    images_dir, masks_dir = root / IMAGES_DIR, root / MASKS_DIR
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise DatasetError(f"{root}: expected sub-folders {IMAGES_DIR}/ and {MASKS_DIR}/ (image and mask with the same stem)")
    images = _files_by_stem(images_dir, IMAGE_EXTENSIONS)
    lossy = sorted(p.name for p in masks_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".webp"))
    if lossy:
        raise DatasetError(f"{masks_dir}: {lossy[0]} is a lossy JPEG/WebP mask; class ids must be saved losslessly (PNG)")
    masks = _files_by_stem(masks_dir, MASK_EXTENSIONS)
    unmasked = sorted(set(images) - set(masks))
    if unmasked and not skip_unmasked:
        raise DatasetError(f"{root}: {len(unmasked)} of {len(images)} images have no mask in {MASKS_DIR}/ "
                           f"(e.g. {images[unmasked[0]].name}); add masks, or pass --skip-unmasked to use only the paired ones")
    pairs = [(images[s], masks[s]) for s in sorted(set(images) & set(masks))]
    if not pairs:
        raise DatasetError(f"{root}: no image in {IMAGES_DIR}/ has a mask with the same stem in {MASKS_DIR}/")
    return pairs


def load_pair(image_path: Path, mask_path: Path, class_map: ClassMap) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 image, uint8 class-id mask), checked to have the same size."""
    image = load_image(image_path)
    mask = apply_class_map(read_mask_values(mask_path, class_map.colours), class_map, mask_path)
    if mask.shape != image.shape[:2]:
        raise DatasetError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {image_path.name} "
                           f"is {image.shape[1]}x{image.shape[0]}; masks must have their image's size")
    return image, mask


@dataclass
class SegmentationData:
    """Checked image/mask pairs, their class map, and each pair's pixel count per class ((N, C) array)."""

    pairs: list[tuple[Path, Path]]
    class_map: ClassMap
    pixel_counts: np.ndarray

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.class_map.names

    def subset(self, indices: Sequence[int]) -> "SegmentationData":
        indices = list(indices)
        return SegmentationData([self.pairs[i] for i in indices], self.class_map, self.pixel_counts[indices])

    def stems(self) -> list[str]:
        return [image.stem for image, _ in self.pairs]


def infer_num_classes(pairs, colours=None) -> int:
    """Largest mask value + 1 over all masks (the ignore value 255 left out)."""
    top = 0
    for _, mask_path in pairs:
        values = read_mask_values(mask_path, colours)
        values = values[values != SOURCE_IGNORE]
        top = max(top, int(values.max(initial=0)))
    return max(2, top + 1)


def open_dataset(root: str | Path, classes: str | None = None, class_file: str | Path | None = None,
                 class_map: ClassMap | None = None, skip_unmasked: bool = False,
                 on_progress: Callable[[int, int], None] | None = None) -> SegmentationData:
    """Find and check every pair (sizes, mask values); DatasetError lists the first problems found.

    The class map is ``class_map`` if given (e.g. a trained model's), else built from ``classes`` and/or
    ``class_file``, else the identity over the largest id found.
    """
    pairs = find_pairs(root, skip_unmasked)
    names = read_class_file(class_file) if class_file else None
    if class_map is None:
        if classes:
            class_map = parse_classes(classes, names)
        elif names:
            class_map = class_file_map(names)
        else:
            class_map = identity_map(infer_num_classes(pairs))
    counts = np.zeros((len(pairs), class_map.num_classes), dtype=np.int64)
    problems = []
    for done, (image_path, mask_path) in enumerate(pairs, start=1):
        try:
            mask = apply_class_map(read_mask_values(mask_path, class_map.colours), class_map, mask_path)
            if mask.shape != image_size(image_path):
                height, width = image_size(image_path)
                raise DatasetError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                                   f"{image_path.name} is {width}x{height}; masks must have their image's size")
            counts[done - 1] = np.bincount(mask[mask != IGNORE_INDEX].ravel(), minlength=class_map.num_classes)
        except DatasetError as error:
            problems.append(str(error))
        except OSError as error:
            problems.append(f"{image_path}: cannot read image ({error})")
        if on_progress:
            on_progress(done, len(pairs))
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DatasetError(f"{len(problems)} of {len(pairs)} pairs are unusable: " + "; ".join(problems[:3]) + more)
    return SegmentationData(pairs, class_map, counts)


def split_indices(count: int, val_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """A seeded random (train, val) split of ``range(count)``; at least one item on each side."""
    if not 0 < val_fraction < 1:
        raise UsageError(f"validation fraction must be between 0 and 1, received {val_fraction}")
    if count < 2:
        raise DatasetError(f"need at least 2 image/mask pairs to hold some out, found {count}")
    order = np.random.default_rng(seed).permutation(count)
    n_val = min(count - 1, max(1, round(count * val_fraction)))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())
