"""Detection data sets: YOLO txt, Pascal VOC XML and COCO JSON, read into one form with clear errors.

Every loader returns :class:`DetectionData`: one :class:`Annotation` per image (boxes as ``xyxy`` pixels of the
image as displayed, i.e. after EXIF rotation, and class indices into ``class_names``). An image with no boxes
(an empty YOLO label file, a VOC file without objects, a COCO image without annotations) is a valid background
image. Problems (out-of-range coordinates, unknown class ids, malformed lines or XML, labels without images)
are collected over the whole data set and raised as one :class:`DatasetError` naming the files and lines, so a
training run never stops half-way; ``on_error="skip"`` drops the bad boxes and files instead, each named in
:attr:`DetectionData.warnings` (the verb that loaded the data reports them, once).
``missing_images="skip"`` (what ``detect val`` does unless ``--strict``) leaves out label files whose image is not
there (a YOLO .txt, a VOC .xml, a COCO image entry) with one warning naming them, while other problems still count:
an evaluation can only score the images it has, but a training set with labels and no photos is a mistake.

VOC XML is parsed with ``defusedxml``: files that declare entities (billion laughs) or reach for external
resources are refused, never expanded.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from visionkit.core.errors import DatasetError, UsageError
from visionkit.core.io import IMAGE_EXTENSIONS
from visionkit.core.io import image_size
from visionkit.core.paths import inside

log = logging.getLogger(__name__)

FORMATS = ("auto", "yolo", "voc", "coco")
#: Boxes may poke this far outside the image (fraction of its side) before it counts as an error; then clipped.
TOLERANCE = 0.02
NAME_FILES = ("classes.txt", "obj.names", "classes.names", "classes.json", "data.yaml")


@dataclass(frozen=True)
class Annotation:
    """The boxes of one image: ``boxes`` (n, 4) xyxy pixels, ``classes`` (n,) indices, ``size`` (height, width)."""

    image: str
    boxes: np.ndarray
    classes: np.ndarray
    size: tuple[int, int]


@dataclass
class DetectionData:
    """A labelled data set: annotations, class names, and where it came from."""

    items: list[Annotation]
    class_names: list[str]
    format: str
    root: str
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def box_count(self) -> int:
        return int(sum(len(a.boxes) for a in self.items))

    def box_shapes(self) -> np.ndarray:
        """(width, height) of every box as a fraction of its image's longer side (= of a square letterbox)."""
        shapes = [(a.boxes[:, 2:] - a.boxes[:, :2]) / max(a.size) for a in self.items if len(a.boxes)]
        return np.concatenate(shapes) if shapes else np.zeros((0, 2))

    def subset(self, indices) -> "DetectionData":
        return replace(self, items=[self.items[i] for i in indices], warnings=list(self.warnings))

    def select_classes(self, names) -> "DetectionData":
        """Only the boxes of classes ``names`` (in that order); images left without boxes become background."""
        lookup = {name.lower(): i for i, name in enumerate(self.class_names)}
        missing = [n for n in names if n.lower() not in lookup]
        if missing:
            raise UsageError(f"unknown class(es) {', '.join(missing)}; the data set has {', '.join(self.class_names[:20])}")
        new_index = np.full(len(self.class_names), -1, dtype=np.int64)
        for i, name in enumerate(names):
            new_index[lookup[name.lower()]] = i
        items = []
        for a in self.items:
            kept = new_index[a.classes] >= 0 if len(a.classes) else np.zeros(0, dtype=bool)
            items.append(replace(a, boxes=a.boxes[kept], classes=new_index[a.classes][kept]))
        return replace(self, items=items, class_names=list(names), warnings=list(self.warnings))

    def split(self, fraction: float, seed: int = 0) -> tuple["DetectionData", "DetectionData"]:
        """A seeded random split: (the rest, a held-out ``fraction`` of the images)."""
        if not 0.0 < fraction < 1.0:
            raise UsageError(f"split fraction must be between 0 and 1, received {fraction}")
        order = np.random.default_rng(seed).permutation(len(self.items))
        held = max(1, round(fraction * len(self.items)))
        return self.subset(sorted(order[held:])), self.subset(sorted(order[:held]))

    def summary(self) -> str:
        background = sum(1 for a in self.items if len(a.boxes) == 0)
        return (f"{len(self.items)} images ({background} background), {self.box_count} boxes, "
                f"{len(self.class_names)} classes ({self.format})")


