"""``visionkit verify A B`` and ``visionkit faces enroll|identify|list|remove|train|calibrate|detect``."""

from __future__ import annotations

import json

import click

from visionkit.cli.options import output_options, progress_callback, recursive_option, report_failures, resolve_format
from visionkit.faces import train as training_defaults
from visionkit.faces import predict as defaults

_TRAIN = training_defaults.FaceTrainConfig()


def _model_option(default=defaults.DEFAULT_MODEL, help_extra=""):
    return click.option("-m", "--model", default=default, show_default=default is not None,
                        help="Face encoder: registry name (see `visionkit models list --task face-encoder`) or a "
                             ".keras file." + help_extra)


def _detection_options(function):
    function = click.option("--min-confidence", type=click.FloatRange(0, 1), default=defaults.DEFAULT_MIN_CONFIDENCE,
                            show_default=True, help="Drop detections less confident than this.")(function)
    return click.option("--min-face", type=click.IntRange(min=12), default=defaults.DEFAULT_MIN_FACE, show_default=True,
                        help="Smallest face to look for, in pixels (width and height).")(function)


def _threshold_option(function):
    return click.option("-t", "--threshold", type=float, default=None,
                        help="Squared-distance threshold τ in [0, 4]: same person iff d ≤ τ "
                             "[default: the model's calibrated value].")(function)


def _db_option(function):
    return click.option("--db", type=click.Path(dir_okay=False), default=None, envvar="VISIONKIT_FACE_DB",
                        show_envvar=True, help="Face database file [default: faces.db in the cache folder].")(function)


def _emit(results, fmt, output, columns=None):
    from visionkit.core.writers import emit

    fmt = resolve_format(fmt, output)
    emit(results, fmt, output, columns=columns if fmt == "table" else None)


@click.command()
@click.argument("image_a")
@click.argument("image_b")
@_model_option()
@_threshold_option
@click.option("--method", type=click.Choice(defaults.METHODS), default="distance", show_default=True,
              help="distance: d ≤ τ; logistic: the verifier fitted by `faces calibrate --method logistic`.")
@click.option("--strict", is_flag=True, help="Refuse an image with several faces instead of using the largest.")
@_detection_options
@output_options
@click.pass_context
def verify(ctx, image_a, image_b, model, threshold, method, strict, min_face, min_confidence, fmt, output):
    """Are the faces in IMAGE_A and IMAGE_B the same person?

    Prints the squared distance of the two encodings, the decision and the threshold used. When an image holds
    several faces the largest is used and a note says so (--strict refuses instead).
    """
    match = defaults.verify(image_a, image_b, model=model, threshold=threshold, method=method,
                            on_multiple="error" if strict else "largest", min_face=min_face, min_confidence=min_confidence)
    quiet = ctx.find_root().obj.get("quiet")
    for name, count, face in ((match.source_a, match.faces_in_a, match.face_a), (match.source_b, match.faces_in_b, match.face_b)):
        if count > 1 and not quiet:
            box = ", ".join(f"{v:.0f}" for v in face.box)
            click.echo(f"note: {name}: {count} faces found; used the largest, box ({box})", err=True)
    _emit([match], fmt, output)
    if not quiet and match.threshold is not None:
        click.echo(f"threshold {match.threshold:.4f} ({match.threshold_source})", err=True)


@click.group()
def faces():
    """Face detection, an enrolled-faces database, training and threshold calibration."""


@faces.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--largest", is_flag=True, help="Only the largest face of each image.")
@click.option("--crops", type=click.Path(file_okay=False), default=None,
              help="Also write each aligned face crop into this folder (PNG).")
@click.option("--crop-size", type=click.IntRange(min=32), default=160, show_default=True)
@_detection_options
@recursive_option
@output_options
@click.pass_context
def detect(ctx, images, largest, crops, crop_size, min_face, min_confidence, recursive, fmt, output):
    """Faces and 5 landmarks in IMAGES (MTCNN); "no face found" rows for images without one."""
    results = defaults.detect(list(images), min_face=min_face, min_confidence=min_confidence, largest=largest,
                              recursive=recursive, on_progress=progress_callback(ctx, "detecting"))
    if crops:
        _write_crops(results, crops, crop_size)
    _emit(results, fmt, output)
    report_failures(ctx, results)


