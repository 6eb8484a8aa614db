"""Fixtures and helpers the test folders share: the data folder beside the repository, an isolated cache, and tiny
data sets and models (class folders, YOLO labels, image/mask pairs, a detector, a face encoder) written on the fly."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VISIONKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
#: "1": a test whose shared data set is absent fails instead of skipping (CI sets it: a renamed or missing data set
#: must not turn into silent skips).
REQUIRE_DATA = "VISIONKIT_REQUIRE_DATA"

# Hashes trusted on first use are recorded outside the cache (visionkit.core.integrity); never in the user's own
# record while testing. A persistent test cache keeps its record beside it, so its conversions stay valid.
_TEST_CACHE = os.environ.get("VISIONKIT_TEST_CACHE")
os.environ.setdefault("VISIONKIT_HASH_RECORD", f"{_TEST_CACHE.rstrip('/')}.recorded_hashes.json" if _TEST_CACHE
                      else str(Path(tempfile.mkdtemp(prefix="visionkit-hashes-")) / "recorded_hashes.json"))


def shared_data(name: str) -> Path:
    """``../shared/data/<name>``, or skip the test with the reason when it is absent (fail with VISIONKIT_REQUIRE_DATA=1)."""
    path = SHARED_DATA / name
    if not path.exists():
        reason = f"needs the shared data set {path} (not present on this machine)"
        if os.environ.get(REQUIRE_DATA) == "1":
            pytest.fail(f"{reason}; {REQUIRE_DATA}=1 makes a missing data set a failure", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A fresh VISIONKIT_HOME (and record of trusted hashes) for tests that write to the cache."""
    monkeypatch.setenv("VISIONKIT_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VISIONKIT_HASH_RECORD", str(tmp_path / "recorded_hashes.json"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """One cache shared by the whole session, so the default model is converted once."""
    path = os.environ.get("VISIONKIT_TEST_CACHE") or str(tmp_path_factory.mktemp("visionkit-cache"))
    os.environ["VISIONKIT_HOME"] = path
    return Path(path)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --- tiny data sets -------------------------------------------------------------------------------------------


def make_class_folders(root: Path, per_class: int = 20, size: int = 32, classes=("blue", "red"), seed: int = 0) -> Path:
    """Tiny learnable data: noisy images whose dominant channel is the class (PNG, RGB)."""
    rng = np.random.default_rng(seed)
    channel = {"red": 0, "green": 1, "blue": 2}
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
            pixels[..., channel[name]] = rng.integers(150, 256, (size, size), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}_{i:03d}.png")
    return root


def write_image(path: Path, size=(64, 48), square=None) -> None:
    """A dark image (width x height = ``size``) with an optional bright square ``(x1, y1, x2, y2)``."""
    pixels = np.full((size[1], size[0], 3), 30, np.uint8)
    if square:
        x1, y1, x2, y2 = square
        pixels[y1:y2, x1:x2] = 230
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def make_yolo_dataset(root: Path, count: int = 6, size: int = 64, seed: int = 0) -> Path:
    """``count`` images, each with one bright square (class 0) or rectangle (class 1) labelled in YOLO txt."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        side = int(rng.integers(size // 4, size // 2))
        x1, y1 = (int(v) for v in rng.integers(0, size - side, 2))
        cls = i % 2
        x2, y2 = x1 + side, y1 + (side if cls == 0 else side // 2)
        write_image(root / "images" / f"im{i}.png", (size, size), (x1, y1, x2, y2))
        line = f"{cls} {(x1 + x2) / 2 / size:.5f} {(y1 + y2) / 2 / size:.5f} {(x2 - x1) / size:.5f} {(y2 - y1) / size:.5f}\n"
        (root / "labels").mkdir(parents=True, exist_ok=True)
        (root / "labels" / f"im{i}.txt").write_text(line)
    (root / "classes.txt").write_text("square\nbar\n")
    return root


def write_pair(root, stem, image, mask, mask_mode=None, image_ext=".jpg"):
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(root / "images" / f"{stem}{image_ext}", quality=95)
    Image.fromarray(mask, mode=mask_mode).save(root / "masks" / f"{stem}.png")


# --- tiny models ----------------------------------------------------------------------------------------------


ANCHORS = np.array([[0.2, 0.2], [0.5, 0.6], [0.8, 0.8]])


def tiny_backbone(size: int = 64):
    """Five stride-2 convolutions: feature maps at strides 2 … 32 (pixels in [0, 255] in)."""
    import keras

    inputs = keras.Input((size, size, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    for i, filters in enumerate((4, 8, 8, 16, 16), start=1):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", name=f"down{i}")(x)
    return keras.Model(inputs, x, name="tiny")


def make_tiny_detector(path, class_names=("square", "bar"), size: int = 64, anchors=ANCHORS, seed: int = 0):
    """An untrained detector saved as ``path`` (.keras + .json sidecar), loadable with ``--model path``."""
    import keras

    from visionkit.detection.model import yolo_v2
    from visionkit.core.registry import ModelSpec
    from visionkit.core.model import save_model

    keras.utils.set_random_seed(seed)
    model = yolo_v2(len(class_names), anchors, (size, size, 3), backbone=tiny_backbone(size), head_filters=8)
    spec = ModelSpec(name="tiny", task="detect", builder="visionkit.detection.model:yolo_v2", input_size=(size, size))
    save_model(model, path, spec, list(class_names), {"anchors": np.asarray(anchors).tolist()})
    return path


def make_tiny_encoder(path, size: int = 32, dim: int = 8, filters: int = 8, kernel: int = 3, strides: int = 2,
                      seed: int = 0, **extra) -> str:
    """An untrained face encoder (``size``² in, ``dim``-d unit out: one convolution and a dense layer) saved like a
    trained one as ``path``; ``extra`` goes into its sidecar (threshold, alignment, border, mirror)."""
    import keras

    from visionkit.core.registry import ModelSpec
    from visionkit.core.model import save_model

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(filters, kernel, strides=strides, activation="relu")(x)
    x = keras.layers.Dense(dim)(keras.layers.Flatten()(x))
    spec = ModelSpec(name=Path(path).stem, task="face-encoder", builder="", input_size=(size, size))
    save_model(keras.Model(inputs, keras.layers.UnitNormalization()(x)), path, spec, [], extra=extra)
    return str(path)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A small untrained encoder (32×32 in, 8-d unit out) saved like a trained one, threshold 1.0 in its sidecar."""
    return make_tiny_encoder(tmp_path_factory.mktemp("encoder") / "tiny.keras", threshold=1.0, threshold_source="test")


@pytest.fixture(scope="session")
def att():
    return shared_data("att_faces")


def two_faces(att) -> np.ndarray:
    """A 400×300 canvas with a large face (s1) and a small one (s2)."""
    import cv2

    from visionkit.core.io import load_image

    canvas = np.full((300, 400, 3), 128, np.uint8)
    big = cv2.resize(load_image(att / "s1" / "1.png"), (138, 168))
    small = load_image(att / "s2" / "1.png")
    canvas[60:228, 20:158] = big
    canvas[100:212, 260:352] = small
    return canvas
