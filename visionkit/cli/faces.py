"""``visionkit verify A B`` and ``visionkit faces enroll|identify|list|remove|train|calibrate|detect``."""

from __future__ import annotations

import click

from visionkit.cli.options import (emit_results, echo_json, is_quiet, output_options, progress_callback,
                                   recursive_option, renamed_option, report_failures)
from visionkit.faces import config as defaults

_TRAIN = defaults.FaceTrainConfig()


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
    import visionkit

    match = visionkit.verify(image_a, image_b, model=model, threshold=threshold, method=method,
                             on_multiple="error" if strict else "largest", min_face=min_face,
                             min_confidence=min_confidence)
    quiet = is_quiet(ctx)
    for name, count, face in ((match.source_a, match.faces_in_a, match.face_a), (match.source_b, match.faces_in_b, match.face_b)):
        if count > 1 and not quiet:
            box = ", ".join(f"{v:.0f}" for v in face.box)
            click.echo(f"note: {name}: {count} faces found; used the largest, box ({box})", err=True)
    emit_results([match], fmt, output)
    if not quiet and match.threshold is not None:
        click.echo(f"threshold {match.threshold:.4f} ({match.threshold_source})", err=True)


@click.group()
def faces():
    """Face detection, an enrolled-faces database, training and threshold calibration."""


@faces.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--largest", is_flag=True, help="Only the largest face of each image.")
@click.option("--crops", type=click.Path(file_okay=False), default=None,
              help="Also write each face into this folder (PNG) as --model's encoder takes it: aligned onto its "
                   "template, at its input size, with its border fill.")
@_model_option(help_extra=" Only read with --crops.")
@click.option("--crop-size", type=click.IntRange(min=32), default=None,
              help="Side of the crops in pixels instead [default: the encoder's input size].")
@_detection_options
@recursive_option
@output_options
@click.pass_context
def detect(ctx, images, largest, crops, model, crop_size, min_face, min_confidence, recursive, fmt, output):
    """Faces and 5 landmarks in IMAGES (MTCNN); "no face found" rows for images without one."""
    import visionkit

    results = visionkit.detect_faces(list(images), min_face=min_face, min_confidence=min_confidence, largest=largest,
                                     recursive=recursive, on_progress=progress_callback(ctx, "detecting"),
                                     crops=crops, crop_size=crop_size, model=model)
    emit_results(results, fmt, output)
    report_failures(ctx, results)


@faces.command()
@click.argument("name")
@click.argument("images", nargs=-1, required=True)
@_db_option
@_model_option(help_extra=" A database made with another encoder is refused (see `faces reencode`).")
@click.option("--largest", is_flag=True, help="Enrol the largest face of an image with several (default: skip it).")
@_detection_options
@recursive_option
@output_options
@click.pass_context
def enroll(ctx, name, images, db, model, largest, min_face, min_confidence, recursive, fmt, output):
    """Add the face in each of IMAGES to identity NAME (one transaction)."""
    import visionkit

    result = visionkit.enroll_face(name, list(images), db=db, model=model, on_multiple="largest" if largest else "error",
                                   min_face=min_face, min_confidence=min_confidence, recursive=recursive,
                                   on_progress=progress_callback(ctx, "enrolling"))
    for label in result.already_enrolled:
        click.echo(f"already enrolled: {label} (for {result.name!r}); not added again", err=True)
    for reason in result.skipped:
        click.echo(f"skipped: {reason}", err=True)
    emit_results([result], fmt, output)


@faces.command()
@click.argument("images", nargs=-1, required=True)
@_db_option
@_model_option(help_extra=" It must be the database's encoder (see `faces reencode`).")
@_threshold_option
@_detection_options
@recursive_option
@output_options
@click.pass_context
def identify(ctx, images, db, model, threshold, min_face, min_confidence, recursive, fmt, output):
    """Every face in IMAGES → the nearest enrolled identity within the threshold, else `unknown`."""
    import visionkit

    results = visionkit.identify_faces(list(images), db=db, model=model, threshold=threshold, min_face=min_face,
                                       min_confidence=min_confidence, recursive=recursive,
                                       on_progress=progress_callback(ctx, "identifying"))
    emit_results([r for r in results if r.ok], fmt, output)
    images = sum(1 for r in results if not r.ok or r.face_index == 0)  # an image: one error, or faces 0, 1, …
    report_failures(ctx, results, inputs=images)


@faces.command("list")
@_db_option
@output_options
def list_(db, fmt, output):
    """Enrolled identities and how many encodings each holds."""
    import visionkit

    with visionkit.FaceDatabase(db, create=False) as database:
        emit_results(database.identities(), fmt, output, columns=["name", "encodings"])


