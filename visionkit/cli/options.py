"""Options shared by several commands, defined once, and the helpers every command uses to render results."""

from __future__ import annotations

import functools
import sys

import click

from visionkit.core.writers import FORMATS


class DefaultCommandGroup(click.Group):
    """A group whose first argument, when it is not a sub-command, starts ``default_command``.

    So ``visionkit detect photo.jpg`` means ``visionkit detect predict photo.jpg``.
    """

    default_command = "predict"

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def is_quiet(ctx: click.Context) -> bool:
    """Whether ``visionkit -q`` was given."""
    return bool((ctx.find_root().obj or {}).get("quiet"))


def output_options(function):
    """``--format`` and ``--output`` (format guessed from the output file's extension)."""
    function = click.option("-o", "--output", type=click.Path(dir_okay=False),
                            help="Write results to this file (atomically) instead of stdout.")(function)
    function = click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                            help="Output format [default: table on a terminal, else from --output's extension, else jsonl].")(function)
    return function


def resolve_format(fmt: str | None, output: str | None) -> str:
    if fmt:
        return fmt
    if output:
        from visionkit.core.writers import format_from_path

        return format_from_path(output, default="jsonl")
    return "table" if sys.stdout.isatty() else "jsonl"


def recursive_option(function):
    return click.option("-r", "--recursive", is_flag=True, help="Look for images in sub-folders too.")(function)


def progress_callback(ctx: click.Context, label: str, minimum: int = 2):
    """A callback(done, total) that draws a progress bar on stderr, or None when --quiet."""
    if is_quiet(ctx):
        return None
    state: dict = {}

    def update(done: int, total: int) -> None:
        if total < minimum:
            return
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)
            bar.__enter__()
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)

    return update


def report_failures(ctx: click.Context, results, inputs: int | None = None) -> None:
    """Print each failed input as one line on stderr; exit 1 at the end if any failed.

    A failed input is one result with ``error`` set. ``inputs``: how many inputs there were, when an input that
    succeeds can give several results (``faces identify``: one per face); by default one result per input.
    """
    bad = [r for r in results if getattr(r, "error", None)]
    for result in bad:
        click.echo(f"error: {result.error}", err=True)
    if bad:
        if not is_quiet(ctx):
            click.echo(f"{len(bad)} of {len(results) if inputs is None else inputs} inputs failed", err=True)
        ctx.exit(1)


def renamed_option(old: str, new: str, dest: str, **settings):
    """Keep the old spelling ``old`` of option ``new`` working for one release: hidden from ``--help``; its value
    goes to ``dest`` with a note on stderr."""
    legacy = "legacy_" + old.lstrip("-").replace("-", "_")

    def decorate(function):
        @functools.wraps(function)
        def command(*args, **kwargs):
            value = kwargs.pop(legacy, None)
            if value is not None:
                click.echo(f"note: {old} is now {new} (the old spelling goes in the next release)", err=True)
                kwargs[dest] = value
            return function(*args, **kwargs)

        return click.option(old, legacy, hidden=True, default=None, **settings)(command)

    return decorate


def data_format_option(choices):
    """``--data-format`` (how a labelled data set is stored); ``--format`` was its old spelling here."""
    def decorate(function):
        function = renamed_option("--format", "--data-format", "data_format", type=click.Choice(choices))(function)
        return click.option("--data-format", type=click.Choice(choices), default="auto", show_default=True,
                            help="How the labels are stored (auto: found from the files).")(function)

    return decorate


def emit_results(results, fmt: str | None, output: str | None, columns=None) -> None:
    """Render results with the shared writers (``columns`` for the terminal table only)."""
    from visionkit.core.writers import emit

    fmt = resolve_format(fmt, output)
    emit(results, fmt, output, columns=columns if fmt == "table" else None)


def echo_json(data) -> None:
    import json

    click.echo(json.dumps(data, indent=2))
