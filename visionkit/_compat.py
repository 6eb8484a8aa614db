"""Old import paths of the 0.1 layout, kept working for one release: one table, one finder, one warning.

``import visionkit.ops.nms`` or ``from visionkit.weights import save_model`` still work after the move to one
folder per task. A finder placed *last* on ``sys.meta_path`` answers only for the names in :data:`MOVED` and
:data:`OLD_PACKAGES`, so a real file always wins. A moved module is registered under its old name as the very
same module object (``visionkit.ops.nms is visionkit.detection.nms``); a module whose contents went to several new
modules becomes a thin module that looks names up in those, in order. Each old name warns once, with a
``DeprecationWarning`` that names the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from pathlib import Path

#: old module -> new module, or the new modules its names now live in (looked up in this order).
MOVED: dict[str, str | tuple[str, ...]] = {
    "visionkit.config": "visionkit.core.config",
    "visionkit.errors": "visionkit.core.errors",
    "visionkit.io": "visionkit.core.io",
    "visionkit.registry": "visionkit.core.registry",
    "visionkit.results": ("visionkit.core.results", "visionkit.classification.results", "visionkit.train.results",
                          "visionkit.detection.results", "visionkit.segmentation.results", "visionkit.faces.results",
                          "visionkit.style.results", "visionkit.zoo.results"),
    "visionkit.training": ("visionkit.core.training", "visionkit.core.callbacks", "visionkit.core.writers"),
    "visionkit.viz": ("visionkit.core.viz", "visionkit.detection.output", "visionkit.segmentation.predict"),
    "visionkit.weights": ("visionkit.core.weights", "visionkit.core.model"),
    "visionkit.writers": "visionkit.core.writers",
    "visionkit.facedb": "visionkit.faces.db",
    "visionkit.models.layers": "visionkit.core.layers",
    "visionkit.models.efficientnet_lite": "visionkit.zoo.efficientnet_lite",
    "visionkit.models.facenet": "visionkit.faces.model",
    "visionkit.models.inception": "visionkit.zoo.inception",
    "visionkit.models.mobilenet": "visionkit.zoo.mobilenet",
    "visionkit.models.resnet": "visionkit.zoo.resnet",
    "visionkit.models.summary": "visionkit.zoo.summary",
    "visionkit.models.unet": "visionkit.segmentation.model",
    "visionkit.models.vgg_features": "visionkit.style.features",
    "visionkit.models.yolo": "visionkit.detection.model",
    "visionkit.models.zoo": "visionkit.zoo.classic",
    "visionkit.models.zoo_common": "visionkit.zoo.common",
    "visionkit.ops.anchors": "visionkit.detection.anchors",
    "visionkit.ops.boxes": "visionkit.detection.boxes",
    "visionkit.ops.cost": ("visionkit.zoo.cost", "visionkit.zoo.config"),
    "visionkit.ops.detection_metrics": "visionkit.detection.metrics",
    "visionkit.ops.diagnosis": "visionkit.train.diagnosis",
    "visionkit.ops.face_metrics": "visionkit.faces.metrics",
    "visionkit.ops.nms": "visionkit.detection.nms",
    "visionkit.ops.seg_losses": "visionkit.segmentation.losses",
    "visionkit.ops.seg_metrics": "visionkit.segmentation.metrics",
    "visionkit.ops.style_losses": "visionkit.style.losses",
    "visionkit.ops.yolo_decode": "visionkit.detection.decode",
    "visionkit.ops.yolo_loss": "visionkit.detection.loss",
    "visionkit.data.augment": "visionkit.train.augment",
    "visionkit.data.detection": "visionkit.detection.data",
    "visionkit.data.detection_pipeline": "visionkit.detection.pipeline",
    "visionkit.data.faces": "visionkit.faces.data",
    "visionkit.data.folders": "visionkit.train.data",
    "visionkit.data.seg_augment": "visionkit.segmentation.augment",
    "visionkit.data.segmentation": "visionkit.segmentation.data",
    "visionkit.tasks.classify": ("visionkit.classification.predict", "visionkit.core.preprocess",
                                 "visionkit.classification.config"),
    "visionkit.tasks.detect": ("visionkit.detection.predict", "visionkit.detection.detector", "visionkit.detection.val",
                               "visionkit.detection.config", "visionkit.detection.train"),
    "visionkit.tasks.detect_output": "visionkit.detection.output",
    "visionkit.tasks.detect_train": ("visionkit.detection.train", "visionkit.detection.config"),
    "visionkit.tasks.detect_video": ("visionkit.detection.video", "visionkit.detection.config"),
    "visionkit.tasks.evaluate": ("visionkit.train.evaluate", "visionkit.train.config"),
    "visionkit.tasks.export": ("visionkit.train.export", "visionkit.train.config"),
    "visionkit.tasks.face_align": ("visionkit.faces.align", "visionkit.faces.config"),
    "visionkit.tasks.face_training": ("visionkit.faces.train", "visionkit.faces.calibrate", "visionkit.faces.config"),
    "visionkit.tasks.faces": ("visionkit.faces.predict", "visionkit.faces.config"),
    "visionkit.tasks.finetune": ("visionkit.train.finetune", "visionkit.train.config", "visionkit.train.run"),
    "visionkit.tasks.finetune_model": ("visionkit.train.model", "visionkit.train.config"),
    "visionkit.tasks.finetune_report": "visionkit.train.report",
    "visionkit.tasks.finetune_run": ("visionkit.train.run", "visionkit.train.config"),
    "visionkit.tasks.segment": ("visionkit.segmentation.predict", "visionkit.segmentation.val",
                                "visionkit.segmentation.config"),
    "visionkit.tasks.segment_train": ("visionkit.segmentation.train", "visionkit.segmentation.config"),
    "visionkit.tasks.stylize": ("visionkit.style.transfer", "visionkit.style.config"),
    "visionkit.tasks.stylize_optim": "visionkit.style.optim",
}

#: names that changed on the way: old module -> {old name: new name, or "module:name" elsewhere}.
RENAMED: dict[str, dict[str, str]] = {
    "visionkit.tasks.detect_train": {"DEFAULT_FINETUNE_LR": "DEFAULT_FINE_TUNE_LR",
                                     "DEFAULT_BATCH_SIZE": "DEFAULT_TRAIN_BATCH_SIZE"},
    "visionkit.tasks.evaluate": {"DEFAULT_BATCH_SIZE": "EVAL_BATCH_SIZE"},
    "visionkit.tasks.segment_train": {"DEFAULT_RUN_DIR": "DEFAULT_OUTPUT",
                                      "inference_model": "visionkit.core.model:without_optimizer"},
}

#: packages of the old layout that no longer exist as folders; their modules are in MOVED.
OLD_PACKAGES = ("visionkit.data", "visionkit.models", "visionkit.ops", "visionkit.tasks")

_ROOT = Path(__file__).resolve().parent


def _importer() -> str:
    """The ``__name__`` of the module whose code asked for the import (importlib's own frames skipped)."""
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                                 or frame.f_code.co_filename in (__file__, importlib.__file__)):
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


