"""Hashes of every cached and bundled file: the manifest of pretrained/, downloads checked before they enter the cache,
the record of hashes trusted on first use kept outside the cache, conversions stamped, darknet cfgs pinned.

To regenerate the manifest after changing a bundled file: ``cd pretrained && (find weights labels -type f | sort |
xargs sha256sum) > SHA256SUMS``.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import re
import shutil
import threading
from pathlib import Path

import pytest

from visionkit.core import integrity
from visionkit.core.config import pretrained_dir
from visionkit.core.errors import WeightsError
from visionkit.core.registry import ModelSpec, WeightsSource, list_specs
from visionkit.core.weights import cached_file, fetch, import_file, weights_dir


# --- bundled files ---------------------------------------------------------------------------------------------


def test_manifest_lists_every_bundled_file_with_its_hash():
    root = pretrained_dir()
    listed = integrity.bundled_hashes()
    present = {p.relative_to(root).as_posix() for folder in integrity.BUNDLED_FOLDERS
               for p in (root / folder).rglob("*") if p.is_file()}
    assert present == set(listed), (f"pretrained/SHA256SUMS is out of date: unlisted {sorted(present - set(listed))}, "
                                    f"gone {sorted(set(listed) - present)}; regenerate it (see this file's docstring)")
    wrong = [name for name, digest in listed.items() if integrity.file_hash(root / name) != digest]
    assert wrong == [], f"files that differ from pretrained/SHA256SUMS: {wrong}"


def test_registry_hashes_of_bundled_files_agree_with_the_manifest():
    listed = integrity.bundled_hashes()
    for spec in list_specs():
        if spec.weights.source == "bundled" and spec.weights.hash:
            assert listed[spec.weights.file] == spec.weights.hash, spec.name
        if "cfg_sha256" in spec.options and "cfg" in spec.options:
            assert listed[spec.options["cfg"]] == spec.options["cfg_sha256"], spec.name


@pytest.fixture
def fake_pretrained(tmp_path, monkeypatch):
    """A copy of pretrained/ (small files only) that the integrity checks read instead of the real one."""
    root = tmp_path / "pretrained"
    (root / "weights").mkdir(parents=True)
    shutil.copytree(pretrained_dir() / "labels", root / "labels")
    sidecar = root / "weights" / "unet_person.json"
    shutil.copyfile(pretrained_dir() / "weights" / "unet_person.json", sidecar)
    shutil.copyfile(pretrained_dir() / integrity.MANIFEST, root / integrity.MANIFEST)
    monkeypatch.setattr(integrity, "pretrained_dir", lambda: root)
    integrity._CHECKED.clear()
    return root


def test_a_changed_sidecar_or_label_file_is_refused(fake_pretrained):
    sidecar = fake_pretrained / "weights" / "unet_person.json"
    integrity.check_bundled(sidecar)  # as released: passes
    data = json.loads(sidecar.read_text())
    data["class_names"] = ["background", "cat"]
    sidecar.write_text(json.dumps(data))
    with pytest.raises(WeightsError, match=r"hash mismatch: bundled file .*unet_person.json .*reinstall visionkit"):
        integrity.check_bundled(sidecar)
    stray = fake_pretrained / "weights" / "extra.json"
    stray.write_text("{}")
    with pytest.raises(WeightsError, match="not listed in"):
        integrity.check_bundled(stray)
    (fake_pretrained / "labels" / "raccoon.txt").write_text("raccoon\nbadger\n")
    with pytest.raises(WeightsError, match="hash mismatch"):
        integrity.check_bundled(fake_pretrained / "labels" / "raccoon.txt")
    integrity.check_bundled(fake_pretrained.parent / "elsewhere.json")  # files outside pretrained/ are not bundled


def test_a_bundled_model_whose_sidecar_changed_does_not_load(tmp_path, monkeypatch):
    """The loader itself refuses: a .keras in pretrained/ with a sidecar that is not the released one."""
    from visionkit.core import model as model_module

    root = tmp_path / "pretrained"
    shutil.copytree(pretrained_dir(), root, ignore=shutil.ignore_patterns("*.keras", "*.h5"))
    (root / "weights" / "tiny.keras").write_bytes(b"not checked before the sidecar")
    monkeypatch.setattr(integrity, "pretrained_dir", lambda: root)
    with pytest.raises(WeightsError, match="not listed in"):
        model_module.load_model_file(root / "weights" / "tiny.keras")


# --- downloads -------------------------------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path):
    """A local HTTP server for ``tmp_path / 'served'``: (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    httpd.shutdown()


def _spec(url: str, digest: str = "") -> ModelSpec:
    return ModelSpec(name="tiny_remote", task="classify", builder="keras.applications:MobileNetV2",
                     weights=WeightsSource(source="url", url=url, hash=digest))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_download_with_the_wrong_hash_is_deleted_and_called_a_mismatch(isolated_cache, server):
    base, served = server
    (served / "w.h5").write_bytes(b"what the server sends")
    spec = _spec(f"{base}/w.h5", hashlib.sha256(b"what was published").hexdigest())
    with pytest.raises(WeightsError) as error:
        fetch(spec)
    message = str(error.value)
    assert message.startswith("hash mismatch:") and "no network" not in message
    assert f"{base}/w.h5" in message and "deleted" in message and "visionkit models import tiny_remote FILE" in message
    assert _leftovers(weights_dir()) == []  # neither the bad file nor a partial one stays in the cache
    (served / "w.h5").write_bytes(b"what was published")
    assert fetch(spec).read_bytes() == b"what was published"
    assert _leftovers(weights_dir()) == ["w.h5"]


def test_a_network_failure_names_its_reason(isolated_cache):
    spec = _spec("http://127.0.0.1:9/weights/tiny.h5")  # port 9 (discard) refuses at once
    with pytest.raises(WeightsError, match=r"could not be downloaded from http://127.0.0.1:9/weights/tiny.h5 \(.*refused"):
        fetch(spec)
    assert _leftovers(weights_dir()) == []


def test_trust_on_first_use_is_recorded_outside_the_cache_and_refuses_a_changed_file(isolated_cache, server):
    base, served = server
    (served / "w.h5").write_bytes(b"first version")
    spec = _spec(f"{base}/w.h5")
    path = fetch(spec)
    record = integrity.record_path()
    assert not str(record).startswith(str(isolated_cache)), "the record must not live in the cache it guards"
    assert json.loads(record.read_text()) == {spec.weights.url: hashlib.sha256(b"first version").hexdigest()}
    assert not any(p.suffix == ".json" for p in isolated_cache.rglob("*")), "no hash file inside the cache"

    path.write_bytes(b"tampered")  # someone with write access to the cache
    with pytest.raises(WeightsError) as error:
        fetch(spec)
    message = str(error.value)
    assert message.startswith("hash mismatch:") and "recorded on your first download" in message
    assert "delete it and run `visionkit models fetch tiny_remote`" in message and str(record) in message

    path.unlink()
    (served / "w.h5").write_bytes(b"second version")  # upstream changed: refused too, and the download deleted
    with pytest.raises(WeightsError, match="hash mismatch"):
        fetch(spec)
    assert not path.exists()
    with pytest.raises(WeightsError, match="hash mismatch"):  # importing the other file is refused as well
        import_file(spec, served / "w.h5")


def test_a_cached_file_without_any_hash_is_recorded_with_a_warning(isolated_cache, caplog):
    spec = _spec("http://127.0.0.1:9/weights/old.h5")
    path = cached_file(spec)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"placed in the cache by an older visionkit")
    with caplog.at_level(logging.WARNING, logger="visionkit"):
        assert fetch(spec) == path
    assert "trust on first use" in caplog.text
    assert integrity.recorded_hash(spec.weights.url) == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(b"changed afterwards")
    with pytest.raises(WeightsError, match="hash mismatch"):
        fetch(spec)


