"""``visionkit finetune``, ``visionkit evaluate`` and ``visionkit export``: train, judge and ship a classifier."""

from __future__ import annotations

import click

from visionkit.cli.options import echo_json, is_quiet, progress_callback
from visionkit.core.training import DISTRIBUTE, OPTIMIZERS, SCHEDULES, TrainConfig
from visionkit.train import config as defaults

_T = TrainConfig()
SUMMARY_FORMATS = ("table", "json")


def _print_report(report, fmt: str, payload: dict) -> None:
    from visionkit.core.writers import format_table

    if fmt == "json":
        echo_json(payload)
        return
    click.echo(format_table(report.to_rows()))
    for k, value in report.top_k.items():
        click.echo(f"top-{k} accuracy: {value:.4f}")
    if report.diagnosis:
        click.echo("\n" + report.diagnosis_text())
    if report.misclassified:
        click.echo(f"\n{len(report.misclassified)} misclassified; most confident: "
                   + ", ".join(f"{m.source} ({m.true}→{m.predicted} {m.confidence:.2f})" for m in report.misclassified[:3]))
    for name, path in report.files.items():
        click.echo(f"{name}: {path}")


@click.command()
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("--base", default=defaults.DEFAULT_BASE, show_default=True,
              help="Registry classifier or zoo architecture (see `visionkit models list`).")
@click.option("--weights", type=click.Choice(defaults.WEIGHTS), default="pretrained", show_default=True,
              help="none: train the architecture from scratch (random He/Glorot initialisation).")
@click.option("--freeze", default=defaults.DEFAULT_FREEZE, show_default=True,
              help="all, none, or N (the first N backbone layers stay frozen). Ignored with --weights none.")
@click.option("--head", type=click.Choice(defaults.HEADS), default=defaults.DEFAULT_HEAD, show_default=True,
              help="logreg/svm: scikit-learn on the frozen network's features, folded into a Dense layer.")
@click.option("--cache-features", is_flag=True, help="Compute the frozen backbone's features once (cached on disk) "
                                                     "and train only the head on them.")
@click.option("--fine-tune-epochs", type=click.IntRange(min=0), default=defaults.DEFAULT_FINE_TUNE_EPOCHS, show_default=True,
              help="Second phase: unfreeze the top layers and train this many more epochs.")
@click.option("--unfreeze", type=click.IntRange(min=1), default=defaults.DEFAULT_UNFREEZE, show_default=True,
              help="Layers (with weights) made trainable in the second phase.")
@click.option("--fine-tune-lr", type=float, default=defaults.DEFAULT_FINE_TUNE_LR, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=_T.epochs, show_default=True)
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=_T.batch_size, show_default=True)
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=_T.optimizer, show_default=True)
@click.option("--lr", "--learning-rate", "learning_rate", type=float, default=_T.learning_rate, show_default=True,
              help="Initial learning rate α0.")
@click.option("--momentum", type=float, default=_T.momentum, show_default=True, help="SGD momentum β.")
@click.option("--beta1", "--beta-1", "beta_1", type=float, default=_T.beta_1, show_default=True, help="Adam β1.")
@click.option("--beta2", "--beta-2", "beta_2", type=float, default=_T.beta_2, show_default=True, help="Adam β2.")
@click.option("--epsilon", type=float, default=_T.epsilon, show_default=True, help="Adam / RMSprop ε.")
@click.option("--rho", type=float, default=_T.rho, show_default=True, help="RMSprop decay of the squared gradients.")
@click.option("--schedule", type=click.Choice(SCHEDULES), default=_T.schedule, show_default=True,
              help="inverse-time α0/(1+decay·epoch), exponential α0·rate^epoch, step α0·rate^⌊epoch/k⌋, cosine.")
@click.option("--decay", type=float, default=_T.decay, show_default=True, help="inverse-time decay.")
@click.option("--decay-rate", type=float, default=_T.decay_rate, show_default=True, help="exponential / step rate.")
@click.option("--step-epochs", type=click.IntRange(min=1), default=_T.step_epochs, show_default=True, help="step: epochs k between drops.")
@click.option("--min-lr-fraction", type=float, default=_T.min_lr_fraction, show_default=True, help="cosine: final rate / α0.")
@click.option("--l2", type=float, default=defaults.DEFAULT_L2, show_default=True, help="L2 weight decay on trainable kernels.")
@click.option("--dropout", type=float, default=defaults.DEFAULT_DROPOUT, show_default=True, help="Dropout before the new head.")
@click.option("--init", type=click.Choice(defaults.INITS), default=defaults.DEFAULT_INIT, show_default=True,
              help="Initialisation of the new layers.")