@faces.command()
@_db_option
@_model_option(help_extra=" The encoder to re-encode with.")
@_detection_options
@output_options
@click.pass_context
def reencode(ctx, db, model, min_face, min_confidence, fmt, output):
    """Re-encode every enrolled photo with --model (all or nothing, one transaction): for a database made with
    another encoder. The photos must still be where they were enrolled from."""
    import visionkit

    result = visionkit.reencode_faces(db, model=model, min_face=min_face, min_confidence=min_confidence,
                                      on_progress=progress_callback(ctx, "re-encoding"))
    emit_results([result], fmt, output)


@faces.command()
@click.argument("name")
@_db_option
def remove(name, db):
    """Delete identity NAME and all its encodings."""
    import visionkit

    with visionkit.FaceDatabase(db, create=False) as database:
        count = database.remove(name)
    click.echo(f"removed {name!r} ({count} encodings)")


@faces.command()
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", type=click.Path(file_okay=False), default=defaults.DEFAULT_OUTPUT, show_default=True,
              help="Run folder (a new one gets -2, -3… if it is taken).")
@renamed_option("--run-dir", "--output", "output", type=click.Path(file_okay=False))
@click.option("--resume", is_flag=True, help="Continue the run in --output from its last checkpoint, with its saved settings.")
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
@click.option("--head-lr", "--head-learning-rate", "head_learning_rate", type=float, default=_TRAIN.head_learning_rate,
              show_default=True)
@click.option("--lr", "--learning-rate", "learning_rate", type=float, default=_TRAIN.learning_rate, show_default=True)
@click.option("--schedule", type=click.Choice(["cosine", "constant"]), default=_TRAIN.schedule, show_default=True,
              help="Learning-rate schedule of the second phase (cosine: down to 0 at its end).")
@click.option("--holdout", type=click.IntRange(min=0), default=_TRAIN.holdout, show_default=True,
              help="Identities to hold out (drawn with --seed), evaluated at the end.")
@click.option("--holdout-names", default=None, help="Comma-separated identities to hold out instead.")
@click.option("--seed", type=int, default=_TRAIN.seed, show_default=True)
@click.option("--no-augment", is_flag=True, help="No flips, small rotations/zooms/shifts, contrast and brightness.")
@click.pass_context
def train(ctx, data, output, resume, holdout_names, feature_stride, no_augment, **settings):
    """Train a face encoder on DATA (a folder per identity) with the triplet loss (semi-hard negatives mined
    inside batches of P identities × K images). Prints the held-out evaluation; the model is OUTPUT/face_encoder.keras."""
    import visionkit

    config = visionkit.FaceTrainConfig(feature_stride=int(feature_stride), augment=not no_augment, **settings)
    names = [n.strip() for n in holdout_names.split(",") if n.strip()] if holdout_names else None
    run = visionkit.train_faces(data, output, config, holdout_names=names, resume=resume, quiet=is_quiet(ctx),
                                on_progress=progress_callback(ctx, "aligning faces"))
    summary = run.to_dict()
    echo_json({k: summary[k] for k in ("model", "evaluated_on", "evaluation", "detection")})


@faces.command()
@click.argument("pairs", type=click.Path(exists=True))
@_model_option()
@click.option("--target-far", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=defaults.DEFAULT_TARGET_FAR, show_default=True, help="False-accept rate to find τ for.")
@click.option("--method", type=click.Choice(defaults.METHODS), default="distance", show_default=True,
              help="logistic: also fit the logistic-regression verifier on |f(x1) − f(x2)| and save it beside the model.")
@click.option("--roc", "--roc-png", "roc_png", type=click.Path(dir_okay=False), default="roc.png", show_default=True,
              help="Where to write the ROC curve PNG.")
@click.option("--save-threshold", type=click.Choice(["eer", "far"]), default=None,
              help="Write this threshold into the .keras model's sidecar, so verify uses it.")
@click.option("--identities", default=None, help="Comma-separated sub-folders of a PAIRS folder to use (e.g. held-out people).")
@output_options
@click.pass_context
def calibrate(ctx, pairs, model, target_far, method, roc_png, save_threshold, identities, fmt, output):
    """ROC, AUC, EER and thresholds of a face encoder on PAIRS (a CSV a,b,same or a folder per identity)."""
    import visionkit

    chosen = [n.strip() for n in identities.split(",") if n.strip()] if identities else None
    result = visionkit.calibrate_faces(pairs, model=model, target_far=target_far, method=method, roc_png=roc_png,
                                       save_threshold=save_threshold, identities=chosen,
                                       on_progress=progress_callback(ctx, "encoding"))
    emit_results([result], fmt, output)
