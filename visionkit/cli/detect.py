"""``visionkit detect``: find objects in images and videos; ``detect train``, ``detect val``, ``detect anchors``.

``visionkit detect IMAGES…`` is short for ``visionkit detect predict IMAGES…``: a first argument that is not one
of the sub-commands is taken as an input. (An image literally named ``train`` needs ``detect predict train``.)
"""

from __future__ import annotations

import click

from visionkit.cli.options import (DefaultCommandGroup, data_format_option, echo_json, is_quiet, progress_callback,
                                   recursive_option, renamed_option, report_failures)
from visionkit.detection import config

VAL_FORMATS = ("table", "json", "csv")


@click.group(cls=DefaultCommandGroup)
def detect():
    """Object detection (YOLO): `visionkit detect IMAGES|VIDEO` or a sub-command below."""


def _classes(value: str | None):
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def _on_error(skip_bad_labels: bool) -> str:
    return "skip" if skip_bad_labels else "raise"


@detect.command()
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--model", default=config.DEFAULT_MODEL, show_default=True,
              help="Registry detector (`visionkit models list --task detect`) or a .keras file from `detect train`.")
@click.option("--conf", type=click.FloatRange(0, 1), default=config.DEFAULT_CONF, show_default=True,
              help="Minimum score (objectness x class probability).")
@click.option("--iou", type=click.FloatRange(0, 1), default=config.DEFAULT_IOU, show_default=True,
              help="Non-max suppression IoU threshold.")
@click.option("--classes", default=None, help="Keep only these classes: names or indices, comma-separated.")
@click.option("--max-det", type=click.IntRange(min=1), default=config.DEFAULT_MAX_DET, show_default=True)
@click.option("--agnostic", is_flag=True, help="Suppress overlapping boxes across classes too.")
@click.option("--save", type=click.Path(file_okay=False), default=None,
              help="Write annotated copies of the images (and videos) to this folder.")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=config.DEFAULT_BATCH_SIZE, show_default=True)
@recursive_option
@click.option("--format", "fmt", type=click.Choice(config.OUTPUT_FORMATS), default=None,
              help="table, json, jsonl, csv, coco (one COCO JSON) or yolo (one .txt per image in --output DIR) "
                   "[default: table on a terminal, else from --output's extension, else jsonl].")
@click.option("-o", "--output", type=click.Path(), default=None,
              help="Write results here (atomically) instead of stdout; a folder for --format yolo.")
@click.pass_context
def predict(ctx, images, model, conf, iou, classes, max_det, agnostic, save, batch_size, recursive, fmt, output):
    """Detect objects in IMAGES (files, folders, globs, .txt lists) or video files."""
    import visionkit
    from visionkit.cli.options import resolve_format

    detector = visionkit.load_detector(model)  # loaded once: its class names name the COCO categories
    results = visionkit.detect(list(images), detector, conf=conf, iou=iou, classes=_classes(classes), max_det=max_det,
                               agnostic=agnostic, batch_size=batch_size, recursive=recursive, save=save,
                               on_progress=progress_callback(ctx, "detecting", minimum=batch_size + 1),
                               on_video_progress=lambda video: progress_callback(ctx, video))
    visionkit.write_detections(results, fmt or resolve_format(None, output), output, detector.class_names)
    report_failures(ctx, results)


@detect.command()
@click.argument("data", type=click.Path(exists=True))
@click.option("--val", type=click.Path(exists=True), default=None,
              help="A separate labelled validation set [default: hold out --val-fraction of DATA, seeded].")
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=config.DEFAULT_VAL_FRACTION, show_default=True)
@data_format_option(config.DATA_FORMATS)
@click.option("--base", default=config.DEFAULT_BASE, show_default=True, help="Registry backbone (ImageNet weights).")
@click.option("--input-size", type=click.IntRange(min=32), default=None,
              help=f"Square network input (a multiple of 32); images are letterboxed to it "
                   f"[default: {config.DEFAULT_INPUT_SIZE}, or the --from detector's own size].")
@click.option("-k", "--anchors", type=click.IntRange(min=1), default=config.DEFAULT_ANCHORS, show_default=True,
              help="Number of anchor boxes, chosen by k-means (1 - IoU) on the training boxes (with --from the "
                   "detector's own are kept, or --refit-anchors re-fits as many).")