@click.option("--augment", default=None, help="standard, all, or a list from flip,crop,rotate,zoom,shear,colour,pca.")
@click.option("--input-size", type=click.IntRange(min=8), default=None, help="Square input side [default: the model's].")
@click.option("--dev", "--dev-fraction", "dev_fraction", type=float, default=defaults.DEFAULT_DEV, show_default=True)
@click.option("--test", "--test-fraction", "test_fraction", type=float, default=defaults.DEFAULT_TEST, show_default=True)
@click.option("--train-dev", "--train-dev-fraction", "train_dev_fraction", type=float, default=defaults.DEFAULT_TRAIN_DEV,
              show_default=True,
              help="Fraction of the training split held out to tell variance from data mismatch.")
@click.option("--class-weight", type=click.Choice(defaults.CLASS_WEIGHTS), default=defaults.DEFAULT_CLASS_WEIGHT, show_default=True)
@click.option("--patience", type=click.IntRange(min=1), default=None, help="Early stopping after this many epochs without "
                                                                       "a better dev loss [default: off].")
@click.option("--seed", type=int, default=_T.seed, show_default=True)
@click.option("--deterministic", is_flag=True, help="Deterministic TensorFlow kernels (slower).")
@click.option("--mixed-precision", is_flag=True, help="float16 (GPU) / bfloat16 (CPU) compute, float32 weights.")
@click.option("--distribute", type=click.Choice(DISTRIBUTE), default=_T.distribute, show_default=True,
              help="tf.distribute strategy; multi-worker reads the cluster from TF_CONFIG.")
@click.option("--human-error", type=float, default=None, help="Human-level error (fraction) for the bias diagnosis.")
@click.option("-k", "--top-k", type=click.IntRange(min=1), default=defaults.DEFAULT_TOP_K, show_default=True)
@click.option("-o", "--output", type=click.Path(file_okay=False), default=defaults.DEFAULT_OUTPUT, show_default=True,
              help="Run folder (a new one gets -2, -3… if it is taken).")
@click.option("--resume", is_flag=True, help="Continue the run in --output from its last checkpoint, with its settings.")
@click.option("--format", "fmt", type=click.Choice(SUMMARY_FORMATS), default="table", show_default=True)
@click.pass_context
def finetune(ctx, data, output, resume, fmt, input_size, augment, **settings):
    """Train a classifier on DATA (one sub-folder of images per class, or train/ dev/ [test/] folders)."""
    if input_size:
        settings["input_size"] = (input_size, input_size)
    import visionkit

    run = visionkit.finetune(data, output=output, resume=resume, quiet=is_quiet(ctx), augment=augment,
                             on_progress=progress_callback(ctx, "decoding"), **settings)
    _print_report(run.report, fmt, run.to_dict())
    click.echo(f"model: {run.model_path}")


@click.command()
@click.argument("model")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", type=click.Path(file_okay=False), default=None,
              help="Folder for report.json, report.md, confusion.png, misclassified.csv.")
@click.option("-k", "--top-k", type=click.IntRange(min=1), default=defaults.DEFAULT_TOP_K, show_default=True)
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=defaults.EVAL_BATCH_SIZE, show_default=True)
@click.option("--human-error", type=float, default=None, help="Human-level error (fraction) for the bias diagnosis.")
@click.option("--format", "fmt", type=click.Choice(SUMMARY_FORMATS), default="table", show_default=True)
@click.pass_context
def evaluate(ctx, model, data, output, top_k, batch_size, human_error, fmt):
    """Evaluate MODEL (.keras file or registry name) on DATA (one sub-folder of images per class)."""
    import visionkit

    report = visionkit.evaluate(model, data, output=output, top_k=top_k, batch_size=batch_size, human_error=human_error,
                                on_progress=progress_callback(ctx, "evaluating"))
    _print_report(report, fmt, report.to_dict())


@click.command()
@click.argument("model")
@click.option("--format", "fmt", type=click.Choice(defaults.EXPORT_FORMATS), default=defaults.DEFAULT_EXPORT_FORMAT,
              show_default=True)
@click.option("-o", "--output", type=click.Path(), default=None,
              help="Where to write [default: beside MODEL: MODEL_saved_model/, MODEL.tflite, MODEL.onnx].")
@click.option("--images", multiple=True, help="Images (files, folders, globs) to check predictions on "
                                              "[default: 4 seeded random images].")
@click.option("--no-check", is_flag=True, help="Do not compare the exported model's outputs with the original's.")
def export(model, fmt, output, images, no_check):
    """Export MODEL as a SavedModel, a TFLite file or ONNX, and check it predicts like the original."""
    import visionkit

    result = visionkit.export(model, fmt, output, images=list(images) or None, check=not no_check)
    if result.checked:
        click.echo(f"{result.path}: {result.format}, max difference {result.max_difference:.2e} on {result.checked} "
                   f"images, same top-1: {'yes' if result.same_top1 else 'no'}")
    else:
        click.echo(f"{result.path}: {result.format} (not checked)")
