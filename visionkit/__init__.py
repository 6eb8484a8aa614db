"""visionkit: the classic deep-learning vision tasks as one command or one function call.

The public verbs are imported lazily, so ``import visionkit`` does not import TensorFlow.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> "module:attribute"; each task module adds its verbs here.
_VERBS = {
    "segment": "visionkit.tasks.segment:segment",
    "evaluate_segmenter": "visionkit.tasks.segment:evaluate",
    "train_segmenter": "visionkit.tasks.segment_train:train",
    "classify": "visionkit.tasks.classify:classify",
    "load_image": "visionkit.io:load_image",
    "load_model": "visionkit.weights:load_model",
    "get_spec": "visionkit.registry:get_spec",
    "list_models": "visionkit.registry:list_specs",
    "VisionkitError": "visionkit.errors:VisionkitError",
    "detect": "visionkit.tasks.detect:detect",
    "train_detector": "visionkit.tasks.detect_train:train",
    "evaluate_detector": "visionkit.tasks.detect:evaluate",
    "detect_video": "visionkit.tasks.detect_video:detect_video",
    "detection_anchors": "visionkit.tasks.detect:anchors",
    "stylize": "visionkit.tasks.stylize:stylize",
    "verify": "visionkit.tasks.faces:verify",
    "embed": "visionkit.tasks.faces:embed",
    "detect_faces": "visionkit.tasks.faces:detect",
    "enroll_face": "visionkit.tasks.faces:enroll",
    "identify_faces": "visionkit.tasks.faces:identify",
    "FaceDatabase": "visionkit.facedb:FaceDatabase",
    "train_faces": "visionkit.tasks.face_training:train_faces",
    "calibrate_faces": "visionkit.tasks.face_training:calibrate",
    "finetune": "visionkit.tasks.finetune:finetune",
    "evaluate": "visionkit.tasks.evaluate:evaluate",
    "export": "visionkit.tasks.export:export",
    "summarize_model": "visionkit.models.summary:summarize",
    "conv_cost": "visionkit.ops.cost:conv_cost",
    "bottleneck_cost": "visionkit.ops.cost:bottleneck_cost",
}


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
