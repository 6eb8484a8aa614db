"""``visionkit classify``: ImageNet (or your own) labels for images, folders and globs."""

from __future__ import annotations

import click

from visionkit.classification import config
from visionkit.cli.options import emit_results, output_options, progress_callback, recursive_option, report_failures


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--model", default=config.DEFAULT_MODEL, show_default=True,
              help="Registry name (see `visionkit models list`) or a .keras file.")
@click.option("-k", "--top-k", type=click.IntRange(min=1), default=config.DEFAULT_TOP_K, show_default=True)
@click.option("--tta", is_flag=True, help="Average ten crops (corners, centre and their mirrors).")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=config.DEFAULT_BATCH_SIZE, show_default=True)
@recursive_option
@output_options
@click.pass_context
def classify(ctx, images, model, top_k, tta, batch_size, recursive, fmt, output):
    """Classify IMAGES (files, folders, globs, or .txt files listing paths)."""
    import visionkit

    results = visionkit.classify(list(images), model=model, top_k=top_k, tta=tta, batch_size=batch_size,
                                 recursive=recursive, on_progress=progress_callback(ctx, "classifying",
                                                                                    minimum=batch_size + 1))
    table = ["source", "rank", "label", "score"]
    emit_results([r for r in results if r.ok] if _is_table(fmt, output) else results, fmt, output, table)
    report_failures(ctx, results)


def _is_table(fmt, output) -> bool:
    from visionkit.cli.options import resolve_format

    return resolve_format(fmt, output) == "table"
