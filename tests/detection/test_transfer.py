"""Fine-tuning from a darknet YOLOv3-style detector: resize, re-head, freeze by darknet layer, the YOLOv3 loss,
``detect train --from`` end to end (tiny: a 2-head cfg of a few filters, 64 px)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from tests.conftest import make_yolo_dataset
from tests.detection.tiny_darknet import import_tiny_darknet
from visionkit.core.errors import UsageError

TINY = {"input_size": 64, "batch_size": 4, "augment": False, "frozen_epochs": 1, "epochs": 2}


@pytest.fixture()
def tiny_v3(tmp_path, isolated_cache):
    """A 2-head darknet detector (7 classes: c0, square, c2, Bar, c4 …) imported as ``tiny_v3``."""
    return import_tiny_darknet(tmp_path / "darknet")


def test_freeze_counts_darknet_layers(tiny_v3):
    from visionkit.detection.detector import load_detector
    from visionkit.detection.transfer import frozen_indices, layer_index, parse_freeze, set_trainable, start_from

    start = start_from(load_detector(tiny_v3), tiny_v3, (96, 96), num_classes=2)
    assert [tuple(o.shape[1:]) for o in start.model.outputs] == [(3, 3, 2, 7), (6, 6, 2, 7)]  # re-headed at 96
    assert start.head_convs == ["conv_11", "conv_16"] and start.shared == set(range(11))  # 0-10 feed both heads
    assert start.heads[0]["stride"] == 32 and start.heads[0]["grid"] == [3, 3]
    assert start.heads[0]["anchors"] == [[20 / 64, 20 / 64], [40 / 64, 36 / 64]]  # fractions of the input, kept
    assert layer_index("conv_12") == 12 and layer_index("route_20_group1") == 20 and layer_index("pixels") is None
    assert frozen_indices(start, parse_freeze("backbone")) == set(range(11))
    assert frozen_indices(start, parse_freeze("3")) == {0, 1, 2}
    assert frozen_indices(start, parse_freeze("none")) == set()
    every = set_trainable(start, frozen_indices(start, "all"))
    heads_only = sum(int(np.prod(w.shape)) for name in start.head_convs for w in start.model.get_layer(name).weights)
    assert every == heads_only == (16 + 1) * 14 + (32 + 1) * 14  # conv_11 reads 16 channels, conv_16 16 + 16
    assert all(not start.model.get_layer(f"conv_{i}").trainable for i in (0, 2, 4, 6, 8, 10))
    with pytest.raises(UsageError, match="--freeze takes a number"):
        parse_freeze("half")
    with pytest.raises(UsageError, match="darknet layers 0-17"):
        frozen_indices(start, 40)


def test_resized_detector_keeps_the_weights(tiny_v3):
    """At another input size the cfg is rebuilt and every weight copied (darknet weights do not depend on it);
    at its own size the model is used as it is."""
    from visionkit.detection.detector import load_detector
    from visionkit.detection.transfer import start_from

    detector = load_detector(tiny_v3)
    big = start_from(detector, tiny_v3, (128, 128), num_classes=None)
    assert big.class_names == detector.class_names
    assert big.model is not detector.model and big.model.input_shape == (None, 128, 128, 3)
    assert len(big.model.weights) == len(detector.model.weights) == 2 * 8
    for a, b in zip(detector.model.weights, big.model.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert start_from(detector, tiny_v3, (64, 64), num_classes=None).model is detector.model


def test_an_imported_cfg_is_found_from_any_folder_and_a_changed_one_is_refused(tmp_path, isolated_cache,
                                                                              monkeypatch):
    """import-darknet records the cfg's absolute path and sha256: ``--from`` rebuilds it from another working folder,
    and a cfg edited since the import gets one clear error instead of a model that does not fit its weights."""
    from pathlib import Path

    from tests.detection.tiny_darknet import TINY_V3
    from visionkit.core.errors import ModelError
    from visionkit.core.integrity import file_hash
    from visionkit.detection.detector import load_detector
    from visionkit.detection.transfer import start_from

    monkeypatch.chdir(tmp_path)
    name = import_tiny_darknet(Path("darknet"), "relative_v3")  # imported as darknet/tiny.cfg
    cfg = tmp_path / "darknet" / "tiny.cfg"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    detector = load_detector(name)
    assert detector.extra["cfg"] == str(cfg) and detector.extra["cfg_sha256"] == file_hash(cfg)
    start = start_from(detector, name, (96, 96), num_classes=2)  # another size: the cfg is read again
    assert start.cfg == str(cfg) and start.cfg_sha256 == file_hash(cfg)
    cfg.write_text(TINY_V3.replace("filters=4", "filters=6", 1))
    with pytest.raises(ModelError, match=rf"--from {name}: its darknet cfg {cfg} has changed since the detector was "
                                         r"made \(sha256 [0-9a-f]{12}…, recorded [0-9a-f]{12}…\)"):
        start_from(detector, name, (96, 96), num_classes=2)


def test_yolov3_loss_assigns_each_box_to_the_head_of_its_best_anchor():
    import tensorflow as tf

    from visionkit.detection.loss import assign_targets, yolo3_head_loss

    anchors = np.array([[0.1, 0.1], [0.2, 0.2], [0.5, 0.5], [0.8, 0.8]], np.float32)
    y = np.array([[[0.40, 0.40, 0.52, 0.52, 1], [0.1, 0.1, 0.6, 0.6, 0], [0, 0, 0, 0, -1]]], np.float32)
    fine = assign_targets(tf.constant(y), (4, 4, 2), tf.constant(anchors[:2]), tf.constant(anchors), 0)
    coarse = assign_targets(tf.constant(y), (2, 2, 2), tf.constant(anchors[2:]), tf.constant(anchors), 2)
    assert np.argwhere(fine[0].numpy()).tolist() == [[0, 1, 1, 0]]  # 0.12 box: anchor 0, cell (1, 1) of 4x4
    assert np.argwhere(coarse[0].numpy()).tolist() == [[0, 0, 0, 0]]  # 0.5 box: anchor 2 = coarse head's first
    assert fine[3].numpy()[0, 1, 1, 0] == 1 and coarse[3].numpy()[0, 0, 0, 0] == 0

    def perfect(grid, first, count):
        mask, txy, twh, cls, _, _ = (t.numpy() for t in assign_targets(
            tf.constant(y), (grid, grid, count), tf.constant(anchors[first:first + count]), tf.constant(anchors),
            first))
        raw = np.zeros((1, grid, grid, count, 7), np.float32)
        raw[..., 4] = -30
        raw[..., 5:] = -30
        eps = 1e-6
        raw[..., :2] = np.log(np.clip(txy, eps, 1 - eps) / (1 - np.clip(txy, eps, 1 - eps)))
        raw[..., 2:4] = twh
        on = mask > 0
        raw[..., 4][on] = 30
        raw[..., 5:][on, cls[on]] = 30
        return raw, mask

    for grid, first in ((4, 0), (2, 2)):
        raw, mask = perfect(grid, first, 2)
        best = yolo3_head_loss(y, raw, anchors, first, ignore_iou=0.5).numpy()[0]
        # what is left is the entropy of the soft xy targets (BCE is not 0 at a target in (0, 1))
        worse = raw.copy()
        worse[..., 2][mask > 0] += 0.5
        assert yolo3_head_loss(y, worse, anchors, first).numpy()[0] > best + 0.05
        wrong_class = raw.copy()
        wrong_class[..., 5:][mask > 0] *= -1
        assert yolo3_head_loss(y, wrong_class, anchors, first).numpy()[0] > best + 10


@pytest.mark.slow  # trains a model
def test_train_from_a_darknet_detector_rehead_resume_and_keep_classes(tmp_path, tiny_v3):
    from visionkit.detection.detector import load_detector
    from visionkit.detection.predict import detect
    from visionkit.detection.train import train

    data = make_yolo_dataset(tmp_path / "data", count=10)
    run = train(data, tmp_path / "run", quiet=True, from_model=tiny_v3, freeze="backbone", **TINY)
    saved = json.loads((tmp_path / "run" / "model.json").read_text())
    assert saved["class_names"] == ["square", "bar"] and saved["extra"]["from_model"] == tiny_v3
    cfg = tmp_path / "darknet" / "tiny.cfg"  # the fine-tuned model can be fine-tuned again, from anywhere
    assert saved["spec"]["options"]["cfg"] == str(cfg)
    assert saved["spec"]["options"]["cfg_sha256"] == hashlib.sha256(cfg.read_bytes()).hexdigest()
    assert run.anchors == ((0.3125, 0.3125), (0.625, 0.5625), (0.09375, 0.09375), (0.15625, 0.1875))  # kept
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["input_size"] == 64 and config["freeze"] == "backbone" and config["ignore_iou"] is None
    detector = load_detector(run.model_path)
    assert [h["grid"] for h in detector.extra["heads"]] == [[2, 2], [4, 4]]
    assert detector.extra["class_activation"] == "logistic"
    found = detect(data / "images" / "im0.png", detector, conf=0.0, max_det=3, classes=["bar"])[0]
    assert len(found) == 3 and {b.label for b in found.boxes} == {"bar"}
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "yolo_12_loss" in history[0] and "yolo_17_loss" in history[0]  # one loss per head

    (tmp_path / "run" / "model.keras").unlink()  # killed after phase one: resume finishes it
    (tmp_path / "run" / "state.json").write_text(json.dumps({"phase1": "done"}))
    resumed = train(data, tmp_path / "run", resume=True, quiet=True)
    assert (tmp_path / "run" / "model.keras").is_file() and resumed.anchors == run.anchors

    kept = train(data, tmp_path / "kept", quiet=True, from_model=tiny_v3, keep_classes=True, refit_anchors=True,
                 freeze="all", **TINY)
    detector = load_detector(kept.model_path)
    assert detector.class_names == ["c0", "square", "c2", "Bar", "c4", "c5", "c6"]  # 'bar' matched 'Bar'
    held_out = kept.evaluation.positives  # evaluated on the model's classes: only square (1) and Bar (3) have boxes
    assert sum(held_out) == 2 and set(np.flatnonzero(held_out)) <= {1, 3}
    assert kept.anchors != run.anchors and len(kept.anchors) == 4  # k-means, two per head


def test_from_needs_a_darknet_multi_head_detector(tmp_path, isolated_cache):
    from tests.conftest import make_tiny_detector
    from visionkit.detection.train import train

    data = make_yolo_dataset(tmp_path / "data", count=6)
    model = make_tiny_detector(tmp_path / "v2.keras")
    with pytest.raises(UsageError, match="YOLOv2-style detector"):
        train(data, tmp_path / "run", quiet=True, from_model=str(model), **TINY)
    with pytest.raises(UsageError, match="give --from"):
        train(data, tmp_path / "run2", quiet=True, freeze="backbone", **TINY)
