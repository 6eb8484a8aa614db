"""``visionkit models``: list, inspect, fetch and import registry models."""

from __future__ import annotations

import json

import click

from visionkit.cli.options import output_options, resolve_format


@click.group()
def models():
    """The model registry: what is available, and getting weights."""


@models.command("list")
@click.option("--task", default=None, help="Only models of this task (classify, architecture, detect, …).")
@output_options
def list_(task, fmt, output):
    """Every registered model, with its source, license and whether it works offline now."""
    from visionkit.core.registry import list_specs
    from visionkit.core.weights import is_available
    from visionkit.core.writers import emit

    rows = [_Row({
        "name": spec.name, "task": spec.task,
        "size_mb": spec.weights.size_mb or "", "source": spec.weights.source,
        "offline": "yes" if is_available(spec) else "no", "license": spec.license,
    }) for spec in list_specs(task)]
    emit(rows, resolve_format(fmt, output), output)


class _Row(dict):
    def to_dict(self):
        return dict(self)

    def to_rows(self):
        return [dict(self)]


@models.command()
@click.argument("name")
def info(name):
    """Everything the registry knows about NAME."""
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import expected_hash, is_available

    spec = get_spec(name)
    data = spec.to_dict()
    data["available_offline"] = is_available(spec)
    data["weights"]["hash"] = expected_hash(spec)
    if spec.card:
        from visionkit.core.config import pretrained_dir

        data["card"] = str(pretrained_dir() / spec.card)
    click.echo(json.dumps(data, indent=2))


@models.command()
@click.argument("names", nargs=-1, required=True)
def fetch(names):
    """Download (or convert) the weights of NAMES into the cache, checking their hashes."""
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import build, fetch as fetch_file

    for name in names:
        spec = get_spec(name)
        path = fetch_file(spec)
        if spec.weights.converter:
            build(spec)
        click.echo(f"{spec.name}: {path}")


@models.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
def import_(name, file):
    """Put a weights FILE you downloaded elsewhere into the cache, after checking its hash."""
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import import_file

    click.echo(f"{name}: {import_file(get_spec(name), file)}")


# `models summary` and `models cost` (the classic-architecture zoo) live in cli/models_zoo.py.
from visionkit.cli.models_zoo import cost, summary  # noqa: E402

models.add_command(summary)
models.add_command(cost)


@models.command("import-darknet")
@click.argument("cfg", type=click.Path(exists=True, dir_okay=False))
@click.argument("weights", type=click.Path(exists=True, dir_okay=False))
@click.argument("name")
@click.option("--names", "names_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Class names, one a line (e.g. coco.names / voc.names) [default: 0 … C-1].")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Save the .keras here instead of the cache (then use --model PATH).")
def import_darknet(cfg, weights, name, names_file, output):
    """Convert a darknet YOLOv2 / YOLOv2-tiny CFG + WEIGHTS into a detector called NAME (`visionkit detect -m NAME`)."""
    from pathlib import Path

    from visionkit.convert.darknet import import_darknet as convert

    names = [n.strip() for n in Path(names_file).read_text(encoding="utf-8").splitlines() if n.strip()] if names_file else None
    click.echo(f"{name}: {convert(cfg, weights, name, names, output)}")
