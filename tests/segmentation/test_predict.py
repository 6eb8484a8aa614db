"""Prediction: whole or tiled, resized back to the original, saved files, bad inputs, the shipped default.

The models here are fixed 1x1 convolutions ("red means class 1"), so every expected number is exact.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.segmentation.conftest import red_image
from visionkit.core.errors import UsageError
from visionkit.segmentation import predict as S


def test_tiled_prediction_equals_whole_prediction(red_path, rng):
    segmenter = S.load_segmenter(red_path)
    image = rng.integers(0, 256, (70, 101, 3)).astype(np.uint8)
    whole = S.predict_scaled(segmenter, image, tile=512)
    tiled = S.predict_scaled(segmenter, image, tile=32, overlap=8)
    assert whole.shape == tiled.shape == (70, 101, 2)
    assert np.allclose(whole, tiled, atol=1e-5)
    with pytest.raises(UsageError, match="overlap"):
        S.predict_scaled(segmenter, image, tile=32, overlap=32)


def test_tiles_cover_the_image_with_the_overlap():
    assert S.tile_starts(100, 32, 8) == [0, 24, 48, 68]
    assert S.tile_starts(20, 32, 8) == [0]
    ramp = S.ramp_weights(8, 2)
    assert ramp[0] < ramp[1] < ramp[2] == ramp[3] == 1.0 and np.allclose(ramp, ramp[::-1])


def test_masks_come_back_at_the_original_size_after_resizing(red_path):
    segmenter = S.load_segmenter(red_path)
    segmenter.extra["long_side"] = 32  # as if trained on images shrunk to 32 px
    probs = S.predict_probabilities(segmenter, red_image(90, 120, (30, 40, 60, 80)))
    assert probs.shape == (90, 120, 2)
    assert probs[45, 60].argmax() == 1 and probs[5, 5].argmax() == 0


def test_segment_saves_mask_overlay_and_areas_and_survives_a_bad_file(red_path, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(red_image(40, 50, (10, 10, 20, 30))).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    results = S.segment([str(good), str(broken)], model=red_path, save=tmp_path / "out")
    assert [r.ok for r in results] == [True, False]
    assert "broken.jpg" in results[1].error
    result = results[0]
    mask = np.asarray(Image.open(result.mask_path))
    assert mask.shape == (40, 50) and mask.dtype == np.uint8
    assert mask.sum() == 200 and mask[10:20, 10:30].all()  # the 10 x 20 red box, class 1
    overlay = np.asarray(Image.open(result.overlay_path))
    assert overlay.shape == (40, 50, 3) and not np.array_equal(overlay[15, 15], [250, 60, 60])
    assert np.array_equal(overlay[0, 0], [60, 60, 60])  # background left as it was
    areas = json.loads(open(result.json_path).read())
    assert areas["classes"]["red"] == {"index": 1, "pixels": 200, "fraction": 0.1}
    assert result.to_rows()[-1]["label"] == "red"


def test_segment_accepts_arrays_and_checks_arguments(red_path):
    results = S.segment(red_image(8, 8, (0, 0, 4, 4)), model=red_path)
    assert results[0].mask.sum() == 16 and results[0].source.startswith("<ndarray")
    with pytest.raises(UsageError, match="alpha"):
        S.segment(red_image(8, 8, (0, 0, 4, 4)), model=red_path, alpha=2.0)


def test_registry_names_of_other_tasks_are_refused():
    from visionkit.core.errors import ModelError

    with pytest.raises(ModelError, match="not a segmentation model"):
        S.load_segmenter("efficientnet_lite0")


def test_shipped_default_is_registered_small_and_hash_checked():
    from visionkit.core.config import pretrained_dir
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import file_hash

    spec = get_spec(S.DEFAULT_MODEL)
    path = pretrained_dir() / spec.weights.file
    assert spec.task == "segment" and spec.weights.source == "bundled"
    assert path.stat().st_size < 20_000_000 and file_hash(path) == spec.weights.hash
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["class_names"] == ["background", "person"] and len(meta["extra"]["val_stems"]) == 20
    assert (pretrained_dir() / spec.card).is_file()
