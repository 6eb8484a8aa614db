"""visionkit: the classic deep-learning vision tasks as one command or one function call.

The public verbs are imported lazily, so ``import visionkit`` does not import TensorFlow.
"""

from __future__ import annotations

import importlib

from visionkit import _compat

__version__ = "0.1.0"

#: public name -> "module:attribute": every verb, config class, result type and error; imported on first use.
_VERBS = {
    # images, models, weights and the registry
    "load_image": "visionkit.core.io:load_image",
    "save_image": "visionkit.core.io:save_image",
    "contact_sheet": "visionkit.core.viz:contact_sheet",
    "mute_tensorflow": "visionkit.core.config:mute_tensorflow_startup",
    "load_model": "visionkit.core.model:load_model",
    "LoadedModel": "visionkit.core.model:LoadedModel",
    "get_spec": "visionkit.core.registry:get_spec",
    "list_models": "visionkit.core.registry:list_specs",
    "ModelSpec": "visionkit.core.registry:ModelSpec",
    "model_catalog": "visionkit.core.catalog:catalog",
    "model_info": "visionkit.core.catalog:model_info",
    "fetch_model": "visionkit.core.catalog:fetch_model",
    "import_weights": "visionkit.core.catalog:import_weights",
    "import_darknet": "visionkit.convert.darknet:import_darknet",
    "TrainConfig": "visionkit.core.training:TrainConfig",
    "Result": "visionkit.core.results:Result",
    "Run": "visionkit.core.results:Run",
    "ModelEntry": "visionkit.core.catalog:ModelEntry",
    # errors
    "VisionkitError": "visionkit.core.errors:VisionkitError",
    "UsageError": "visionkit.core.errors:UsageError",
    "InputError": "visionkit.core.errors:InputError",
    "ImageError": "visionkit.core.errors:ImageError",
    "DatasetError": "visionkit.core.errors:DatasetError",
    "ModelError": "visionkit.core.errors:ModelError",
    "WeightsError": "visionkit.core.errors:WeightsError",
    "OutputError": "visionkit.core.errors:OutputError",
    # classification
    "classify": "visionkit.classification.predict:classify",
    "Classification": "visionkit.classification.results:Classification",
    "Prediction": "visionkit.classification.results:Prediction",
    # training classifiers: finetune, evaluate, export
    "finetune": "visionkit.train.finetune:finetune",
    "evaluate": "visionkit.train.evaluate:evaluate",
    "export": "visionkit.train.export:export",
    "FinetuneOptions": "visionkit.train.config:FinetuneOptions",
    "AugmentConfig": "visionkit.train.augment:AugmentConfig",
    "TrainingRun": "visionkit.train.results:TrainingRun",
    "EvaluationReport": "visionkit.train.results:EvaluationReport",
    "ClassMetrics": "visionkit.train.results:ClassMetrics",
    "Misclassified": "visionkit.train.results:Misclassified",
    "ExportResult": "visionkit.train.results:ExportResult",
    # detection
    "detect": "visionkit.detection.predict:detect",
    "detect_video": "visionkit.detection.video:detect_video",
    "load_detector": "visionkit.detection.detector:load_detector",
    "write_detections": "visionkit.detection.output:write_results",
    "train_detector": "visionkit.detection.train:train",
    "evaluate_detector": "visionkit.detection.val:evaluate",
    "detection_anchors": "visionkit.detection.train:anchors",
    "DetectTrainOptions": "visionkit.detection.config:DetectTrainOptions",
    "Detections": "visionkit.detection.results:Detections",
    "Box": "visionkit.detection.results:Box",
    "DetectionEvaluation": "visionkit.detection.results:DetectionEvaluation",
    "DetectionTrainingRun": "visionkit.detection.results:DetectionTrainingRun",
    "AnchorBoxes": "visionkit.detection.results:AnchorBoxes",
    # segmentation
    "segment": "visionkit.segmentation.predict:segment",
    "load_segmenter": "visionkit.segmentation.predict:load_segmenter",
    "train_segmenter": "visionkit.segmentation.train:train",
    "evaluate_segmenter": "visionkit.segmentation.val:evaluate",
    "SegmentConfig": "visionkit.segmentation.config:SegmentConfig",
    "SegAugment": "visionkit.segmentation.augment:SegAugment",
    "Masks": "visionkit.segmentation.results:Masks",
    "ClassArea": "visionkit.segmentation.results:ClassArea",
    "SegmentationReport": "visionkit.segmentation.results:SegmentationReport",
    "SegmentationRun": "visionkit.segmentation.results:SegmentationRun",
    # faces
    "verify": "visionkit.faces.predict:verify",
    "embed": "visionkit.faces.predict:embed",
    "detect_faces": "visionkit.faces.predict:detect",
    "enroll_face": "visionkit.faces.predict:enroll",
    "identify_faces": "visionkit.faces.predict:identify",
    "load_encoder": "visionkit.faces.encoder:load_encoder",
    "face_distance": "visionkit.faces.compare:face_distance",
    "compare_faces": "visionkit.faces.compare:compare_faces",
    "reencode_faces": "visionkit.faces.reencode:reencode",
    "Reencoded": "visionkit.faces.results:Reencoded",
    "FaceDatabase": "visionkit.faces.db:FaceDatabase",
    "train_faces": "visionkit.faces.train:train_faces",
    "calibrate_faces": "visionkit.faces.calibrate:calibrate",
    "FaceTrainConfig": "visionkit.faces.config:FaceTrainConfig",
    "DetectedFace": "visionkit.faces.results:DetectedFace",
    "FaceDetections": "visionkit.faces.results:FaceDetections",
    "FaceEncodings": "visionkit.faces.results:FaceEncodings",
    "FaceMatch": "visionkit.faces.results:FaceMatch",
    "FaceIdentity": "visionkit.faces.results:FaceIdentity",
    "EnrolledIdentity": "visionkit.faces.results:EnrolledIdentity",
    "FaceCalibration": "visionkit.faces.results:FaceCalibration",
    "PairEvaluation": "visionkit.faces.results:PairEvaluation",
    "FaceTrainingRun": "visionkit.faces.results:FaceTrainingRun",
    # style transfer
    "stylize": "visionkit.style.transfer:stylize",
    "Stylized": "visionkit.style.results:Stylized",
    # explaining classifiers: Grad-CAM, the patches that most activate units
    "explain": "visionkit.explanation.predict:explain",
    "visualize_units": "visionkit.explanation.patches:visualize_units",
    "explain_layers": "visionkit.explanation.layers:layer_names",
    "Explanation": "visionkit.explanation.results:Explanation",
    "UnitPatches": "visionkit.explanation.results:UnitPatches",
    "Patch": "visionkit.explanation.results:Patch",
    # the architecture zoo
    "summarize_model": "visionkit.zoo.summary:summarize",
    "conv_cost": "visionkit.zoo.cost:conv_cost",
    "bottleneck_cost": "visionkit.zoo.cost:bottleneck_cost",
    "ModelSummary": "visionkit.zoo.results:ModelSummary",
    "LayerCost": "visionkit.zoo.results:LayerCost",
    "ConvCost": "visionkit.zoo.results:ConvCost",
    "BottleneckComparison": "visionkit.zoo.results:BottleneckComparison",
}

_compat.install()  # old import paths (visionkit.ops.nms, visionkit.weights, …) keep working for one release


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
