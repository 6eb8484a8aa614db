"""``visionkit models summary`` and ``visionkit models cost`` (added to the ``models`` group in cli/models.py)."""

from __future__ import annotations

import click

from visionkit.cli.options import output_options
from visionkit.zoo import config as cost_defaults

MACS_NOTE = ("MACs: multiply-accumulates of Conv/Depthwise/Separable/Dense kernels; biases, batch norm, "
             "activations, pooling and adds excluded")


def _shape_option(text: str | None, what: str = "--input-shape") -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise click.BadParameter(f"expected three positive numbers H,W,C such as 224,224,3; received {text!r}",
                                 param_hint=what)
    return values


def _padding_option(text: str) -> int | str:
    if text.lower() in ("same", "valid"):
        return text.lower()
    if text.isdigit():
        return int(text)
    raise click.BadParameter(f"expected 'same', 'valid' or a number of pixels; received {text!r}",
                             param_hint="--padding")


def _thousands(rows: list[dict]) -> list[dict]:
    """Integers with thousands separators, for the terminal table only (CSV/JSON keep plain numbers)."""
    return [{key: f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
             for key, value in row.items()} for row in rows]


def _write(result, fmt: str | None, output: str | None, footer: list[str]) -> None:
    """Table (the default, also when piped) with a footer; else the shared writers."""
    from visionkit.core.writers import emit, format_from_path, format_table, write_text_atomic

    fmt = fmt or (format_from_path(output) if output else "table")
    if fmt != "table":
        emit([result], fmt, output)
        return
    text = format_table(_thousands(result.to_rows())) + "\n" + "".join(line + "\n" for line in footer)
    if output:
        write_text_atomic(output, text)
    else:
        click.echo(text, nl=False)


def _g(value: int) -> str:
    return f"{value / 1e9:.3f} G" if value >= 1e8 else f"{value / 1e6:.3f} M"


@click.command()
@click.argument("name")
@click.option("--input-shape", metavar="H,W,C", help="Build at this input size [default: the model's own].")
@click.option("--classes", type=click.IntRange(min=1), default=None,
              help="Number of output classes [default: the model's own].")
@click.option("--no-top", is_flag=True, help="Without the classifier head (the feature extractor).")
@output_options
def summary(name, input_shape, classes, no_top, fmt, output):
    """One row per layer of NAME: type, output shape, parameters, multiply-adds; then the totals.

    NAME is a registry model (`visionkit models list`), built without weights, or a saved .keras
    file. The table is the default output, also when piped; --format json/jsonl/csv for machines.
    """
    import visionkit

    result = visionkit.summarize_model(name, _shape_option(input_shape), classes, include_top=not no_top)
    footer = [
        f"params: {result.params:,} (trainable {result.trainable_params:,}, "
        f"non-trainable {result.non_trainable_params:,})",
        f"multiply-adds: {result.macs:,} ({_g(result.macs)})"
        + ("" if result.macs_complete else " + unknown (some sizes are not fixed)"),
        MACS_NOTE,
    ]
    _write(result, fmt, output, footer)


@click.command()
@click.option("--input-shape", default=",".join(map(str, cost_defaults.EXAMPLE_INPUT_SHAPE)), show_default=True,
              metavar="H,W,C", help="The input volume.")
@click.option("-f", "--filter-size", type=click.IntRange(min=1), default=cost_defaults.EXAMPLE_FILTER_SIZE,
              show_default=True, help="Filter size f (f×f).")
@click.option("-n", "--filters", type=click.IntRange(min=1), default=cost_defaults.EXAMPLE_FILTERS, show_default=True,
              help="Number of filters (output channels).")
@click.option("-s", "--stride", type=click.IntRange(min=1), default=cost_defaults.EXAMPLE_STRIDE, show_default=True)
@click.option("-p", "--padding", default=cost_defaults.EXAMPLE_PADDING, show_default=True,
              help="'same', 'valid' or p pixels on each side.")
@click.option("-b", "--bottleneck", type=click.IntRange(min=0), default=cost_defaults.EXAMPLE_BOTTLENECK,
              show_default=True, help="Also cost a 1×1 conv to this many channels first (0: no comparison).")
@output_options
def cost(input_shape, filter_size, filters, stride, padding, bottleneck, fmt, output):
    """Multiplies of one conv layer, and the 1×1 bottleneck that makes it cheaper.

    Output size per axis: floor((n + 2p - f) / s) + 1; multiplies = H_out·W_out·filters·f·f·C.
    The defaults are the course's example: 28×28×192 through a 5×5 "same" conv with 32 filters
    (120.4 M multiplies) vs. a 16-channel 1×1 bottleneck first (12.4 M).
    """
    import visionkit

    shape, pad = _shape_option(input_shape), _padding_option(padding)
    if bottleneck:
        result = visionkit.bottleneck_cost(shape, filter_size, filters, bottleneck, stride, pad)
        footer = [f"direct: {result.direct.multiplies:,} multiplies; through the bottleneck: "
                  f"{result.bottleneck_multiplies:,} ({result.ratio:.1f}x fewer)"]
    else:
        result = visionkit.conv_cost(shape, filter_size, filters, stride, pad)
        footer = [f"{result.multiplies:,} multiplies"]
    _write(result, fmt, output, footer)
