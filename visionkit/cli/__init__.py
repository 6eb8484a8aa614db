"""The ``visionkit`` command: a lazy click group (``--help`` never imports TensorFlow)."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from visionkit import __version__
from visionkit.core.errors import WRITE_ERRNOS, VisionkitError, output_error

#: command name -> "module:attribute" of a click command; imported only when the command runs.
COMMANDS = {
    "classify": "visionkit.cli.classify:classify",
    "detect": "visionkit.cli.detect:detect",
    "evaluate": "visionkit.cli.train:evaluate",
    "explain": "visionkit.cli.explain:explain",
    "export": "visionkit.cli.train:export",
    "faces": "visionkit.cli.faces:faces",
    "finetune": "visionkit.cli.train:finetune",
    "models": "visionkit.cli.models:models",
    "segment": "visionkit.cli.segment:segment",
    "stylize": "visionkit.cli.stylize:stylize",
    "verify": "visionkit.cli.faces:verify",
}


class CliError(click.ClickException):
    """A VisionkitError as click shows it: ``error: message`` on stderr, the error's exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use; user errors become one line on stderr."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except VisionkitError as error:
            raise CliError(str(error), error.exit_code) from None
        except OSError as error:  # a write outside the atomic writers: disk full, read-only, no permission
            if error.errno not in WRITE_ERRNOS:
                raise
            raise CliError(str(output_error(error.filename or "output", error)), 1) from None

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="visionkit")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or notes; results and errors only.")
@click.option("-v", "--verbose", is_flag=True, help="More detail, including TensorFlow's own log.")
@click.option("--cache-dir", type=click.Path(file_okay=False), envvar="VISIONKIT_HOME", show_envvar=True,
              help="Where weights and converted models are kept [default: the user's cache dir].")
@click.pass_context
def cli(ctx, quiet, verbose, cache_dir):
    """Classic deep-learning vision tasks, one command each."""
    from visionkit.core.config import mute_tensorflow_startup, set_cache_dir

    ctx.obj = {"quiet": quiet, "verbose": verbose}
    if cache_dir:
        set_cache_dir(cache_dir)
    if not verbose:
        mute_tensorflow_startup()
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s")


def main(argv=None) -> None:
    """Console entry point."""
    try:
        cli.main(args=argv, prog_name="visionkit")
    except BrokenPipeError:  # `visionkit classify ... | head`
        sys.stderr.close()
        sys.exit(0)
