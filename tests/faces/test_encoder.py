"""Encoders as the faces task uses them: per-encoder alignment and mirroring, thresholds and where calibrations are
written, the bundled encoder's hash check."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from visionkit.core.errors import ModelError, WeightsError
from visionkit.faces import align, encoder as enc
from visionkit.faces.results import DetectedFace


def test_registry_gives_each_encoder_its_alignment_mirror_and_threshold():
    from visionkit.core.registry import get_spec
    from visionkit.faces.config import DEFAULT_MODEL

    assert DEFAULT_MODEL == "dlib_resnet_v1"
    dlib = get_spec("dlib_resnet_v1").extra
    assert (dlib["alignment"], dlib["border"], dlib["mirror"], dlib["threshold"]) == ("dlib_chip", "black", False, 0.172)
    assert get_spec("facenet_att_lite0").extra["alignment"] == "arcface"
    assert enc.PUBLISHED_THRESHOLDS["facenet_keras"][0] == 0.80  # the 0.1 name, now read from the registry


def test_templates_scale_to_the_crop():
    np.testing.assert_allclose(align.canonical_template((150, 150), "dlib_chip"), align.CHIP_TEMPLATE_150)
    np.testing.assert_allclose(align.canonical_template((300, 300), "dlib_chip"), align.CHIP_TEMPLATE_150 * 2, rtol=1e-6)
    np.testing.assert_allclose(align.canonical_template((112, 112)), align.TEMPLATE_112)
    with pytest.raises(Exception, match="unknown alignment template 'dlib'"):
        align.Alignment("dlib")


def test_border_fill_outside_the_image():
    image = np.full((60, 60, 3), 200, np.uint8)  # a face whose landmarks sit at the image's top-left corner
    face = DetectedFace((0, 0, 30, 30), 0.99, ((5, 5), (25, 5), (15, 15), (7, 24), (23, 24)))
    black = align.align_face(image, face, (150, 150), align.Alignment("dlib_chip", "black"))
    edge = align.align_face(image, face, (150, 150), align.Alignment("dlib_chip", "replicate"))
    assert black[0, 0].max() == 0 and edge[0, 0].min() == 200 and black[75, 75].min() == 200


def _with_extra(loaded, **extra):
    return replace(loaded, extra={**loaded.extra, **extra})


def test_encode_mirrors_only_when_the_encoder_says_so(tiny_encoder, rng):
    loaded = enc.load_encoder(tiny_encoder)
    crops = rng.integers(0, 255, (3, 32, 32, 3)).astype(np.uint8)
    plain, both = loaded.predict(crops), loaded.predict(crops[:, :, ::-1])
    mean = (plain + both) / np.linalg.norm(plain + both, axis=1, keepdims=True)
    np.testing.assert_allclose(enc.encode(loaded, crops), mean, atol=1e-6)  # default: mirror
    np.testing.assert_allclose(enc.encode(_with_extra(loaded, mirror=False), crops), plain, atol=1e-6)
    np.testing.assert_allclose(enc.encode(loaded, crops, batch_size=2, mirror=False), plain, atol=1e-6)


def test_unknown_alignment_in_a_sidecar_is_refused(tiny_encoder, tmp_path):
    model = tmp_path / "odd.keras"
    shutil.copy(tiny_encoder, model)
    meta = json.loads(Path(tiny_encoder).with_suffix(".json").read_text())
    meta["extra"]["alignment"] = "sideways"
    model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="odd.keras: unknown alignment template 'sideways'"):
        enc.load_encoder(str(model))


def test_bundled_encoder_is_hash_checked(monkeypatch, isolated_cache):
    from visionkit.core import registry

    specs = registry._load_registry()
    spec = specs["facenet_att_lite0"]
    monkeypatch.setitem(specs, "facenet_att_lite0", replace(spec, weights=replace(spec.weights, hash="0" * 64)))
    monkeypatch.setattr(enc, "_ENCODERS", {})
    with pytest.raises(WeightsError, match="hash mismatch: .*facenet_att_lite0.keras does not match"):
        enc.load_encoder("facenet_att_lite0")


@pytest.mark.slow
def test_calibrating_a_registry_encoder_writes_into_the_cache_not_the_package(att, isolated_cache, monkeypatch,
                                                                              tmp_path):
    """--save-threshold and --method logistic on a bundled encoder: the installed files stay as they were."""
    from visionkit.core.config import pretrained_dir
    from visionkit.core.weights import file_hash
    from visionkit.faces.calibrate import calibrate
    from visionkit.faces.predict import verify

    bundled = sorted((pretrained_dir() / "weights").glob("facenet_att_lite0*"))
    before = {path.name: file_hash(path) for path in bundled}
    data = tmp_path / "people"
    for person in ("s3", "s4", "s6"):
        (data / person).mkdir(parents=True)
        for number in (1, 2, 3):
            shutil.copy(att / person / f"{number}.png", data / person / f"{number}.png")
    monkeypatch.setattr(enc, "_ENCODERS", {})
    shipped = enc.load_encoder("facenet_att_lite0").extra["threshold"]
    result = calibrate(data, model="facenet_att_lite0", method="logistic", save_threshold="eer", roc_png=None)
    assert result.threshold_default == shipped and 0 <= result.accuracy_default <= 1
    assert Path(result.saved_threshold) == isolated_cache / "faces" / "facenet_att_lite0.threshold.json"
    assert Path(result.logistic_path) == isolated_cache / "faces" / "facenet_att_lite0.verifier.json"
    assert {path.name: file_hash(path) for path in bundled} == before
    monkeypatch.setattr(enc, "_ENCODERS", {})  # a new process: the saved threshold is the default now
    fresh = enc.load_encoder("facenet_att_lite0")
    assert fresh.extra["threshold"] == pytest.approx(result.threshold_eer) and "saved in" in fresh.extra["threshold_source"]
    match = verify(str(data / "s3" / "1.png"), str(data / "s3" / "2.png"), model=fresh, method="logistic")
    verifier = json.loads((isolated_cache / "faces" / "facenet_att_lite0.verifier.json").read_text())
    assert verifier["pairs"] == 36 and 0 <= match.probability <= 1