class _Problems:
    """Collects 'file:line: reason' messages; raises them together (or, on_error='skip', keeps them as the data's
    ``warnings``, which the verb that loaded the data reports). Label files
    without an image are one of them, or (missing_images='skip') left out and summed up in one warning."""

    def __init__(self, root: Path, on_error: str, missing_images: str = "raise"):
        for name, value in (("on_error", on_error), ("missing_images", missing_images)):
            if value not in ("raise", "skip"):
                raise UsageError(f"{name} must be 'raise' or 'skip', received {value!r}")
        self.root, self.on_error, self.messages = root, on_error, []
        self.without_images: list[str] | None = [] if missing_images == "skip" else None

    def where(self, path: Path | str) -> str:
        return os.path.relpath(path, self.root.parent) if os.path.isabs(path) else str(path)

    def add(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.messages.append(f"{self.where(path)}{f':{line}' if line else ''}: {message}")

    def add_missing_image(self, path: Path | str, message: str, what: str = "") -> None:
        """A label file (``what`` in it, e.g. a COCO image entry) whose image is not there."""
        if self.without_images is None:
            self.add(path, message)
        else:
            self.without_images.append(self.where(path) + (f": {what}" if what else ""))

    def finish(self, data: DetectionData) -> DetectionData:
        if self.messages and self.on_error == "raise":
            shown = "; ".join(self.messages[:6]) + (f"; … and {len(self.messages) - 6} more" if len(self.messages) > 6 else "")
            raise DatasetError(f"{len(self.messages)} problem(s) in {self.root}: {shown}. Fix the labels, or pass "
                               f"on_error='skip' (--skip-bad-labels) to drop what is wrong")
        left_out = self.without_images or []
        summary = [f"left out {len(left_out)} label file(s) without an image: {', '.join(left_out[:3])}"
                   + (f" … and {len(left_out) - 3} more" if len(left_out) > 3 else "")] if left_out else []
        data.warnings = summary + list(self.messages)
        if not data.items:
            raise DatasetError(f"{self.root}: no usable labelled images")
        return data


def _check_box(box, height, width, problems: _Problems, path, line=None) -> np.ndarray | None:
    """Clip a pixel xyxy box poking slightly outside the image; report one that is far outside or empty."""
    x1, y1, x2, y2 = box
    slack_x, slack_y = TOLERANCE * width + 1, TOLERANCE * height + 1
    if not np.all(np.isfinite(box)):
        problems.add(path, f"box {list(box)} is not a number", line)
        return None
    if x1 < -slack_x or y1 < -slack_y or x2 > width + slack_x or y2 > height + slack_y:
        problems.add(path, f"out-of-range box x1={x1:g} y1={y1:g} x2={x2:g} y2={y2:g} for a {width}x{height} image", line)
        return None
    clipped = np.array([np.clip(x1, 0, width), np.clip(y1, 0, height), np.clip(x2, 0, width), np.clip(y2, 0, height)])
    if clipped[2] - clipped[0] <= 0 or clipped[3] - clipped[1] <= 0:
        problems.add(path, f"empty box x1={x1:g} y1={y1:g} x2={x2:g} y2={y2:g} (x2 must exceed x1, y2 exceed y1)", line)
        return None
    return clipped


def _annotation(image: Path, boxes: list, classes: list, size) -> Annotation:
    return Annotation(str(image), np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(classes, dtype=np.int64), size)


def read_class_names(folder: Path) -> list[str] | None:
    """Class names from ``classes.txt`` / ``*.names`` (one a line), ``classes.json`` or ``data.yaml`` in ``folder``."""
    for name in NAME_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            names = data if isinstance(data, list) else data.get("detection_names") or data.get("names")
        elif path.suffix == ".yaml":
            import yaml

            names = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("names")
            names = [names[k] for k in sorted(names)] if isinstance(names, dict) else names
        else:
            names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not isinstance(names, list) or not names:
            raise DatasetError(f"{path}: expected a list of class names")
        return [str(n) for n in names]
    return None


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def load_yolo(root: Path, class_names: list[str] | None = None, on_error: str = "raise",
              missing_images: str = "raise") -> DetectionData:
    """``root/images/**.jpg`` with ``root/labels/**.txt`` (or both side by side): ``class cx cy w h`` relative.

    Class names come from a names file in ``root`` (``classes.txt``, ``obj.names``, ``classes.json``,
    ``data.yaml``), else from ``class_names``, else the ids themselves.
    """
    problems = _Problems(root, on_error, missing_images)
    images_dir = root / "images" if (root / "images").is_dir() else root
    labels_dir = root / "labels" if (root / "labels").is_dir() else images_dir
    names = read_class_names(root) or class_names  # a names file in the folder wins over the caller's guess
    images = _images_under(images_dir)
    label_of = {image: labels_dir / image.relative_to(images_dir).with_suffix(".txt") for image in images}
    matched = set(label_of.values())
    orphans = sorted(p for p in labels_dir.rglob("*.txt") if p not in matched and p.name not in NAME_FILES)
    for orphan in orphans:
        problems.add_missing_image(orphan, f"label file has no image of the same name in {images_dir}")
    parsed = []
    for image in images:
        try:
            height, width = image_size(image)
        except Exception as error:  # Pillow raises many types for a bad file
            problems.add(image, f"not a readable image ({error.__class__.__name__})")
            continue
        boxes, classes = [], []
        label = label_of[image]
        lines = label.read_text(encoding="utf-8", errors="replace").splitlines() if label.is_file() else []
        for number, text in enumerate(lines, start=1):
            fields = text.split()
            if not fields:
                continue
            try:
                if len(fields) != 5:
                    raise ValueError(f"expected 5 fields 'class cx cy w h', found {len(fields)}")
                class_id, values = float(fields[0]), np.array([float(v) for v in fields[1:]])
            except ValueError as error:
                problems.add(label, f"malformed line {text.strip()[:60]!r}: {error}", number)
                continue
            if class_id != int(class_id) or class_id < 0 or (names and class_id >= len(names)):
                known = f"the data set has {len(names)} classes, 0-{len(names) - 1}" if names else "ids start at 0"
                problems.add(label, f"unknown class id {fields[0]} ({known})", number)
                continue
            cx, cy, w, h = values
            if not (-TOLERANCE <= cx <= 1 + TOLERANCE and -TOLERANCE <= cy <= 1 + TOLERANCE and 0 < w <= 1 + TOLERANCE and 0 < h <= 1 + TOLERANCE):
                problems.add(label, f"out-of-range coordinates cx={cx:g} cy={cy:g} w={w:g} h={h:g} "
                                    f"(YOLO boxes are fractions of the image size, in [0, 1])", number)
                continue
            pixels = np.array([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])
            box = _check_box(pixels, height, width, problems, label, number)
            if box is not None:
                boxes.append(box)
                classes.append(int(class_id))
        parsed.append(_annotation(image, boxes, classes, (height, width)))
    if not images:
        raise DatasetError(f"{images_dir}: no images found (expected {root}/images/*.jpg and {root}/labels/*.txt)")
    if names is None:
        top = max((int(c.max()) for a in parsed if len(a.classes) for c in [a.classes]), default=0)
        names = [str(i) for i in range(top + 1)]
        log.warning("%s: no classes.txt / classes.json / data.yaml; naming classes by their ids", root)
    return problems.finish(DetectionData(parsed, names, "yolo", str(root)))


def _xml_root(path: Path, problems: _Problems):
    import defusedxml
    import defusedxml.ElementTree as SafeElementTree

    try:
        return SafeElementTree.parse(str(path)).getroot()
    except defusedxml.DefusedXmlException as error:
        problems.add(path, f"refused: the XML declares entities or external references ({error.__class__.__name__}; "
                           f"e.g. a 'billion laughs' or external-entity attack), which visionkit never expands")
    except SafeElementTree.ParseError as error:
        problems.add(path, f"malformed XML: {error}")
    return None


def _voc_image(xml: Path, root_node, images_dir: Path) -> Path | None:
    # match on the file name only: a <filename> (or <path>) can never reach outside images_dir
    named = Path((root_node.findtext("filename") or "").strip()).name
    candidates = [images_dir / named] if named else []
    candidates += [images_dir / (xml.stem + ext) for ext in (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")]
    return next((c for c in candidates if c.is_file()), None)


def load_voc(root: Path, class_names: list[str] | None = None, on_error: str = "raise",
             missing_images: str = "raise") -> DetectionData:
    """Pascal VOC: ``root/annotations/*.xml`` (or ``Annotations/``) and ``root/images/`` (or ``JPEGImages/``)."""
    problems = _Problems(root, on_error, missing_images)
    xml_dir = next((root / d for d in ("annotations", "Annotations") if (root / d).is_dir()), root)
    images_dir = next((root / d for d in ("images", "JPEGImages") if (root / d).is_dir()), xml_dir)
    files = sorted(xml_dir.glob("*.xml"))
    if not files:
        raise DatasetError(f"{xml_dir}: no .xml annotation files")
    records = []
    for xml in files:
        node = _xml_root(xml, problems)
        if node is None:
            continue
        image = _voc_image(xml, node, images_dir)
        if image is None:
            problems.add_missing_image(xml, f"names image {node.findtext('filename')!r}, which is not in {images_dir} "
                                            f"(nor is {xml.stem}.jpg/.png)")
            continue
        try:
            size = image_size(image)
        except Exception as error:
            problems.add(image, f"not a readable image ({error.__class__.__name__})")
            continue
        objects = []
        for index, obj in enumerate(node.findall("object"), start=1):
            name = (obj.findtext("name") or "").strip()
            try:
                box = np.array([float(obj.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
            except (AttributeError, TypeError, ValueError):
                problems.add(xml, f"object {index} ({name or 'no name'}) has no numeric bndbox xmin/ymin/xmax/ymax")
                continue
            if not name:
                problems.add(xml, f"object {index} has no <name>")
                continue
            objects.append((name, box, index))
        records.append((xml, image, size, objects))
    names = list(class_names) if class_names else sorted({name for *_, objects in records for name, _, _ in objects})
    index_of = {name: i for i, name in enumerate(names)}
    items = []
    for xml, image, (height, width), objects in records:
        boxes, classes = [], []
        for name, box, number in objects:
            if name not in index_of:
                problems.add(xml, f"object {number}: unknown class {name!r} (known: {', '.join(names[:10])})")
                continue
            checked = _check_box(box, height, width, problems, xml)
            if checked is not None:
                boxes.append(checked)
                classes.append(index_of[name])
        items.append(_annotation(image, boxes, classes, (height, width)))
    return problems.finish(DetectionData(items, names, "voc", str(root)))


def load_coco(json_path: Path, images_dir: Path | None = None, on_error: str = "raise",
              missing_images: str = "raise") -> DetectionData:
    """COCO JSON (``images``, ``annotations`` with ``bbox`` = x, y, w, h pixels, ``categories``); crowd boxes skipped.

    Classes are the ``categories`` in id order (COCO's own 1-90 with gaps become 0-79), named by their ``name``."""
    problems = _Problems(json_path, on_error, missing_images)
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
        images, annotations, categories = data["images"], data.get("annotations", []), data["categories"]
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{json_path}: not valid JSON ({error})") from None
    except (KeyError, TypeError) as error:
        raise DatasetError(f"{json_path}: not a COCO file (missing {error}); expected 'images' and 'categories'") from None
    categories = sorted(categories, key=lambda c: c["id"])
    index_of = {c["id"]: i for i, c in enumerate(categories)}
    folder = images_dir or next((d for d in (json_path.parent / "images", json_path.parent) if d.is_dir()))
    per_image: dict = {img["id"]: ([], []) for img in images}
    for number, ann in enumerate(annotations, start=1):
        where = f"annotation {number} (id {ann.get('id', '?')})"
        if ann.get("iscrowd"):
            continue
        if ann.get("image_id") not in per_image:
            problems.add(json_path, f"{where}: unknown image_id {ann.get('image_id')!r}")
            continue
        if ann.get("category_id") not in index_of:
            problems.add(json_path, f"{where}: unknown category_id {ann.get('category_id')!r}")
            continue
        per_image[ann["image_id"]][0].append((ann, where))
    items = []
    for img in images:
        try:
            path = inside(folder, img.get("file_name"))
        except DatasetError as error:
            problems.add(json_path, f"image id {img.get('id')}: file_name {error}")
            continue
        if not path.is_file():
            problems.add_missing_image(json_path, f"image {img['file_name']!r} (id {img['id']}) is not in {folder}",
                                       f"image {img['file_name']!r} (id {img['id']})")
            continue
        height, width = int(img.get("height") or 0), int(img.get("width") or 0)
        if not height or not width:
            height, width = image_size(path)
        boxes, classes = [], []
        for ann, where in per_image[img["id"]][0]:
            try:
                x, y, w, h = (float(v) for v in ann["bbox"])
            except (KeyError, TypeError, ValueError):
                problems.add(json_path, f"{where}: bbox must be [x, y, width, height]")
                continue
            checked = _check_box(np.array([x, y, x + w, y + h]), height, width, problems, f"{json_path.name} {where}")
            if checked is not None:
                boxes.append(checked)
                classes.append(index_of[ann["category_id"]])
        items.append(_annotation(path, boxes, classes, (height, width)))
    names = [str(c.get("name", c["id"])) for c in categories]
    return problems.finish(DetectionData(items, names, "coco", str(json_path)))


def detect_format(path: Path) -> str:
    if path.is_file() and path.suffix.lower() == ".json":
        return "coco"
    if not path.is_dir():
        raise DatasetError(f"{path}: no such data set folder or COCO .json file")
    if any((path / d).is_dir() and any((path / d).glob("*.xml")) for d in ("annotations", "Annotations")) or any(path.glob("*.xml")):
        return "voc"
    if (path / "labels").is_dir() or any(path.glob("*.txt")):
        return "yolo"
    if list(path.glob("*.json")):
        return "coco"
    raise DatasetError(f"{path}: cannot tell the label format; expected labels/*.txt (YOLO), annotations/*.xml "
                       f"(Pascal VOC) or a COCO .json file")


def load_detection_data(path: str | os.PathLike, format: str = "auto", class_names: list[str] | None = None,
                        on_error: str = "raise", missing_images: str = "raise") -> DetectionData:
    """Read a detection data set in YOLO txt, Pascal VOC XML or COCO JSON form (``format='auto'`` guesses).

    ``on_error``: ``"raise"`` every problem together, or ``"skip"`` what is wrong; ``missing_images``: label files
    without an image are a problem (``"raise"``) or left out with one warning (``"skip"``)."""
    if format not in FORMATS:
        raise UsageError(f"unknown data set format {format!r}; choose one of {', '.join(FORMATS)}")
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such data set")
    kind = detect_format(path) if format == "auto" else format
    if kind == "coco":
        json_path = path if path.is_file() else sorted(path.glob("*.json"))[0]
        return load_coco(json_path, on_error=on_error, missing_images=missing_images)
    if kind == "voc":
        return load_voc(path, class_names, on_error, missing_images)
    return load_yolo(path, class_names, on_error, missing_images)
