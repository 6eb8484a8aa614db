"""File hashes: the manifest of bundled files, and the per-user record of hashes trusted on first use.

Two kinds of files are checked before visionkit reads them, each against hashes kept where the files themselves
cannot rewrite them:

* **Bundled files** (``pretrained/weights/*``: models, their ``.json`` sidecars with thresholds and class maps,
  darknet cfgs; ``pretrained/labels/*``) are listed in ``pretrained/SHA256SUMS`` (``sha256sum`` format, so
  ``cd pretrained && sha256sum -c SHA256SUMS`` checks an install by hand). :func:`check_bundled` refuses a bundled
  file that is missing from the manifest or does not match it. This catches a damaged or partial install, a
  checkout without Git LFS (pointer files instead of models), and a model updated without its sidecar. It is not a
  defence against someone who can write into the installed package: they can rewrite the manifest too.

* **Files trusted on first use** (downloads without a published hash, and the conversions visionkit caches) have
  their sha256 recorded in one JSON file *outside the cache they guard*: ``$VISIONKIT_HASH_RECORD``, else
  ``recorded_hashes.json`` in the user's config folder (``~/.config/visionkit`` on Linux). Threat model: the cache
  folder is the weak spot - it may be shared, on a network disk, pointed at by ``VISIONKIT_HOME`` from a project,
  copied from a colleague or restored from a backup, and a download can be cut short. Because the record lives in
  the user's own config folder, a cache that is replaced, copied in or tampered with cannot bring hashes of its own;
  a file that differs from what this user first saw is refused. Not covered: the first download itself (whoever
  controls it on that day wins: prefer entries with published hashes, which are checked against the registry in the
  installed package), and anyone who can write to the user's home folder (they can edit the record and the code).

Downloads are keyed by URL (what the URL served the first time), conversions by their absolute path.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterator

from visionkit.core.config import pretrained_dir
from visionkit.core.errors import WeightsError

logger = logging.getLogger("visionkit")

ENV_HASH_RECORD = "VISIONKIT_HASH_RECORD"
RECORD_NAME = "recorded_hashes.json"
MANIFEST = "SHA256SUMS"
#: Bundled folders the manifest must cover completely.
BUNDLED_FOLDERS = ("weights", "labels")


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


# --- the manifest of bundled files -----------------------------------------------------------------------------


def manifest_path() -> Path:
    return pretrained_dir() / MANIFEST


@functools.lru_cache(maxsize=4)
def _read_manifest(path: Path, mtime_ns: int) -> dict[str, str]:
    entries = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise WeightsError(f"{path}:{number}: not a sha256sum line ({line[:60]!r}); reinstall visionkit")
        entries[name.strip()] = digest.lower()
    return entries


def bundled_hashes() -> dict[str, str]:
    """``{path relative to pretrained/: sha256}`` from ``pretrained/SHA256SUMS``."""
    path = manifest_path()
    if not path.is_file():
        raise WeightsError(f"{path} is missing, so bundled models cannot be checked; reinstall visionkit")
    return _read_manifest(path, path.stat().st_mtime_ns)


def bundled_name(path: str | os.PathLike) -> str | None:
    """``path`` relative to ``pretrained/`` (POSIX form) if it is a bundled file, else None."""
    try:
        relative = Path(os.path.abspath(path)).relative_to(os.path.abspath(pretrained_dir()))
    except ValueError:
        return None
    return relative.as_posix()


def check_bundled(path: str | os.PathLike) -> None:
    """Refuse a file inside ``pretrained/`` that is not in the manifest or does not match it; other paths pass."""
    name = bundled_name(path)
    if name is None:
        return
    expected = bundled_hashes().get(name)
    if expected is None:
        raise WeightsError(f"{path}: bundled file is not listed in {manifest_path()}; reinstall visionkit "
                           "(contributors: regenerate the manifest, see tests/core/test_integrity.py)")
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: bundled file is missing; reinstall visionkit")
    status = os.stat(path)
    seen = (name, status.st_size, status.st_mtime_ns)
    if seen in _CHECKED:
        return
    if file_hash(path) != expected:
        raise WeightsError(f"hash mismatch: bundled file {path} is not the one visionkit was released with "
                           f"(sha256 {expected[:12]}… in {MANIFEST}); the install is damaged or the file is a Git LFS "
                           "pointer: reinstall visionkit (`pip install --force-reinstall visionkit`)")
    _CHECKED.add(seen)


#: (name, size, mtime) of bundled files already checked in this process (a changed file has a new mtime).
_CHECKED: set = set()


# --- the record of hashes trusted on first use -----------------------------------------------------------------


def record_path() -> Path:
    """``$VISIONKIT_HASH_RECORD``, else ``recorded_hashes.json`` in the user's config folder (never the cache)."""
    configured = os.environ.get(ENV_HASH_RECORD)
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("visionkit")) / RECORD_NAME


def _read_record(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise WeightsError(f"{path}: the record of trusted hashes is not valid JSON ({error}); fix or delete it "
                           "(every file trusted on first use is then trusted again on its next use)") from None
    return data if isinstance(data, dict) else {}


def recorded_hash(key: str) -> str:
    """The sha256 recorded for ``key`` (a URL or an absolute path), or ''."""
    return _read_record(record_path()).get(key, "")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path.lock`` (read-modify-write of the record by several processes)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def record_hash(key: str, digest: str | None) -> None:
    """Record (or with ``digest=None`` forget) the sha256 of ``key``, atomically and under a lock."""
    from visionkit.core.writers import atomic_path

    path = record_path()
    with _locked(path):
        record = _read_record(path)
        if digest is None:
            record.pop(key, None)
        else:
            record[key] = digest
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def stamp(path: str | os.PathLike) -> None:
    """Record the sha256 of a file visionkit has just written into its cache (a conversion)."""
    record_hash(os.path.abspath(path), file_hash(path))


def stamp_matches(path: str | os.PathLike) -> bool:
    """Whether ``path`` exists and is the file :func:`stamp` recorded (False when nothing was recorded)."""
    expected = recorded_hash(os.path.abspath(path))
    return bool(expected) and os.path.isfile(path) and file_hash(path) == expected
