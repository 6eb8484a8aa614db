"""Darknet detectors (``.cfg`` + ``.weights``: YOLOv2, YOLOv3, YOLOv4, their tiny versions) to Keras, and back out.

- :func:`convert_darknet` builds the Keras model a cfg describes and loads the weights as darknet reads them
  (the section semantics, each from the darknet C sources, are in :mod:`visionkit.convert.darknet_sections`;
  reading the two files is :mod:`visionkit.convert.darknet_cfg`);
- :func:`import_darknet` saves a converted detector (``.keras`` + ``.json``) for ``visionkit detect -m NAME``;
- :func:`registry_detector` downloads a registry entry's cfg and weights (both hash-checked) and converts once;
- :func:`darknet_detector` is the registry builder for a detector bundled as a cfg plus a ``.weights.h5`` of
  float16 values (:func:`save_half_precision_weights`), e.g. ``yolov3_tiny_coco``.

The custom layers darknet needs (``[reorg]``, darknet's max-pool padding, ``[route]`` channel groups) are in
:mod:`visionkit.convert.darknet_layers`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import keras
import numpy as np

from visionkit.core.errors import ModelError, WeightsError

logger = logging.getLogger("visionkit")
#: pjreddie's yolov3-tiny.weights: trained with ``mask = 1,2,3`` on the 26 x 26 head, while the cfg now says 0,1,2
YOLOV3_TINY_WEIGHTS_SHA256 = "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"
YOLOV3_TINY_LATER_ANCHORS = [[10, 14], [23, 27], [37, 58]]


def convert_darknet(cfg_path: str | os.PathLike, weights_path: str | os.PathLike):
    """Build the Keras model a darknet cfg describes and load its ``.weights`` -> :class:`DarknetModel`.

    Like darknet (``load_weights_upto``), only the values the cfg needs are read; the bytes after them are counted
    in ``trailing_bytes`` and otherwise ignored.
    """
    from visionkit.convert.darknet_cfg import read_cfg, read_weights

    converted = _build(cfg_path, read_cfg(cfg_path), read_weights(weights_path))
    if converted.trailing_bytes:
        logger.info("%s: %d bytes after the last weight the cfg uses (darknet ignores them too)",
                    weights_path, converted.trailing_bytes)
    return converted


def darknet_architecture(cfg_path: str | os.PathLike, input_size: tuple[int, int] | None = None):
    """The model a cfg describes, without weights; its ``values`` is how many float32 the weights must hold.

    ``input_size`` (height, width) replaces the ``[net]`` size (as darknet's ``-width``/``-height`` or
    ``random=1`` resizing does); the weights do not depend on it. The heads' anchors stay in input pixels, as the
    cfg gives them.
    """
    from visionkit.convert.darknet_cfg import WeightsReader, read_cfg

    sections = read_cfg(cfg_path)
    if input_size is not None:
        sections[0].options.update(height=str(int(input_size[0])), width=str(int(input_size[1])))
    return _build(cfg_path, sections, WeightsReader(None))


def _build(cfg_path: str | os.PathLike, sections: list, reader):
    """:func:`~visionkit.convert.darknet_sections.build_model`, its cfg errors prefixed with the cfg's path (as
    :func:`~visionkit.convert.darknet_cfg.read_cfg` does for the parsing errors). Weights errors name the weights."""
    from visionkit.convert.darknet_sections import build_model

    try:
        return build_model(sections, reader, Path(cfg_path).stem)
    except ModelError as error:
        raise ModelError(f"{cfg_path}: {error}") from None


def imported_path(name: str) -> Path:
    """Where ``visionkit models import-darknet`` keeps the detector called ``name``."""
    from visionkit.core.config import cache_dir

    return cache_dir() / "detectors" / f"{name}.keras"


def read_names(path: str | os.PathLike) -> list[str]:
    """Class names one a line (darknet's ``coco.names``, ``voc.names``); blank lines are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: cannot read the class names ({error.__class__.__name__})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def check_class_names(names: list[str] | str | os.PathLike | None, num_classes: int) -> list[str]:
    """The class names for a detector of ``num_classes``: a list, a names file (:func:`read_names`, named in the
    error), or None (``0 … C-1``); a ModelError when they do not fit."""
    source = f"{names}: " if isinstance(names, (str, os.PathLike)) else ""
    classes = read_names(names) if source else list(names) if names else [str(i) for i in range(num_classes)]
    if len(classes) != num_classes:
        raise ModelError(f"{source}{len(classes)} class names given for a detector of {num_classes} classes")
    return classes


def import_darknet(cfg_path: str | os.PathLike, weights_path: str | os.PathLike, name: str,
                   names: list[str] | str | os.PathLike | None = None, output: str | os.PathLike | None = None) -> Path:
    """Convert a darknet detector and save it (``.keras`` + ``.json`` sidecar) for ``visionkit detect -m NAME``.

    ``names``: the class names, or a file of them one a line (e.g. ``coco.names``); default ``0 … C-1``.
    ``output``: another ``.keras`` path.
    The sidecar's ``options``/``extra`` carry the decoding metadata (:meth:`DarknetModel.detector_options`), and
    ``extra`` the cfg's absolute path and sha256, so that ``detect train --from NAME`` can rebuild it from any
    folder and notices a cfg edited since.
    """
    from visionkit.core.integrity import file_hash
    from visionkit.core.registry import ModelSpec
    from visionkit.core.model import save_model

    if not name or any(c in name for c in "/\\ ") or name.startswith("."):
        raise ModelError(f"name {name!r} cannot be a file name; use letters, digits, '-' and '_'")
    converted = convert_darknet(cfg_path, weights_path)
    classes = check_class_names(names, converted.num_classes)
    height, width = converted.model.input_shape[1:3]
    options = converted.detector_options()
    spec = ModelSpec(name=name, task="detect", builder="visionkit.convert.darknet:convert_darknet",
                     description=f"darknet {Path(cfg_path).name} + {Path(weights_path).name}", input_size=(height, width),
                     options=options)
    target = Path(output) if output else imported_path(name)
    cfg = Path(cfg_path).resolve()
    extra = {**options, "darknet_header": list(converted.header), "trailing_bytes": converted.trailing_bytes,
             "cfg": str(cfg), "cfg_sha256": file_hash(cfg), "weights": str(Path(weights_path).resolve())}
    save_model(converted.model, target, spec, classes, extra)
    if (any(head["anchors_px"] == YOLOV3_TINY_LATER_ANCHORS for head in converted.heads)
            and file_hash(Path(weights_path)) == YOLOV3_TINY_WEIGHTS_SHA256):
        logger.warning("%s: the official yolov3-tiny.weights were trained with 'mask = 1,2,3' on the 26x26 head, not "
                       "the cfg's 0,1,2: its boxes come out about half their size (coco128 mAP@0.5 0.29 instead of "
                       "0.41); change that line, or use the bundled yolov3_tiny_coco", cfg_path)
    return target


def registry_detector(spec) -> Path:
    """A darknet registry entry (``options.cfg_url`` + ``weights.url``) downloaded once and converted into the cache.

    The weights go through :func:`visionkit.core.weights.fetch` (hash checked, or recorded on first download); the cfg
    (pinned to a commit) through :func:`visionkit.core.weights.download`, checked against ``options.cfg_sha256``. The
    converted detector is used again only while it is the file whose sha256 was recorded when it was written.
    ``visionkit models fetch NAME`` downloads the weights ahead of time.
    """
    from visionkit.core.integrity import hash_matches, stamp, stamp_matches
    from visionkit.core.model import sidecar_path
    from visionkit.core.weights import download, fetch, weights_dir

    target = imported_path(spec.name)
    if stamp_matches(target) and stamp_matches(sidecar_path(target)):
        return target
    weights = fetch(spec)
    url, expected = spec.options.get("cfg_url", ""), spec.options.get("cfg_sha256", "")
    cfg = weights_dir() / f"{spec.name}.cfg"
    if cfg.is_file() and expected and not hash_matches(cfg, expected):
        cfg.unlink()  # a cfg that is not the pinned one: fetch it again
    if not cfg.is_file():
        download(url, cfg, expected, spec, recorded=False)
    converted = import_darknet(cfg, weights, spec.name, spec.class_names() or None)
    stamp(converted)
    stamp(sidecar_path(converted))
    return converted


def cfg_path(cfg: str | os.PathLike) -> Path:
    """A cfg named in a registry entry (relative to ``pretrained/``) or a sidecar (absolute)."""
    from visionkit.core.config import pretrained_dir

    path = Path(cfg)
    return path if path.is_absolute() else pretrained_dir() / path


def darknet_detector(cfg: str, cfg_sha256: str = "", heads: list | None = None, anchors: list | None = None,
                     num_classes: int | None = None, class_activation: str | None = None) -> keras.Model:
    """Registry builder: the architecture of ``cfg`` (relative to ``pretrained/``), weights to be loaded after.

    ``visionkit.core.model.build`` then loads the entry's bundled ``.weights.h5`` (float16 values, cast to float32 by
    Keras). The other keywords are the entry's decoding metadata; they must agree with what the cfg says, so a
    registry entry cannot drift from its cfg.
    """
    path = cfg_path(cfg)
    if not path.is_file():
        raise ModelError(f"darknet cfg {path} is missing; reinstall visionkit")
    if cfg_sha256 and hashlib.sha256(path.read_bytes()).hexdigest() != cfg_sha256.lower():
        raise WeightsError(f"{path}: sha256 does not match the registry's {cfg_sha256[:12]}…; reinstall visionkit")
    built = darknet_architecture(path)
    stated = {"heads": heads, "anchors": anchors, "num_classes": num_classes, "class_activation": class_activation}
    derived = built.detector_options()
    for key, value in stated.items():
        if value is not None and not _same(value, derived.get(key)):
            raise ModelError(f"registry options {key}={value!r} disagree with {path.name} ({derived.get(key)!r})")
    return built.model


def _same(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return bool(np.isclose(a, b, rtol=1e-6, atol=1e-9))
    return a == b


def save_half_precision_weights(model: keras.Model, path: str | os.PathLike) -> Path:
    """``model``'s weights as a Keras ``.weights.h5`` whose float32 arrays are stored as float16.

    Half the size; ``model.load_weights`` casts them back to float32 (the model still computes in float32). The
    file holds only numeric HDF5 datasets (no pickle) and is written without HDF5 timestamps, so the same model
    gives the same bytes; a value outside float16's range is an error rather than an ``inf``.
    """
    import tempfile

    import h5py

    from visionkit.core.writers import atomic_path

    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise ModelError(f"{path}: Keras weights files must end in .weights.h5")
    with tempfile.TemporaryDirectory() as folder:
        full = Path(folder) / "float32.weights.h5"
        model.save_weights(full)
        with h5py.File(full, "r") as source, atomic_path(path) as tmp:
            untimed = h5py.h5p.create(h5py.h5p.FILE_CREATE)
            untimed.set_obj_track_times(False)  # HDF5 stamps every group with its creation time otherwise
            with h5py.File(h5py.h5f.create(os.fsencode(tmp), h5py.h5f.ACC_TRUNC, fcpl=untimed)) as target:
                _copy_as_half(source, target)
    return path


def _copy_as_half(source, target) -> None:
    import h5py

    target.attrs.update(dict(source.attrs))
    for key in source:
        item = source[key]
        if isinstance(item, h5py.Group):
            untimed = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
            untimed.set_obj_track_times(False)
            _copy_as_half(item, h5py.Group(h5py.h5g.create(target.id, key.encode(), gcpl=untimed)))
            continue
        data = item[()]
        if data.dtype == np.float32:
            if np.abs(data).max(initial=0) >= np.finfo(np.float16).max:
                raise WeightsError(f"{item.name}: values up to {np.abs(data).max():.4g} do not fit in float16")
            data = data.astype(np.float16)
        target.create_dataset(key, data=data, track_times=False)
        target[key].attrs.update(dict(item.attrs))