def test_record_updates_from_many_writers_are_not_lost(isolated_cache):
    threads = [threading.Thread(target=integrity.record_hash, args=(f"key{i}", f"{i:064x}")) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(json.loads(integrity.record_path().read_text())) == 16


def test_conversions_are_used_only_while_they_match_their_stamp(isolated_cache, tmp_path):
    converted = tmp_path / "model.keras"
    converted.write_bytes(b"converted once")
    assert not integrity.stamp_matches(converted)
    integrity.stamp(converted)
    assert integrity.stamp_matches(converted)
    converted.write_bytes(b"converted once, then changed")
    assert not integrity.stamp_matches(converted)


# --- darknet cfgs ----------------------------------------------------------------------------------------------


def test_darknet_cfgs_are_pinned_to_a_commit_and_a_sha256():
    entries = [s for s in list_specs() if s.builder == "visionkit.convert.darknet:registry_detector"]
    assert len(entries) >= 5
    for spec in entries:
        url = spec.options["cfg_url"]
        assert re.search(r"/[0-9a-f]{40}/", url), f"{spec.name}: cfg URL {url} is not pinned to a commit"
        assert re.fullmatch(r"[0-9a-f]{64}", spec.options["cfg_sha256"]), spec.name


def test_a_darknet_cfg_with_the_wrong_hash_is_deleted(isolated_cache, server, monkeypatch):
    from dataclasses import replace

    from visionkit.convert import darknet
    from visionkit.core.registry import get_spec

    base, served = server
    (served / "yolo.cfg").write_text("[net]\nwidth=32\n")
    (served / "yolo.weights").write_bytes(b"\0" * 20)
    spec = get_spec("yolov2_tiny_voc")
    spec = replace(spec, options={**spec.options, "cfg_url": f"{base}/yolo.cfg"},
                   weights=replace(spec.weights, url=f"{base}/yolo.weights"))
    with pytest.raises(WeightsError, match=r"hash mismatch: the file downloaded from .*yolo.cfg"):
        darknet.registry_detector(spec)
    assert _leftovers(weights_dir()) == ["yolo.weights"]
