"""Class-folder datasets, splits, class weights, augmentation and scikit-learn heads (no training here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_class_folders
from visionkit.train import augment, data as folders
from visionkit.core.errors import DatasetError, UsageError


def test_scan_lists_classes_and_ignores_non_images(tmp_path):
    root = make_class_folders(tmp_path / "data", per_class=3)
    (root / "red" / "notes.txt").write_text("not an image")
    found = folders.scan_class_folders(root)
    assert found.class_names == ("blue", "red")
    assert found.counts() == {"blue": 3, "red": 3}
    assert [Path(p).name for p in found.ignored] == ["notes.txt"]


def test_empty_class_folder_and_single_class_are_clear_errors(tmp_path):
    root = make_class_folders(tmp_path / "data", per_class=2)
    (root / "green").mkdir()
    with pytest.raises(DatasetError, match="green: class folder holds no images"):
        folders.scan_class_folders(root)
    single = make_class_folders(tmp_path / "one", per_class=2, classes=("red",))
    with pytest.raises(DatasetError, match="at least 2 classes"):
        folders.scan_class_folders(single)
    with pytest.raises(DatasetError, match="no such folder"):
        folders.scan_class_folders(tmp_path / "missing")


def test_split_is_stratified_disjoint_and_seeded():
    labels = np.array([0] * 60 + [1] * 20)
    train, dev, test = folders.stratified_split(labels, [0.25, 0.25], seed=3)
    assert len(set(train) | set(dev) | set(test)) == 80 and len(train) + len(dev) + len(test) == 80
    assert np.bincount(labels[dev]).tolist() == [15, 5] and np.bincount(labels[test]).tolist() == [15, 5]
    again = folders.stratified_split(labels, [0.25, 0.25], seed=3)
    other = folders.stratified_split(labels, [0.25, 0.25], seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train, dev, test)))
    assert not np.array_equal(other[1], dev)


def test_given_split_folders_are_used(tmp_path):
    make_class_folders(tmp_path / "data" / "train", per_class=10)
    make_class_folders(tmp_path / "data" / "val", per_class=4, seed=1)
    splits = folders.make_splits(tmp_path / "data", train_dev_fraction=0.2)
    assert splits.given and len(splits.dev) == 8 and len(splits.test) == 0
    assert len(splits.train) == 16 and len(splits.train_dev) == 4


def test_balanced_class_weights():
    weights = folders.class_weights(np.array([0] * 30 + [1] * 10), 3)
    assert weights[0] == pytest.approx(40 / (2 * 30)) and weights[1] == pytest.approx(40 / (2 * 10))
    assert weights[2] == 1.0  # absent class


def test_decode_skips_corrupt_files_and_lists_them(tmp_path):
    root = make_class_folders(tmp_path / "data", per_class=3, size=40)
    (root / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "blue" / "empty.jpg").write_bytes(b"")
    found = folders.scan_class_folders(root)
    decoded = folders.decode(found, 32)
    assert decoded.pixels.shape == (6, 32, 32, 3) and len(decoded.files) == 6
    assert sorted(Path(f).name for f, _ in decoded.skipped) == ["broken.png", "empty.jpg"]
    assert all(reason for _, reason in decoded.skipped)
    assert decoded.rows_of(0, 4).tolist() == [0, 1, 2]  # blue's 3 good images; empty.jpg (position 0) skipped


def test_parse_augment_presets_and_errors():
    assert augment.parse_augment("standard") == ("flip", "crop", "rotate", "zoom", "colour")
    assert augment.parse_augment("mirror,color,pca") == ("flip", "colour", "pca")
    with pytest.raises(UsageError, match="cutout"):
        augment.parse_augment("flip,cutout")


def test_pca_colour_shift_follows_the_principal_axis(rng):
    # Pixels spread along the grey axis: the top eigenvector is (1, 1, 1)/sqrt(3).
    base = rng.uniform(0, 255, (5000, 1))
    pixels = np.clip(base + rng.normal(0, 2, (5000, 3)), 0, 255)
    values, vectors = augment.pca_colour_basis(pixels)
    top = np.abs(vectors[:, np.argmax(values)])
    assert top == pytest.approx(np.full(3, 1 / np.sqrt(3)), abs=0.01)
    shift = augment.pca_colour_shift(values, vectors, np.array([[0.0, 0.0, 0.1]]))[0]
    expected = 255 * 0.1 * values[2] * vectors[:, 2]
    assert shift == pytest.approx(expected)


def test_augmenter_changes_training_batches_only_within_range(rng):
    pixels = rng.integers(0, 256, (4, 40, 40, 3)).astype(np.float32)
    names = augment.parse_augment("all")
    basis = augment.pca_colour_basis(pixels)
    run = augment.build_augmenter(augment.AugmentConfig(names=names), (32, 32), basis, seed=1)
    out = np.asarray(run(pixels))
    assert out.shape == (4, 32, 32, 3) and out.min() >= 0 and out.max() <= 255
    plain = augment.build_augmenter(augment.AugmentConfig(names=()), (32, 32))
    centre = np.asarray(plain(pixels))
    assert np.array_equal(centre, pixels[:, 4:36, 4:36])
    assert not np.allclose(out, centre)


def test_sklearn_heads_fold_into_a_dense_layer(rng):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from visionkit.train.model import fit_linear_head, fold_linear

    for classes in (2, 3):
        features = rng.normal(size=(60, 5)) * [1, 10, 0.1, 3, 1] + [0, 5, 0, 0, 2]
        labels = np.arange(60) % classes
        features[:, 0] += labels * 2
        scaler = StandardScaler().fit(features)
        model = LogisticRegression(max_iter=1000).fit(scaler.transform(features), labels)
        kernel, bias = fold_linear(model.coef_, model.intercept_, scaler.mean_, scaler.scale_, classes)
        logits = features @ kernel + bias
        softmax = np.exp(logits - logits.max(1, keepdims=True))
        softmax /= softmax.sum(1, keepdims=True)
        assert softmax == pytest.approx(model.predict_proba(scaler.transform(features)), abs=1e-5)
        kernel, bias = fit_linear_head("svm", features, labels, classes, None, 0.0, 0)
        assert np.mean((features @ kernel + bias).argmax(1) == labels) > 0.6
