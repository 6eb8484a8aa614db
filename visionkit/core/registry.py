"""The model registry: name -> ModelSpec, read from ``pretrained/registry.toml`` and ``pretrained/registry.d/*.toml``.

A spec is plain data (builder path, input size, preprocessing, labels, weights source, license);
nothing is imported or built until a model is loaded (see :mod:`visionkit.core.weights`).
"""

from __future__ import annotations

import difflib
import functools
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from visionkit.core.config import pretrained_dir
from visionkit.core.errors import ModelError
from visionkit.core.integrity import check_bundled

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

@dataclass(frozen=True)
class WeightsSource:
    """Where a model's weights come from."""

    source: str = "none"  # pip | keras | url | bundled | none
    url: str = ""
    hash: str = ""  # sha256 (64 hex) or md5 (32 hex, as Keras publishes); empty: recorded on first download
    package: str = ""
    file: str = ""
    converter: str = ""
    size_mb: float = 0.0

    @property
    def filename(self) -> str:
        return Path(self.file or self.url.rsplit("/", 1)[-1]).name


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build, feed and describe one model."""

    name: str
    task: str
    builder: str
    description: str = ""
    input_size: tuple[int, int] = (224, 224)
    resize: int | None = None
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channel_order: str = "RGB"
    labels: str = ""
    license: str = ""
    card: str = ""
    weights: WeightsSource = field(default_factory=WeightsSource)
    options: dict = field(default_factory=dict)  # extra builder keywords
    extra: dict = field(default_factory=dict)  # what the task reads beside the model (LoadedModel.extra defaults)

    @property
    def normalizes(self) -> bool:
        return tuple(self.mean) != (0.0, 0.0, 0.0) or tuple(self.std) != (1.0, 1.0, 1.0) or self.channel_order != "RGB"

    def class_names(self) -> list[str]:
        """Label names, from the spec's label file (``pretrained/<labels>``)."""
        if not self.labels:
            return []
        path = pretrained_dir() / self.labels
        check_bundled(path)
        return [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines()]

    def short_labels(self) -> list[str]:
        """The first synonym of each label ("tabby, tabby cat" -> "tabby")."""
        return [name.split(",")[0].strip() for name in self.class_names()]

    def build_function(self) -> Callable[..., Any]:
        return import_object(self.builder)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def import_object(dotted: str) -> Any:
    """Import ``"package.module:attribute"``."""
    module_name, _, attribute = dotted.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ModelError(f"cannot import {dotted!r}: {error}") from None


def _spec_from_table(name: str, table: dict) -> ModelSpec:
    table = dict(table)
    weights = WeightsSource(**table.pop("weights", {}))
    for key in ("input_size", "mean", "std"):
        if key in table:
            table[key] = tuple(table[key])
    known = set(ModelSpec.__dataclass_fields__)
    unknown = set(table) - known
    if unknown:
        raise ModelError(f"registry entry {name!r} has unknown keys: {', '.join(sorted(unknown))}")
    return ModelSpec(name=name, weights=weights, **table)


@functools.lru_cache(maxsize=None)
def _load_registry() -> dict[str, ModelSpec]:
    specs: dict[str, ModelSpec] = {}
    root = pretrained_dir()
    files = [root / "registry.toml", *sorted((root / "registry.d").glob("*.toml"))]
    for path in files:
        if not path.is_file():
            continue
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        for name, table in data.items():
            if name in specs:
                raise ModelError(f"{path}: model {name!r} is already defined in another registry file")
            specs[name] = _spec_from_table(name, table)
    return specs


def list_specs(task: str | None = None) -> list[ModelSpec]:
    return [spec for spec in _load_registry().values() if task is None or spec.task == task]


def get_spec(name: str) -> ModelSpec:
    """The spec named ``name`` (case-insensitive, ``-`` and ``_`` alike), or a ModelError with suggestions."""
    registry = _load_registry()
    key = name.strip().lower().replace("-", "_")
    if key in registry:
        return registry[key]
    close = difflib.get_close_matches(key, list(registry), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ModelError(f"unknown model {name!r}{hint} (see `visionkit models list`)")

