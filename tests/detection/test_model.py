"""The YOLOv2-style model, decoding (numpy and TensorFlow twins) and the loss with its target assignment."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ANCHORS, make_tiny_detector, tiny_backbone
from visionkit.core.errors import UsageError

def perfect_raw(y_true, grid, anchors, classes):
    """The raw head output that decodes exactly to the ground truth (used to check the loss is ~0 there)."""
    import tensorflow as tf

    from visionkit.detection.loss import assign_targets

    mask, txy, twh, cls, _, _ = assign_targets(tf.constant(y_true), grid, tf.constant(anchors, tf.float32))
    raw = np.zeros((len(y_true), *grid, 5 + classes), np.float32)
    raw[..., 4] = -15.0
    chosen = mask.numpy().astype(bool)
    offsets = np.clip(txy.numpy(), 1e-6, 1 - 1e-6)
    raw[..., 0:2][chosen] = np.log(offsets / (1 - offsets))[chosen]
    raw[..., 2:4][chosen] = twh.numpy()[chosen]
    raw[..., 4][chosen] = 15.0
    for index in zip(*np.nonzero(chosen)):
        raw[index + (5 + cls.numpy()[index],)] = 15.0
    return raw, chosen


Y_TRUE = np.array([[[0.1, 0.1, 0.35, 0.3, 1], [0.4, 0.3, 0.9, 0.95, 0], [0, 0, 0, 0, -1]],
                   [[0.05, 0.02, 0.97, 0.99, 0], [0, 0, 0, 0, -1], [0, 0, 0, 0, -1]]], np.float32)


def test_targets_go_to_the_centre_cell_and_best_anchor():
    raw, chosen = perfect_raw(Y_TRUE, (8, 8, 3), ANCHORS, 2)
    # centres (0.225, 0.2) -> cell (row 1, col 1), shape 0.25x0.2 -> anchor 0; (0.65, 0.625) -> (5, 5), anchor 1;
    # nearly the whole image -> (4, 4), anchor 2
    assert sorted(zip(*np.nonzero(chosen))) == [(0, 1, 1, 0), (0, 5, 5, 1), (1, 4, 4, 2)]


def test_numpy_decoding_recovers_the_boxes_and_matches_tensorflow():
    import tensorflow as tf

    from visionkit.detection.decode import decode, detections
    from visionkit.detection.loss import decode_boxes

    raw, _ = perfect_raw(Y_TRUE, (8, 8, 3), ANCHORS, 2)
    boxes, scores, class_ids = detections(raw[0], ANCHORS)
    best = np.argsort(-scores)[:2]
    np.testing.assert_allclose(boxes[best], Y_TRUE[0, :2, :4], atol=1e-5)
    assert class_ids[best].tolist() == [1, 0] and np.all(scores[best] > 0.99)
    noise = np.random.default_rng(0).normal(0, 2, raw.shape).astype(np.float32)
    ours = decode(noise, ANCHORS)[0].reshape(2, 8, 8, 3, 4)
    theirs = decode_boxes(tf.constant(noise), tf.constant(ANCHORS, tf.float32)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_loss_is_near_zero_for_the_perfect_output_and_grows_with_errors():
    from visionkit.detection.loss import yolo_loss

    raw, chosen = perfect_raw(Y_TRUE, (8, 8, 3), ANCHORS, 2)
    perfect = yolo_loss(Y_TRUE, raw, ANCHORS).numpy()
    assert np.all(perfect < 0.01)
    for channel, change in ((0, 1.0), (2, 1.0), (4, 16.0), (5, 16.0)):  # logits of 15 need a big push
        worse = raw.copy()
        worse[..., channel][chosen] -= change
        assert np.all(yolo_loss(Y_TRUE, worse, ANCHORS).numpy() > perfect + 1e-3), channel


def test_ignore_threshold_spares_good_boxes_from_unassigned_anchors():
    """An unassigned anchor that also predicts the object confidently is not punished (YOLOv2 §2)."""
    from visionkit.detection.loss import yolo_loss

    raw, chosen = perfect_raw(Y_TRUE[:1], (8, 8, 3), ANCHORS, 2)
    echo = raw.copy()
    echo[0, 5, 5, 2] = raw[0, 5, 5, 1]  # anchor 2 copies anchor 1's output: a box of IoU < 1 with the truth
    echo[0, 5, 5, 2, 2:4] = np.log(ANCHORS[1] / ANCHORS[2]) + raw[0, 5, 5, 1, 2:4]  # … now the very same box
    ignored = yolo_loss(Y_TRUE[:1], echo, ANCHORS, ignore_iou=0.6).numpy()[0]
    punished = yolo_loss(Y_TRUE[:1], echo, ANCHORS, ignore_iou=1.0).numpy()[0]
    assert ignored < 0.01 < 10 < punished  # sigmoid(15) as background costs ~15 nats


def test_space_to_depth_matches_tensorflow():
    import tensorflow as tf

    from visionkit.detection.model import SpaceToDepth

    x = np.random.default_rng(0).normal(size=(2, 8, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(SpaceToDepth(2)(x).numpy(), tf.nn.space_to_depth(x, 2).numpy())


def test_model_shapes_passthrough_and_bad_sizes():
    from visionkit.detection.model import feature_layers, yolo_v2

    model = yolo_v2(3, ANCHORS, (64, 96, 3), backbone=_backbone(64, 96), head_filters=8)
    assert model.output_shape == (None, 2, 3, 3, 8)
    assert "head_reorg" in [layer.name for layer in model.layers]  # stride 16 exists: passthrough on
    assert feature_layers(tiny_backbone(64), (16, 32)) == {16: "down4", 32: "down5"}
    with pytest.raises(UsageError, match="multiples of 32"):
        yolo_v2(1, ANCHORS, (70, 64, 3), backbone=tiny_backbone(64))
    with pytest.raises(UsageError, match="anchors must be positive"):
        yolo_v2(1, [[0.1, -1]], (64, 64, 3), backbone=tiny_backbone(64))


def _backbone(height, width):
    import keras

    inputs = keras.Input((height, width, 3))
    x = inputs
    for i in range(5):
        x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name=f"d{i}")(x)
    return keras.Model(inputs, x)


def test_efficientnet_feature_layers_agree_with_its_table():
    from visionkit.zoo.efficientnet_lite import FEATURE_LAYERS, efficientnet_lite0
    from visionkit.detection.model import feature_layers

    backbone = efficientnet_lite0((64, 64, 3), include_top=False)
    assert feature_layers(backbone, (16, 32)) == {16: FEATURE_LAYERS[16], 32: FEATURE_LAYERS[32]}


def test_trainer_default_head_width_is_the_builders():
    from visionkit.detection.model import HEAD_FILTERS
    from visionkit.detection.config import DEFAULT_HEAD_FILTERS

    assert DEFAULT_HEAD_FILTERS == HEAD_FILTERS


def test_saved_detector_round_trip(tmp_path, isolated_cache):
    from visionkit.detection.detector import load_detector

    path = make_tiny_detector(tmp_path / "tiny.keras")
    detector = load_detector(path)
    assert detector.class_names == ["square", "bar"] and detector.input_size == (64, 64)
    np.testing.assert_allclose(detector.extra["anchors"], ANCHORS)
    batch = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    assert detector.predict(batch).shape == (2, 2, 2, 3, 7)
