"""``visionkit models``: list, inspect, fetch and import registry models."""

from __future__ import annotations

import click

from visionkit.cli.options import echo_json, emit_results, output_options


@click.group()
def models():
    """The model registry: what is available, and getting weights."""


@models.command("list")
@click.option("--task", default=None, help="Only models of this task (classify, architecture, detect, …).")
@output_options
def list_(task, fmt, output):
    """Every registered model, with its source, license and whether it works offline now."""
    import visionkit

    emit_results(visionkit.model_catalog(task), fmt, output)


@models.command()
@click.argument("name")
def info(name):
    """Everything the registry knows about NAME."""
    import visionkit

    echo_json(visionkit.model_info(name))


@models.command()
@click.argument("names", nargs=-1, required=True)
def fetch(names):
    """Download (or convert) the weights of NAMES into the cache, checking their hashes."""
    import visionkit

    for name in names:
        path = visionkit.fetch_model(name)
        click.echo(f"{visionkit.get_spec(name).name}: {path}")


@models.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
def import_(name, file):
    """Put a weights FILE you downloaded elsewhere into the cache, after checking its hash."""
    import visionkit

    click.echo(f"{name}: {visionkit.import_weights(name, file)}")


# `models summary` and `models cost` (the classic-architecture zoo) live in cli/models_zoo.py.
from visionkit.cli.models_zoo import cost, summary  # noqa: E402

models.add_command(summary)
models.add_command(cost)

# `models visualize` (the patches that most activate a layer's units) lives in cli/explain.py.
from visionkit.cli.explain import visualize  # noqa: E402

models.add_command(visualize)


@models.command("import-darknet")
@click.argument("cfg", type=click.Path(exists=True, dir_okay=False))
@click.argument("weights", type=click.Path(exists=True, dir_okay=False))
@click.argument("name")
@click.option("--names", "names_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Class names, one a line (e.g. coco.names / voc.names) [default: 0 … C-1].")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Save the .keras here instead of the cache (then use --model PATH).")
def import_darknet(cfg, weights, name, names_file, output):
    """Convert a darknet YOLOv2/v3/v4 (or tiny) CFG + WEIGHTS into a detector called NAME (`visionkit detect -m NAME`)."""
    import visionkit

    click.echo(f"{name}: {visionkit.import_darknet(cfg, weights, name, names_file, output)}")
