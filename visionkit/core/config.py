"""Where visionkit keeps its files, and the few settings read from the environment."""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "VISIONKIT_HOME"


def cache_dir() -> Path:
    """The cache folder: ``$VISIONKIT_HOME``, else the user's cache dir (``~/.cache/visionkit`` on Linux)."""
    configured = os.environ.get(ENV_HOME)
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("visionkit"))


def set_cache_dir(path: str | os.PathLike) -> None:
    """Point this process (and the verbs it calls) at another cache folder."""
    os.environ[ENV_HOME] = str(Path(path).expanduser())


def pretrained_dir() -> Path:
    """The ``pretrained/`` data folder: installed as ``visionkit/pretrained``, or beside the source tree."""
    package = Path(__file__).resolve().parents[1]  # visionkit/
    installed = package / "pretrained"
    if (installed / "registry.toml").is_file():
        return installed
    return package.parent / "pretrained"


class _QuietTensorFlowImport:
    """A meta-path hook: the first ``import tensorflow`` runs with the process's stderr (fd 2) muted.

    TensorFlow's C++ start-up notes (oneDNN, CUDA probing) ignore TF_CPP_MIN_LOG_LEVEL; muting fd 2
    for the import is the only way to keep a CLI's stderr to the one line it means to print.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        import importlib.util
        import sys

        sys.meta_path.remove(self)
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            import tensorflow as tf  # noqa: F401  (imported here, muted)

            tf.config.list_physical_devices("GPU")  # the CUDA probe prints too
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
        return importlib.util.find_spec(name)


def mute_tensorflow_startup() -> None:
    """Install the muting hook (the CLI does this unless --verbose)."""
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(isinstance(h, _QuietTensorFlowImport) for h in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