def _write_crops(results, folder, size) -> None:
    from pathlib import Path

    from visionkit.core.io import load_image, save_image

    for index, result in enumerate(r for r in results if r.ok and r.faces):
        image = load_image(result.source)
        for number, face in enumerate(result.faces):
            name = f"{Path(result.source).stem}_{index}_{number}.png"
            save_image(Path(folder) / name, defaults.align_face(image, face, (size, size)))


@faces.command()
@click.argument("name")
@click.argument("images", nargs=-1, required=True)
@_db_option
@_model_option(default=None, help_extra=" [default: the database's model, or "
                                          f"{defaults.DEFAULT_MODEL} for a new database]")
@click.option("--largest", is_flag=True, help="Enrol the largest face of an image with several (default: skip it).")
@_detection_options
@recursive_option
@output_options
@click.pass_context
def enroll(ctx, name, images, db, model, largest, min_face, min_confidence, recursive, fmt, output):
    """Add the face in each of IMAGES to identity NAME (one transaction)."""
    result = defaults.enroll(name, list(images), db=db, model=model, on_multiple="largest" if largest else "error",
                             min_face=min_face, min_confidence=min_confidence, recursive=recursive,
                             on_progress=progress_callback(ctx, "enrolling"))
    for reason in result.skipped:
        click.echo(f"skipped: {reason}", err=True)
    _emit([result], fmt, output)


@faces.command()
@click.argument("images", nargs=-1, required=True)
@_db_option
@_model_option(default=None, help_extra=" [default: the database's model]")
@_threshold_option
@_detection_options
@recursive_option
@output_options
@click.pass_context
def identify(ctx, images, db, model, threshold, min_face, min_confidence, recursive, fmt, output):
    """Every face in IMAGES → the nearest enrolled identity within the threshold, else `unknown`."""
    results = defaults.identify(list(images), db=db, model=model, threshold=threshold, min_face=min_face,
                                min_confidence=min_confidence, recursive=recursive,
                                on_progress=progress_callback(ctx, "identifying"))
    _emit([r for r in results if r.ok], fmt, output)
    report_failures(ctx, results)


@faces.command("list")
@_db_option
@output_options
def list_(db, fmt, output):
    """Enrolled identities and how many encodings each holds."""
    from visionkit.faces.db import FaceDatabase

    with FaceDatabase(db, create=False) as database:
        _emit(database.identities(), fmt, output, columns=["name", "encodings"])


@faces.command()
@click.argument("name")
@_db_option
def remove(name, db):
    """Delete identity NAME and all its encodings."""
    from visionkit.faces.db import FaceDatabase

    with FaceDatabase(db, create=False) as database:
        count = database.remove(name)
    click.echo(f"removed {name!r} ({count} encodings)")


@faces.command()
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("--run-dir", default="runs/faces", show_default=True, help="Run folder (a new -2, -3… if it exists).")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its last checkpoint, with its saved settings.")
@click.option("--backbone", default=_TRAIN.backbone, show_default=True, help="Registry backbone (ImageNet weights).")
@click.option("--input-size", type=click.IntRange(min=32), default=_TRAIN.input_size, show_default=True)
@click.option("--embedding-dim", type=click.IntRange(min=2), default=_TRAIN.embedding_dim, show_default=True)
@click.option("--grayscale", type=click.Choice(["auto", "yes", "no"]), default=_TRAIN.grayscale, show_default=True,
              help="Convert inputs to grey inside the model (auto: when every training face is grey).")
@click.option("--feature-stride", type=click.Choice(["8", "16", "32"]), default=str(_TRAIN.feature_stride), show_default=True,
              help="Cut the backbone at this output stride.")
@click.option("--head", type=click.Choice(["spatial", "pool"]), default=_TRAIN.head, show_default=True,
              help="spatial: 1×1 conv + flatten (aligned faces); pool: global average pooling.")
@click.option("--head-channels", type=click.IntRange(min=1), default=_TRAIN.head_channels, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=_TRAIN.dropout, show_default=True)
@click.option("--fine-tune-fraction", type=click.FloatRange(0, 1), default=_TRAIN.fine_tune_fraction, show_default=True,
              help="Share of the backbone's last layers trained in the second phase.")
@click.option("-P", "--identities-per-batch", type=click.IntRange(min=2), default=_TRAIN.identities_per_batch, show_default=True)
@click.option("-K", "--images-per-identity", type=click.IntRange(min=2), default=_TRAIN.images_per_identity, show_default=True)
@click.option("--margin", type=click.FloatRange(min=0, min_open=True), default=_TRAIN.margin, show_default=True,
              help="Triplet margin α.")
