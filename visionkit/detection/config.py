"""Detection defaults and the training options, defined once: the API's signatures and the CLI's ``--help`` read
them from here (plain Python, so that ``visionkit detect --help`` imports no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass

from visionkit.core.errors import UsageError

#: The offline default: the official YOLOv3-tiny, COCO's 80 classes (pretrained/cards/yolov3_tiny_coco.md).
DEFAULT_MODEL = "yolov3_tiny_coco"
DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.45
DEFAULT_MAX_DET = 300
DEFAULT_BATCH_SIZE = 8
DEFAULT_ANCHORS = 5
#: Evaluation keeps low-scoring boxes so the precision-recall curve reaches high recall.
EVAL_CONF = 0.001
#: Label formats a data set can be read from.
DATA_FORMATS = ("auto", "yolo", "voc", "coco")
#: Output formats of predictions: the shared writers, COCO JSON, or a folder of YOLO txt files.
OUTPUT_FORMATS = ("table", "json", "jsonl", "csv", "coco", "yolo")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")

DEFAULT_BASE = "efficientnet_lite0"
DEFAULT_INPUT_SIZE = 320
DEFAULT_FROZEN_EPOCHS = 10
DEFAULT_EPOCHS = 40  # in all, frozen phase included
DEFAULT_TRAIN_BATCH_SIZE = 16
DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_FINE_TUNE_LR = 2e-4
DEFAULT_VAL_FRACTION = 0.2
DEFAULT_OUTPUT = "runs/detect"
DEFAULT_HEAD_FILTERS = 128  # = visionkit.detection.model.HEAD_FILTERS (a test checks they agree)
DEFAULT_IGNORE_IOU = 0.6  # YOLOv2's ignore threshold (visionkit's own yolo_v2 detectors)
DEFAULT_IGNORE_IOU_V3 = 0.5  # YOLOv3's (Redmon & Farhadi 2018, §2.1), for fine-tuning a darknet detector (--from)
#: --freeze for fine-tuning from a darknet detector: darknet layers 0 … N-1, or one of these words.
FREEZE_WORDS = ("none", "backbone", "all")
DEFAULT_FREEZE = "none"
#: Old spellings of the training options (saved in config.json of older runs, or passed as keywords).
RENAMED = {"finetune_lr": "fine_tune_lr", "format": "data_format"}


@dataclass(frozen=True)
class DetectTrainOptions:
    """Everything that defines a detector training run (saved as ``config.json``; ``--resume`` reads it back)."""

    data: str
    val: str | None = None  # a separate labelled set; else a seeded split of ``data``
    val_fraction: float = DEFAULT_VAL_FRACTION
    data_format: str = "auto"
    base: str = DEFAULT_BASE
    input_size: int | None = None  # None: DEFAULT_INPUT_SIZE, or the --from detector's own size
    anchors: int | list = DEFAULT_ANCHORS  # k for k-means, or explicit [[w, h], ...] fractions of the input
    frozen_epochs: int = DEFAULT_FROZEN_EPOCHS
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_TRAIN_BATCH_SIZE
    learning_rate: float = DEFAULT_LEARNING_RATE
    fine_tune_lr: float = DEFAULT_FINE_TUNE_LR
    head_filters: int = DEFAULT_HEAD_FILTERS
    ignore_iou: float | None = None  # None: DEFAULT_IGNORE_IOU, or DEFAULT_IGNORE_IOU_V3 with --from
    augment: bool = True
    seed: int = 0
    on_error: str = "raise"
    classes: list | None = None  # train on these class names only (their boxes; the rest is background)
    from_model: str | None = None  # fine-tune this darknet YOLOv3/v4 detector instead of building a yolo_v2
    freeze: int | str = DEFAULT_FREEZE  # with from_model: layers kept frozen in phase two (see detection.transfer)
    keep_classes: bool = False  # with from_model: keep its classes (the data's are matched by name), no new heads
    refit_anchors: bool = False  # with from_model: k-means anchors for the data instead of the model's own

    @property
    def size(self) -> int:
        return self.input_size or DEFAULT_INPUT_SIZE

    @property
    def ignore(self) -> float:
        if self.ignore_iou is not None:
            return self.ignore_iou
        return DEFAULT_IGNORE_IOU_V3 if self.from_model else DEFAULT_IGNORE_IOU

    def check(self) -> None:
        from visionkit.detection.model import check_input_size

        check_input_size((self.size, self.size))
        if self.epochs < 1 or not 0 <= self.frozen_epochs <= self.epochs:
            raise UsageError(f"the frozen-backbone epochs are part of all epochs: received {self.frozen_epochs} frozen "
                             f"of {self.epochs} in all; lower --frozen-epochs or raise --epochs")
        if self.batch_size < 1 or self.learning_rate <= 0 or self.fine_tune_lr <= 0:
            raise UsageError("batch size and learning rates must be positive")
        if not (str(self.freeze).isdigit() or str(self.freeze).lower() in FREEZE_WORDS):
            raise UsageError(f"freeze takes a number of darknet layers or one of {', '.join(FREEZE_WORDS)}; "
                             f"received {self.freeze!r}")
        if not self.from_model and (self.keep_classes or self.refit_anchors or str(self.freeze).lower() != "none"):
            raise UsageError("--freeze, --keep-classes and --refit-anchors are for fine-tuning a darknet detector: "
                             "give --from (e.g. --from yolov3_tiny_coco)")


def check_thresholds(conf: float, iou: float, max_det: int) -> None:
    if not 0.0 <= conf <= 1.0:
        raise UsageError(f"conf must be in [0, 1], received {conf}")
    if not 0.0 <= iou <= 1.0:
        raise UsageError(f"iou must be in [0, 1], received {iou}")
    if max_det < 1:
        raise UsageError(f"max_det must be at least 1, received {max_det}")