@click.option("--frozen-epochs", type=click.IntRange(min=0), default=config.DEFAULT_FROZEN_EPOCHS, show_default=True,
              help="Phase one: epochs with the backbone frozen (head only).")
@click.option("--epochs", type=click.IntRange(min=1), default=config.DEFAULT_EPOCHS, show_default=True,
              help="Epochs in all (phase two, fine-tuning everything, gets the rest).")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=config.DEFAULT_TRAIN_BATCH_SIZE,
              show_default=True)
@click.option("--lr", "--learning-rate", "learning_rate", type=float, default=config.DEFAULT_LEARNING_RATE,
              show_default=True, help="Adam learning rate of phase one.")
@click.option("--fine-tune-lr", type=float, default=config.DEFAULT_FINE_TUNE_LR, show_default=True,
              help="Adam learning rate of phase two (cosine decay).")
@renamed_option("--finetune-lr", "--fine-tune-lr", "fine_tune_lr", type=float)
@click.option("--head-filters", type=click.IntRange(min=8), default=config.DEFAULT_HEAD_FILTERS, show_default=True)
@click.option("--ignore-iou", type=click.FloatRange(0, 1), default=None,
              help=f"Anchors whose box overlaps a ground truth this much are not punished as background "
                   f"[default: {config.DEFAULT_IGNORE_IOU} (YOLOv2), {config.DEFAULT_IGNORE_IOU_V3} with --from "
                   f"(YOLOv3)].")
@click.option("--from", "--from-model", "from_model", default=None,
              help="Fine-tune this darknet YOLOv3/v4 detector (e.g. yolov3_tiny_coco) instead of a new YOLOv2-style "
                   "head on --base: its heads' last 1x1 convolutions are replaced for DATA's classes.")
@click.option("--freeze", default=config.DEFAULT_FREEZE, show_default=True,
              help="With --from: what stays frozen while fine-tuning (phase two): N = darknet layers 0..N-1, "
                   "'backbone' = the layers every head uses, 'all' = all but the heads' last convolutions, 'none'.")
@click.option("--keep-classes", is_flag=True,
              help="With --from: keep the detector's classes (DATA's are matched to them by name) and its heads.")
@click.option("--refit-anchors", is_flag=True,
              help="With --from: k-means anchors for DATA (as many per head) instead of the detector's own.")
@click.option("--classes", "classes", default=None, callback=lambda ctx, param, value: _classes(value),
              help="Train on these classes only (comma-separated names); boxes of the others are dropped.")
@click.option("--no-augment", "augment", flag_value=False, default=True, help="No flip / scale / translate / colour jitter.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--skip-bad-labels", is_flag=True, help="Drop bad boxes and files (with a warning) instead of stopping.")
@click.option("-o", "--output", type=click.Path(file_okay=False), default=config.DEFAULT_OUTPUT, show_default=True,
              help="Run folder (a new one gets -2, -3… if it is taken).")
@click.option("--resume", is_flag=True, help="Continue the run in --output from its last checkpoint, with its settings.")
@click.pass_context
def train(ctx, data, output, resume, skip_bad_labels, **settings):
    """Train a detector on DATA: YOLO txt (images/ + labels/), Pascal VOC (annotations/*.xml) or COCO JSON.

    Without --from: a YOLOv2-style head on an ImageNet --base. With --from yolov3_tiny_coco: that COCO detector
    re-headed for DATA's classes (or --keep-classes) and fine-tuned with the YOLOv3 loss.
    """
    import visionkit

    run = visionkit.train_detector(data, output=output, resume=resume, quiet=is_quiet(ctx),
                                   on_error=_on_error(skip_bad_labels), on_progress=progress_callback(ctx, "decoding"),
                                   **settings)
    _print_evaluation(run.evaluation, "table", is_quiet(ctx))
    click.echo(f"model: {run.model_path}")


