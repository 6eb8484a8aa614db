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
    installed = Path(__file__).resolve().parent / "pretrained"
    if (installed / "registry.toml").is_file():
        return installed
    return Path(__file__).resolve().parent.parent / "pretrained"