def _warn(old: str, new: str) -> None:
    """A DeprecationWarning attributed to the code that imported ``old`` (``warnings`` skips importlib's frames
    when it counts ``stacklevel``: 3 is this function, ``exec_module``, then the importer). Not when visionkit itself
    resolves an old path (a builder named in the sidecar of a model saved by 0.1), so that
    ``-W error::DeprecationWarning`` breaks only user code that needs changing."""
    if _importer().startswith("visionkit."):
        return
    warnings.warn(f"{old} is deprecated: import {new} instead (the old path goes in the next release)",
                  DeprecationWarning, stacklevel=3)


def _union_module(old: str, targets: tuple[str, ...]) -> types.ModuleType:
    """A module whose attributes are looked up in ``targets`` in order (each imported on first use)."""
    module = types.ModuleType(old, f"Deprecated: the names of {old} now live in {', '.join(targets)}.")

    renamed = RENAMED.get(old, {})

    def __getattr__(name: str):
        if name in renamed:
            where, _, new = renamed[name].rpartition(":")
            name = new
            if where:
                return getattr(importlib.import_module(where), new)
        for target in targets:
            found = importlib.import_module(target)
            if hasattr(found, name):
                return getattr(found, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r} (it moved to {', '.join(targets)})")

    module.__getattr__ = __getattr__
    module.__dir__ = lambda: sorted({n for t in targets for n in dir(importlib.import_module(t))})
    return module


class _MovedLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return None  # a placeholder; exec_module puts the real module in sys.modules

    def exec_module(self, module) -> None:
        old = module.__name__
        if old in OLD_PACKAGES:
            module.__path__ = [str(_ROOT / old.rsplit(".", 1)[1])]  # new files dropped there still import
            module.__doc__ = "Deprecated package of the old layout; see visionkit._compat.MOVED."
            return
        target = MOVED[old]
        targets = (target,) if isinstance(target, str) else tuple(target)
        _warn(old, " / ".join(targets))
        sys.modules[old] = importlib.import_module(targets[0]) if len(targets) == 1 else _union_module(old, targets)


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED or fullname in OLD_PACKAGES:
            return importlib.machinery.ModuleSpec(fullname, _MovedLoader(), is_package=fullname in OLD_PACKAGES)
        return None


def install() -> None:
    """Put the finder at the end of ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())


def renamed_keywords(keywords: dict, renames: dict[str, str], where: str) -> dict:
    """``keywords`` with old spellings (``renames``: old -> new) replaced by the new ones, each with a
    DeprecationWarning naming ``where`` (e.g. ``"train_detector"``); for saved settings read back on resume too."""
    result = dict(keywords)
    for old, new in renames.items():
        if old in result:
            value = result.pop(old)
            warnings.warn(f"{where}: {old}= is now {new}= (the old name goes in the next release)",
                          DeprecationWarning, stacklevel=3)
            result.setdefault(new, value)
    return result