def _print_evaluation(evaluation, fmt: str, quiet: bool = False) -> None:
    from visionkit.core.writers import format_table, render

    for note in [] if quiet else evaluation.notes[:5]:  # on stderr whatever the format: stdout stays the result
        click.echo(f"note: {note}", err=True)
    if fmt == "json":
        echo_json(evaluation.to_dict())
        return
    if fmt == "csv":
        click.echo(render([evaluation], "csv"), nl=False)
        return
    click.echo(format_table(evaluation.to_rows()))
    click.echo(f"mAP@0.5 {evaluation.map50:.4f}   mAP@0.5:0.95 {evaluation.map50_95:.4f}   ({evaluation.images} images)")
    if evaluation.pr_curve:
        click.echo(f"precision-recall curve: {evaluation.pr_curve}")


@detect.command()
@click.argument("model")
@click.argument("data", type=click.Path(exists=True))
@click.option("--iou", type=click.FloatRange(0, 1), default=config.DEFAULT_IOU, show_default=True, help="NMS IoU threshold.")
@click.option("--conf", type=click.FloatRange(0, 1), default=config.EVAL_CONF, show_default=True,
              help="Keep boxes above this score (low, so the PR curve reaches high recall).")
@click.option("--max-det", type=click.IntRange(min=1), default=config.DEFAULT_MAX_DET, show_default=True)
@click.option("--data-format", type=click.Choice(config.DATA_FORMATS), default="auto", show_default=True,
              help="How the labels are stored (auto: found from the files).")
@click.option("--skip-bad-labels", is_flag=True, help="Drop bad boxes and files (with a warning) instead of stopping.")
@click.option("--strict", is_flag=True,
              help="Stop on label files without an image too [default: leave them out, with one note].")
@click.option("--save", type=click.Path(file_okay=False), default=None,
              help="Write metrics.json and pr_curve.png to this folder.")
@click.option("--format", "fmt", type=click.Choice(VAL_FORMATS + config.DATA_FORMATS), default=None,
              help="Output: table, json or csv [default: table]. (A data format here is the old spelling of "
                   "--data-format.)")
@renamed_option("--output-format", "--format", "fmt", type=click.Choice(VAL_FORMATS))
@click.pass_context
def val(ctx, model, data, iou, conf, max_det, data_format, skip_bad_labels, strict, save, fmt):
    """AP per class at IoU 0.5, mAP@0.5 and mAP@0.5:0.95 of MODEL on the labelled DATA.

    Label files without an image are left out with one note (--strict: an error); other bad labels stop it
    (--skip-bad-labels: dropped).
    """
    import visionkit

    if fmt in config.DATA_FORMATS:  # `detect val --format voc` meant the data format before 0.2
        click.echo("note: --format is the output format now; the data format is --data-format", err=True)
        data_format, fmt = fmt, None
    evaluation = visionkit.evaluate_detector(model, data, iou=iou, conf=conf, max_det=max_det, data_format=data_format,
                                             on_error=_on_error(skip_bad_labels), strict=strict, save=save,
                                             on_progress=progress_callback(ctx, "evaluating",
                                                                           minimum=config.DEFAULT_BATCH_SIZE + 1))
    _print_evaluation(evaluation, fmt or "table", is_quiet(ctx))


@detect.command()
@click.argument("data", type=click.Path(exists=True))
@click.option("-k", type=click.IntRange(min=1), default=config.DEFAULT_ANCHORS, show_default=True, help="Number of anchors.")
@click.option("--seed", type=int, default=0, show_default=True)
@data_format_option(config.DATA_FORMATS)
@click.option("--skip-bad-labels", is_flag=True, help="Drop bad boxes and files (with a warning) instead of stopping.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def anchors(data, k, seed, data_format, skip_bad_labels, as_json):
    """Anchor boxes for DATA by k-means with the 1 - IoU distance (YOLOv2), and their mean IoU to the boxes."""
    import visionkit

    found = visionkit.detection_anchors(data, k=k, seed=seed, data_format=data_format,
                                        on_error=_on_error(skip_bad_labels))
    if as_json:
        import json

        click.echo(json.dumps(found.to_dict()))
        return
    click.echo(f"{found.boxes} boxes in {found.data}")
    for w, h in found.anchors:
        click.echo(f"  {w:.4f} x {h:.4f}   (width x height, fractions of the letterboxed input)")
    click.echo(f"mean IoU of each box to its best anchor: {found.mean_iou:.4f}")
