"""visionkit: the classic deep-learning vision tasks as one command or one function call.

The public verbs are imported lazily, so ``import visionkit`` does not import TensorFlow.
"""

from __future__ import annotations

import importlib

from visionkit import _compat

__version__ = "0.1.0"

#: public name -> "module:attribute"; each task module adds its verbs here.
_VERBS = {
    "segment": "visionkit.segmentation.predict:segment",
    "evaluate_segmenter": "visionkit.segmentation.predict:evaluate",
    "train_segmenter": "visionkit.segmentation.train:train",
    "classify": "visionkit.classification.predict:classify",
    "load_image": "visionkit.core.io:load_image",
    "load_model": "visionkit.core.weights:load_model",
    "get_spec": "visionkit.core.registry:get_spec",
    "list_models": "visionkit.core.registry:list_specs",
    "VisionkitError": "visionkit.core.errors:VisionkitError",
    "detect": "visionkit.detection.predict:detect",
    "train_detector": "visionkit.detection.train:train",
    "evaluate_detector": "visionkit.detection.predict:evaluate",
    "detect_video": "visionkit.detection.video:detect_video",
    "detection_anchors": "visionkit.detection.predict:anchors",
    "stylize": "visionkit.style.transfer:stylize",
    "verify": "visionkit.faces.predict:verify",
    "embed": "visionkit.faces.predict:embed",
    "detect_faces": "visionkit.faces.predict:detect",
    "enroll_face": "visionkit.faces.predict:enroll",
    "identify_faces": "visionkit.faces.predict:identify",
    "FaceDatabase": "visionkit.faces.db:FaceDatabase",
    "train_faces": "visionkit.faces.train:train_faces",
    "calibrate_faces": "visionkit.faces.train:calibrate",
    "finetune": "visionkit.train.finetune:finetune",
    "evaluate": "visionkit.train.evaluate:evaluate",
    "export": "visionkit.train.export:export",
    "summarize_model": "visionkit.zoo.summary:summarize",
    "conv_cost": "visionkit.zoo.cost:conv_cost",
    "bottleneck_cost": "visionkit.zoo.cost:bottleneck_cost",
}


_compat.install()  # old import paths (visionkit.detection.nms, visionkit.core.weights, …) keep working for one release


def __getattr__(name: str):
    target = _VERBS.get(name)
    if target is None:
        raise AttributeError(f"module 'visionkit' has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_VERBS))


__all__ = ["__version__", *_VERBS]
