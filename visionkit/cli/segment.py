"""``visionkit segment``: class-id masks for images; ``segment train`` and ``segment val`` for U-Nets.

``visionkit segment IMAGES…`` is short for ``visionkit segment predict IMAGES…``: a first argument that is not a
sub-command name is taken as an input (an image literally named ``train`` needs ``segment predict train``).
"""

from __future__ import annotations

import click

from visionkit.cli.options import (DefaultCommandGroup, echo_json, emit_results, is_quiet, output_options,
                                   progress_callback, recursive_option, report_failures, resolve_format)
from visionkit.core.training import OPTIMIZERS, SCHEDULES
from visionkit.segmentation import config as defaults

_S = defaults.SegmentConfig()
_T = defaults.DEFAULT_TRAINING
SUMMARY_FORMATS = ("table", "json")


@click.group(cls=DefaultCommandGroup)
def segment():
    """Semantic segmentation: `visionkit segment IMAGES --save DIR`, or a sub-command below."""


def _class_options(function):
    function = click.option("--class-file", type=click.Path(exists=True, dir_okay=False), default=None,
                            help="Names of the mask ids, one per line (`name` or `name R G B` for colour masks), "
                                 "or a JSON {id: name}.")(function)
    function = click.option("--classes", default=None,
                            help="Map mask ids to classes: 'SRC:NAME,…' with SRC an id, a range 2-200, a class-file "
                                 "name or * (the rest); NAME 'ignore' leaves pixels out of loss and scores. "
                                 "e.g. '1:person,0:ignore,*:background'.")(function)
    function = click.option("--skip-unmasked", is_flag=True,
                            help="Leave out images that have no mask (instead of stopping).")(function)
    return function


@segment.command()
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--model", default=defaults.DEFAULT_MODEL, show_default=True,
              help="Registry segmenter (`visionkit models list --task segment`) or a .keras file from `segment train`.")
@click.option("--save", type=click.Path(file_okay=False), default=None,
              help="Write <stem>_mask.png (class ids), <stem>_overlay.png and <stem>.json (class areas) here.")
@click.option("--tile", type=click.IntRange(min=32), default=defaults.DEFAULT_TILE, show_default=True,
              help="Images larger than this (at the model's scale) are segmented in overlapping tiles.")
@click.option("--overlap", type=click.IntRange(min=0), default=defaults.DEFAULT_OVERLAP, show_default=True)
@click.option("--alpha", type=click.FloatRange(0, 1), default=defaults.DEFAULT_ALPHA, show_default=True,
              help="Opacity of the colours in the overlay.")
@recursive_option
@output_options
@click.pass_context
def predict(ctx, images, model, save, tile, overlap, alpha, recursive, fmt, output):
    """Segment IMAGES (files, folders, globs, .txt lists): class areas on stdout, masks with --save."""
    import visionkit

    results = visionkit.segment(list(images), model=model, save=save, tile=tile, overlap=overlap, alpha=alpha,
                                recursive=recursive, on_progress=progress_callback(ctx, "segmenting"))
    table = resolve_format(fmt, output) == "table"
    emit_results([r for r in results if r.ok] if table else results, fmt, output,
                 ["source", "label", "pixels", "fraction", "mask"])
    report_failures(ctx, results)


