"""``visionkit explain``: Grad-CAM heatmaps over photos; ``visionkit models visualize``: the patches that most
activate units of a layer (registered on the ``models`` group in cli/models.py)."""

from __future__ import annotations

import click

from visionkit.cli.options import emit_results, is_quiet, progress_callback, recursive_option, report_failures
from visionkit.explanation import config

MODEL_HELP = "Registry classifier (`visionkit models list --task classify`) or a .keras file from `visionkit finetune`."
FORMAT_OPTION = click.option("--format", "fmt", type=click.Choice(("table", "json", "jsonl", "csv")), default=None,
                             help="How to print the results [default: table on a terminal, else jsonl].")
LAYER_HELP = ("A layer with a feature map: its name, or a path such as efficientnet_lite0/top_activation in a "
              "finetuned model [default: the last convolutional map before global pooling].")


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--model", default=config.DEFAULT_MODEL, show_default=True, help=MODEL_HELP)
@click.option("-c", "--class", "--target-class", "target_class", default=None,
              help="Explain this class (name or index) [default: each image's top class].")
@click.option("--layer", default=None, help=LAYER_HELP)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the overlay of the one image here (.png or .jpg).")
@click.option("--save", type=click.Path(file_okay=False), default=None,
              help="Write IMAGE-STEM_gradcam.png overlays of every image into this folder.")
@click.option("--alpha", type=click.FloatRange(0, 1), default=config.DEFAULT_ALPHA, show_default=True,
              help="Weight of the colour map over the photo.")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=config.DEFAULT_BATCH_SIZE, show_default=True)
@recursive_option
@FORMAT_OPTION
@click.pass_context
def explain(ctx, images, model, target_class, layer, output, save, alpha, batch_size, recursive, fmt):
    """Grad-CAM (Selvaraju et al. 2017): where in IMAGES the classifier finds its evidence for a class."""
    import visionkit

    results = visionkit.explain(list(images), model=model, target_class=target_class, layer=layer, output=output,
                                save=save, alpha=alpha, batch_size=batch_size, recursive=recursive,
                                on_progress=progress_callback(ctx, "explaining", minimum=batch_size + 1))
    good = [r for r in results if r.ok]
    emit_results(good, fmt, None, ["source", "label", "score", "predicted", "layer", "peak", "path"])
    report_failures(ctx, results)


def _indices(value: str | None) -> list[int] | None:
    if not value:
        return None
    try:
        return [int(item) for item in value.split(",") if item.strip()]
    except ValueError:
        raise click.BadParameter(f"comma-separated unit indices, such as 0,5,12; received {value!r}") from None


@click.command()
@click.argument("model")
@click.argument("images", nargs=-1)
@click.option("--layer", default=None, help=LAYER_HELP)
@click.option("--units", default=None, callback=lambda ctx, param, value: _indices(value), help="Comma-separated unit (channel) indices [default: the --count most active].")
@click.option("--count", type=click.IntRange(min=1), default=config.DEFAULT_UNITS, show_default=True,
              help="How many units, when --units is not given.")
@click.option("--top", type=click.IntRange(min=1), default=config.DEFAULT_TOP, show_default=True,
              help="Patches per unit (one per image, strongest first).")
@click.option("--erf-mass", type=click.FloatRange(0, 1, min_open=True), default=config.DEFAULT_ERF_MASS,
              show_default=True, help="A patch is the square around the unit holding this share of its input gradient.")
@click.option("--tile", type=click.IntRange(min=8), default=config.DEFAULT_TILE, show_default=True,
              help="Side of each patch in the sheet, in pixels.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="units.png", show_default=True,
              help="The contact sheet (.png or .jpg).")
@click.option("--list-layers", is_flag=True, help="Only list MODEL's layers that have a feature map, and exit.")
@recursive_option
@FORMAT_OPTION
@click.pass_context
def visualize(ctx, model, images, layer, units, count, top, erf_mass, tile, output, list_layers, recursive, fmt):
    """The patches of IMAGES that most activate units of a layer of MODEL (Zeiler & Fergus 2014), as a sheet."""
    import visionkit

    if list_layers:
        for name, shape in visionkit.explain_layers(model):
            click.echo(f"{name}  {'x'.join(str(side) for side in shape)}")
        return
    if not images:
        raise click.UsageError("give IMAGES (files, folders, globs) to look for the patches in")
    result = visionkit.visualize_units(list(images), model=model, layer=layer, units=units, count=count, top=top,
                                       output=output, erf_mass=erf_mass, tile=tile, recursive=recursive,
                                       on_progress=progress_callback(ctx, "reading"))
    for reason in result.skipped:
        click.echo(f"skipped: {reason}", err=True)
    emit_results([result], fmt, None, ["unit", "rank", "activation", "source", "box"])
    if not is_quiet(ctx):
        click.echo(f"{result.sheet}: {len(result.units)} units of {result.layer} ({result.channels} channels), "
                   f"{result.images} images, median patch side {result.median_side:.0f} px", err=True)
