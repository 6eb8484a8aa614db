"""finetune end to end on tiny data (LeNet-5 from scratch), freezing rules, and the saved model working with classify."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_class_folders, shared_data
from visionkit.core.errors import UsageError


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One short LeNet-5 run shared by the tests below (a corrupt file included)."""
    import visionkit

    root = tmp_path_factory.mktemp("finetune")
    data = make_class_folders(root / "data", per_class=16)
    (data / "red" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    run = visionkit.finetune(data, output=root / "run", base="lenet5", weights="none", epochs=3, batch_size=8,
                             learning_rate=3e-3, dev_fraction=0.25, test_fraction=0.25, train_dev_fraction=0.2,
                             augment="flip", quiet=True)
    return data, run


@pytest.mark.slow  # trains a model
def test_run_folder_holds_model_history_curves_and_report(tiny_run):
    _, run = tiny_run
    folder = Path(run.run_dir)
    for name in ("model.keras", "model.json", "history.csv", "curves.png", "report.json", "report.md",
                 "confusion.png", "misclassified.csv", "config.json"):
        assert (folder / name).is_file(), name
    assert not (folder / "backup").exists() and not (folder / "phase1.weights.h5").exists()
    from visionkit.core.callbacks import read_history

    history = read_history(folder / "history.csv")
    assert [row["epoch"] for row in history] == [0, 1, 2] and all(row["seconds"] > 0 for row in history)
    report = json.loads((folder / "report.json").read_text())
    assert report["split"] == "test" and report["class_names"] == ["blue", "red"]
    assert set(report["errors"]) == {"train", "train-dev", "dev", "test"}
    assert report["diagnosis"]["dominant"] in ("avoidable bias", "variance", "data mismatch", "dev overfitting", "none")
    assert len(report["per_class"]) == 2 and sum(map(sum, report["confusion"])) == report["count"]


@pytest.mark.slow  # trains a model
def test_corrupt_image_is_skipped_listed_and_training_went_on(tiny_run):
    _, run = tiny_run
    assert [Path(f).name for f, _ in run.report.skipped] == ["corrupt.jpg"]
    assert any("corrupt.jpg" in note for note in run.notes)
    assert "corrupt.jpg" in Path(run.report.files["markdown"]).read_text()


@pytest.mark.slow  # trains a model
def test_learns_the_tiny_task_and_classify_reads_the_saved_model(tiny_run):
    import visionkit

    data, run = tiny_run
    assert run.report.accuracy >= 0.75, run.report.errors
    results = visionkit.classify(sorted((data / "red").glob("red_00*.png"))[:4], model=run.model_path, top_k=1)
    assert [r.label for r in results].count("red") >= 3


@pytest.mark.slow  # trains a model
def test_evaluate_on_a_labelled_folder_uses_the_training_errors(tiny_run, tmp_path):
    import visionkit

    data, run = tiny_run
    report = visionkit.evaluate(run.model_path, data, output=tmp_path / "eval")
    assert report.count == 32 and len(report.skipped) == 1
    assert report.diagnosis is not None and "train" in report.errors
    assert (tmp_path / "eval" / "report.md").is_file() and (tmp_path / "eval" / "confusion.png").is_file()


@pytest.mark.slow  # trains a model
def test_resume_of_a_finished_run_and_bad_options_are_refused(tiny_run, tmp_path):
    import visionkit

    data, run = tiny_run
    with pytest.raises(UsageError, match="has finished"):
        visionkit.finetune(data, output=run.run_dir, resume=True, quiet=True)
    with pytest.raises(UsageError, match="without pretrained weights"):
        visionkit.finetune(data, output=tmp_path / "x", base="lenet5", quiet=True)
    with pytest.raises(UsageError, match="freeze"):
        visionkit.finetune(data, output=tmp_path / "y", freeze="some", quiet=True)
    with pytest.raises(UsageError, match="augmentation cannot change features"):
        visionkit.finetune(data, output=tmp_path / "w", cache_features=True, augment="flip", quiet=True)
    with pytest.raises(UsageError, match="unknown finetune setting"):
        visionkit.finetune(data, output=tmp_path / "z", learning_rat=0.1)


@pytest.mark.slow  # trains a model
def test_frozen_backbone_keeps_batch_norm_statistics_in_phase_two():
    """A pretrained backbone runs in inference mode: training the unfrozen top must not move BN statistics."""
    import keras

    from visionkit.train import model as fm

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Conv2D(4, 3, name="conv2")(x)
    backbone = keras.Model(inputs, keras.layers.BatchNormalization(name="bn2")(x))
    frozen = fm.apply_freeze(backbone, "all")
    assert frozen == 4
    model, features = fm.transfer_model(backbone, fm.make_head(2, 0.0), (8, 8, 3))
    assert features.output_shape == (None, 4)
    assert fm.apply_freeze(backbone, 3) == 3 and backbone.get_layer("conv2").trainable  # layers[:3] + every BN
    assert not backbone.get_layer("bn2").trainable
    assert fm.unfreeze_top(backbone, 1) == 1 and not backbone.get_layer("conv1").trainable
    before = [v.copy() for v in backbone.get_layer("bn2").get_weights()[2:]]
    kernel_before = backbone.get_layer("conv2").get_weights()[0].copy()
    model.compile("sgd", "sparse_categorical_crossentropy")
    pixels = np.random.default_rng(0).uniform(0, 255, (16, 8, 8, 3)).astype("float32")
    model.fit(pixels, np.arange(16) % 2, epochs=1, verbose=0)
    after = backbone.get_layer("bn2").get_weights()[2:]
    assert all(np.array_equal(a, b) for a, b in zip(before, after)), "moving statistics changed"
    assert not np.array_equal(kernel_before, backbone.get_layer("conv2").get_weights()[0])
    assert fm.parse_freeze("12") == 12 and fm.parse_freeze("ALL") == "all"


def test_bundled_ants_bees_model_loads_by_name_and_classifies(model_cache):
    """The registry entry (source "bundled") rebuilds the architecture and loads the shipped weights."""
    import visionkit

    data = shared_data("hymenoptera")
    images = sorted((data / "train" / "ants").glob("*.jpg"))[:2] + sorted((data / "train" / "bees").glob("*.jpg"))[:2]
    results = visionkit.classify(images, model="hymenoptera_efficientnet_lite0", top_k=2)
    assert [r.top[0].label for r in results] == ["ants", "ants", "bees", "bees"]
    assert all(abs(sum(p.score for p in r.top) - 1) < 1e-4 for r in results)