def _training_options(function):
    """The shared optimisation menu (visionkit.core.training), with segmentation's defaults."""
    options = [
        click.option("--epochs", type=click.IntRange(min=1), default=_T.epochs, show_default=True),
        click.option("-b", "--batch-size", type=click.IntRange(min=1), default=_T.batch_size, show_default=True),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=_T.optimizer, show_default=True),
        click.option("--lr", "--learning-rate", "learning_rate", type=float, default=_T.learning_rate,
                     show_default=True, help="Initial learning rate α0."),
        click.option("--momentum", type=float, default=_T.momentum, show_default=True, help="SGD momentum β."),
        click.option("--beta1", "--beta-1", "beta_1", type=float, default=_T.beta_1, show_default=True, help="Adam β1."),
        click.option("--beta2", "--beta-2", "beta_2", type=float, default=_T.beta_2, show_default=True, help="Adam β2."),
        click.option("--rho", type=float, default=_T.rho, show_default=True, help="RMSprop decay of squared gradients."),
        click.option("--schedule", type=click.Choice(SCHEDULES), default=_T.schedule, show_default=True),
        click.option("--decay", type=float, default=_T.decay, show_default=True, help="inverse-time decay."),
        click.option("--decay-rate", type=float, default=_T.decay_rate, show_default=True, help="exponential / step rate."),
        click.option("--step-epochs", type=click.IntRange(min=1), default=_T.step_epochs, show_default=True),
        click.option("--min-lr-fraction", type=float, default=_T.min_lr_fraction, show_default=True,
                     help="cosine: final rate / α0."),
        click.option("--patience", type=click.IntRange(min=1), default=None,
                     help="Early stopping on the held-out loss after this many epochs [default: off]."),
        click.option("--seed", type=int, default=_T.seed, show_default=True, help="Seeds the split, augmentation and weights."),
        click.option("--deterministic", is_flag=True, help="Deterministic TensorFlow kernels (slower)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


_TRAINING_KEYS = ("epochs", "batch_size", "optimizer", "learning_rate", "momentum", "beta_1", "beta_2", "rho",
                  "schedule", "decay", "decay_rate", "step_epochs", "min_lr_fraction", "patience", "seed", "deterministic")


def _print_report(report, fmt: str, payload: dict) -> None:
    from visionkit.core.writers import format_table

    if fmt == "json":
        echo_json(payload)
        return
    click.echo(f"{report.images} images ({report.subset}); pooled over all pixels, and the mean of per-image scores:")
    click.echo(format_table(report.to_rows()))


@segment.command()
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("--arch", default=_S.arch, show_default=True,
              help="unet (classic, from scratch) or unet-BACKBONE with ImageNet weights (efficientnet_lite0, mobilenet_v2).")
@click.option("--image-size", type=click.IntRange(min=0), default=_S.image_size, show_default=True,
              help="Resize images so the long side is this (0: native resolution; large images are then tiled).")
@click.option("--crop", type=click.IntRange(min=32), default=_S.crop, show_default=True, help="Square training crops.")
@click.option("--depth", type=click.IntRange(1, 6), default=_S.depth, show_default=True, help="Classic U-Net poolings.")
@click.option("--filters", "--base-filters", "base_filters", type=click.IntRange(min=1), default=_S.base_filters,
              show_default=True,
              help="Classic U-Net filters at full resolution (doubled at each depth).")
@click.option("--freeze-encoder", is_flag=True, help="Keep the pretrained backbone fixed; train the decoder only.")
@click.option("--head", type=click.Choice(defaults.HEADS), default=_S.head, show_default=True,
              help="sigmoid: one channel, for two classes only.")
@click.option("--loss", default=_S.loss, show_default=True, help="ce, dice, focal, or a sum such as ce+dice.")
@click.option("--class-weights", default=_S.class_weights, help="auto (median frequency) or w0,w1,… [default: none].")
@click.option("--focal-gamma", type=float, default=_S.focal_gamma, show_default=True)
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=_S.val_fraction,
              show_default=True, help="Held out (seeded) for the per-epoch scores and the final report.")
@click.option("--no-augment", "augment", flag_value=False, default=True,
              help="No flip / scale-crop / rotation / colour jitter.")
@_class_options
@_training_options
@click.option("-o", "--output", type=click.Path(file_okay=False), default=defaults.DEFAULT_OUTPUT, show_default=True,
              help="Run folder (a new one gets -2, -3… if it is taken).")
@click.option("--resume", is_flag=True, help="Continue the run in --output from its last epoch, with its settings.")
@click.option("--format", "fmt", type=click.Choice(SUMMARY_FORMATS), default="table", show_default=True)
@click.pass_context
def train(ctx, data, classes, class_file, skip_unmasked, output, resume, fmt, **settings):
    """Train a U-Net on DATA (images/ and masks/ with matching file stems)."""
    import visionkit

    training = visionkit.TrainConfig(**{k: settings.pop(k) for k in _TRAINING_KEYS})
    config = visionkit.SegmentConfig(**settings)
    run = visionkit.train_segmenter(data, output, config, training, classes=classes, class_file=class_file,
                                    skip_unmasked=skip_unmasked, resume=resume, quiet=is_quiet(ctx),
                                    on_progress=progress_callback(ctx, "checking masks"))
    _print_report(run.report, fmt, run.to_dict())
    click.echo(f"model: {run.model_path}")


@segment.command()
@click.argument("model")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("--subset", type=click.Choice(defaults.SUBSETS), default="all", show_default=True,
              help="train / val: only the images of the split recorded in the model by `segment train`.")
@_class_options
@click.option("--tile", type=click.IntRange(min=32), default=defaults.DEFAULT_TILE, show_default=True)
@click.option("-o", "--output", type=click.Path(file_okay=False), default=None,
              help="Folder for report.json and confusion.png.")
@click.option("--format", "fmt", type=click.Choice(SUMMARY_FORMATS), default="table", show_default=True)
@click.pass_context
def val(ctx, model, data, subset, classes, class_file, skip_unmasked, tile, output, fmt):
    """Score MODEL on DATA: per-class IoU and Dice, mean IoU, pixel accuracy, confusion matrix."""
    import visionkit

    report = visionkit.evaluate_segmenter(model, data, classes=classes, class_file=class_file, subset=subset,
                                          skip_unmasked=skip_unmasked, tile=tile, output=output,
                                          on_progress=progress_callback(ctx, "scoring"))
    _print_report(report, fmt, report.to_dict())