@click.option("--head-epochs", type=click.IntRange(min=0), default=_TRAIN.head_epochs, show_default=True,
              help="Epochs training the head alone (backbone frozen).")
@click.option("--epochs", type=click.IntRange(min=0), default=_TRAIN.epochs, show_default=True,
              help="Epochs afterwards, training the backbone's last layers (--fine-tune-fraction) too.")
@click.option("--head-lr", type=float, default=_TRAIN.head_learning_rate, show_default=True)
@click.option("--lr", type=float, default=_TRAIN.learning_rate, show_default=True)
@click.option("--schedule", type=click.Choice(["cosine", "constant"]), default=_TRAIN.schedule, show_default=True,
              help="Learning-rate schedule of the second phase (cosine: down to 0 at its end).")
@click.option("--holdout", type=click.IntRange(min=0), default=_TRAIN.holdout, show_default=True,
              help="Identities to hold out (drawn with --seed), evaluated at the end.")
@click.option("--holdout-names", default=None, help="Comma-separated identities to hold out instead.")
@click.option("--seed", type=int, default=_TRAIN.seed, show_default=True)
@click.option("--no-augment", is_flag=True, help="No flips, small rotations/zooms/shifts, contrast and brightness.")
@click.pass_context
def train(ctx, data, run_dir, resume, backbone, input_size, embedding_dim, grayscale, feature_stride, head, head_channels,
          dropout, fine_tune_fraction, identities_per_batch, images_per_identity, margin, head_epochs, epochs, head_lr, lr,
          schedule, holdout, holdout_names, seed, no_augment):
    """Train a face encoder on DATA (a folder per identity) with the triplet loss (semi-hard negatives mined
    inside batches of P identities × K images). Prints the held-out evaluation; the model is RUN_DIR/face_encoder.keras."""
    config = training_defaults.FaceTrainConfig(
        backbone=backbone, input_size=input_size, embedding_dim=embedding_dim, grayscale=grayscale,
        feature_stride=int(feature_stride), head=head, head_channels=head_channels, dropout=dropout,
        fine_tune_fraction=fine_tune_fraction,
        identities_per_batch=identities_per_batch, images_per_identity=images_per_identity, margin=margin,
        head_epochs=head_epochs, epochs=epochs, head_learning_rate=head_lr, learning_rate=lr, schedule=schedule, holdout=holdout,
        seed=seed, augment=not no_augment)
    names = [n.strip() for n in holdout_names.split(",") if n.strip()] if holdout_names else None
    quiet = ctx.find_root().obj.get("quiet")
    summary = training_defaults.train_faces(data, run_dir, config, holdout_names=names, resume=resume, quiet=quiet,
                                            on_progress=progress_callback(ctx, "aligning faces"))
    click.echo(json.dumps({k: summary[k] for k in ("model", "evaluated_on", "evaluation", "detection")}, indent=2))


@faces.command()
@click.argument("pairs", type=click.Path(exists=True))
@_model_option()
@click.option("--target-far", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=training_defaults.DEFAULT_TARGET_FAR, show_default=True, help="False-accept rate to find τ for.")
@click.option("--method", type=click.Choice(defaults.METHODS), default="distance", show_default=True,
              help="logistic: also fit the logistic-regression verifier on |f(x1) − f(x2)| and save it beside the model.")
@click.option("--roc", "roc_png", type=click.Path(dir_okay=False), default="roc.png", show_default=True,
              help="Where to write the ROC curve PNG.")
@click.option("--save-threshold", type=click.Choice(["eer", "far"]), default=None,
              help="Write this threshold into the .keras model's sidecar, so verify uses it.")
@click.option("--identities", default=None, help="Comma-separated sub-folders of a PAIRS folder to use (e.g. held-out people).")
@output_options
@click.pass_context
def calibrate(ctx, pairs, model, target_far, method, roc_png, save_threshold, identities, fmt, output):
    """ROC, AUC, EER and thresholds of a face encoder on PAIRS (a CSV a,b,same or a folder per identity)."""
    result = training_defaults.calibrate(pairs, model=model, target_far=target_far, method=method, roc_png=roc_png,
                                         save_threshold=save_threshold, on_progress=progress_callback(ctx, "encoding"),
                                         identities=[n.strip() for n in identities.split(",") if n.strip()] if identities else None)
    _emit([result], fmt, output)
