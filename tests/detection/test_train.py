"""``detect train`` end to end on a tiny data set and backbone: run folder, saved model, evaluation, resume."""

from __future__ import annotations

import json

import numpy as np

import pytest

from tests.conftest import make_yolo_dataset
from visionkit.core.errors import DatasetError, UsageError

TINY = {"base": "tiny_functional_cnn", "input_size": 64, "anchors": 2, "batch_size": 4, "head_filters": 8, "augment": False}


@pytest.mark.slow  # trains a model
def test_train_writes_a_usable_run_and_resumes(tmp_path, isolated_cache):
    from visionkit.detection.anchors import mean_best_iou
    from visionkit.detection.data import load_detection_data
    from visionkit.detection.detector import load_detector
    from visionkit.detection.predict import detect
    from visionkit.detection.train import train

    data = make_yolo_dataset(tmp_path / "data", count=10)
    run = train(data, tmp_path / "run", quiet=True, frozen_epochs=1, epochs=2, val_fraction=0.2, **TINY)
    folder = tmp_path / "run"
    for name in ("model.keras", "model.json", "history.csv", "curves.png", "metrics.json", "pr_curve.png",
                 "config.json", "split.json", "phase1.weights.h5"):
        assert (folder / name).is_file(), name
    history = (folder / "history.csv").read_text().splitlines()
    assert len(history) == 3 and ",frozen," in history[1] and ",fine-tune," in history[2]
    assert run.epochs == 2 and len(run.anchors) == 2 and 0 < run.anchor_iou <= 1
    assert run.evaluation.images == 2 and json.loads((folder / "metrics.json").read_text())["images"] == 2
    split = json.loads((folder / "split.json").read_text())
    assert len(split["train"]) == 8 and not set(split["train"]) & set(split["val"])
    train_set, _ = load_detection_data(data).split(0.2, 0)  # the run's seeded split, redone here
    assert [a.image for a in train_set.items] == split["train"]
    assert run.anchor_iou == pytest.approx(mean_best_iou(train_set.box_shapes(), np.array(run.anchors)), abs=1e-3)
    detector = load_detector(run.model_path)  # the saved file alone is enough to predict
    assert detector.class_names == ["square", "bar"] and detector.extra["anchors"] == [list(a) for a in run.anchors]
    assert detect(data / "images" / "im0.png", detector, conf=0.0, max_det=1)[0].boxes
    with pytest.raises(UsageError, match="has finished"):
        train(data, folder, resume=True, quiet=True)

    # an interrupted run: phase one done, phase two not -> resume loads phase one and finishes
    (folder / "model.keras").unlink()
    (folder / "state.json").write_text(json.dumps({"phase1": "done"}))
    resumed = train(data, folder, resume=True, quiet=True)
    assert (folder / "model.keras").is_file() and resumed.anchors == run.anchors


def test_bad_labels_stop_before_training(tmp_path, isolated_cache):
    from visionkit.detection.train import train

    data = make_yolo_dataset(tmp_path / "data", count=6)
    (data / "labels" / "im2.txt").write_text("5 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DatasetError, match=r"im2.txt:1: unknown class id 5"):
        train(data, tmp_path / "run", quiet=True, **TINY)
    assert not (tmp_path / "run").exists()  # the run folder is made once the labels are read
    with pytest.raises(UsageError, match="multiple"):
        train(make_yolo_dataset(tmp_path / "d2"), tmp_path / "run2", quiet=True, **{**TINY, "input_size": 50})
