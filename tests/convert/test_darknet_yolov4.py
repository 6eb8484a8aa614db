"""YOLOv3/v4 semantics of the darknet converter, checked against OpenCV's darknet reader (``cv2.dnn``).

No YOLOv4 weights exist offline, so a small cfg using every YOLOv4 feature (mish, swish, relu, logistic, route
groups, absolute route indices, grouped convolution, max-pool stride 1 with sizes 2 and 5, shortcut, upsample,
two [yolo] heads with scale_x_y) gets random weights written by ``darknet_reference`` (which shares nothing with the
converter); both readers convert it and their outputs are compared: the raw head tensors and the decoded boxes,
objectness and class scores of cv2's own [yolo] layers. The official cfgs in ``data/darknet`` are built and their
sizes checked against the published weights files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.convert.darknet_reference import (cfg_text, conv, cv2_head_layers, line_of, maxpool, section,
                                            write_random_weights, yolo)
from visionkit.core.errors import ModelError, WeightsError

DATA = Path(__file__).parent / "data" / "darknet"

V4_ANCHORS = [(4, 6), (8, 10), (12, 20), (20, 16), (30, 40), (50, 60)]
SYNTHETIC_V4 = cfg_text(
    conv(8, activation="mish"),  # 0
    conv(16, stride=2),  # 1: 32 x 32
    section("route", layers=-1, groups=2, group_id=1),  # 2: the second half of layer 1's channels (CSP, YOLOv4-tiny)
    conv(8, activation="swish"),  # 3
    conv(8, groups=2, activation="relu"),  # 4: grouped convolution
    section("shortcut", **{"from": -2}, activation="linear"),  # 5
    section("route", layers=[-1, 1]),  # 6: relative and absolute indices
    maxpool(),  # 7: 16 x 16
    maxpool(size=5, stride=1),  # 8: SPP-style
    section("route", layers=[-1, -2]),  # 9
    maxpool(stride=1),  # 10: darknet pads one row and column after
    conv(16, size=1, activation="logistic"),  # 11
    conv(27, size=1, activation="linear", batch_normalize=False),  # 12: 3 anchors x (5 + 4 classes)
    yolo([3, 4, 5], V4_ANCHORS, 4, scale_x_y=1.1, thresh=0, iou_loss="ciou", nms_kind="greedynms", beta_nms=0.6),
    section("route", layers=-3),  # 14
    conv(8, size=1),  # 15
    section("upsample", stride=2),  # 16: 32 x 32
    section("route", layers=[-1, 5]),  # 17
    conv(16, activation="mish"),  # 18
    conv(27, size=1, activation="linear", batch_normalize=False),  # 19
    yolo([0, 1, 2], V4_ANCHORS, 4, scale_x_y=1.05, thresh=0),  # 20
)


@pytest.fixture(scope="module")
def cv2_dnn():
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):
        pytest.skip(f"OpenCV {cv2.__version__} has no cv2.dnn.readNetFromDarknet (dropped in OpenCV 5); "
                    f"pip install 'opencv-python-headless<5'")
    return cv2


def compare_with_cv2(cv2, cfg: Path, weights: Path, images: np.ndarray, thresh: float = 0.2):
    """(max |raw diff| per head, max |decoded diff|) of visionkit against cv2.dnn on the same cfg + weights.

    cv2's [yolo] rows are (x, y, w, h, objectness, objectness x class probability), the class scores set to 0 where
    they are not above the [yolo] section's ``thresh`` (OpenCV's default 0.2); ours are thresholded the same way.
    """
    from visionkit.convert.darknet import convert_darknet
    from visionkit.detection.decode import decode

    converted = convert_darknet(cfg, weights)
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    feeds, yolo = cv2_head_layers(net)
    size = converted.model.input_shape[1:3]
    raw_diff, decoded_diff = np.zeros(len(feeds)), 0.0
    for image in images:
        ours = converted.model(image[None].astype(np.float32))
        net.setInput(cv2.dnn.blobFromImage(image, 1 / 255.0, size[::-1], swapRB=False, crop=False))
        outputs = net.forward(feeds + yolo)
        for k, (mine, head) in enumerate(zip(ours, converted.heads)):
            mine = np.asarray(mine)[0]
            theirs = outputs[k][0].transpose(1, 2, 0).reshape(mine.shape)  # NCHW -> (S_h, S_w, B, 5 + C)
            raw_diff[k] = max(raw_diff[k], np.abs(mine - theirs).max())
            boxes, objectness, probs = decode(mine, head["anchors"], head["scale_x_y"], "logistic")
            centre = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)
            scores = objectness[:, None] * probs
            scored = np.concatenate([centre, objectness[:, None], np.where(scores > thresh, scores, 0.0)], axis=1)
            decoded_diff = max(decoded_diff, np.abs(scored - outputs[len(feeds) + k]).max())
    return converted, raw_diff, decoded_diff


def test_yolov4_features_match_cv2_dnn(cv2_dnn, tmp_path):
    (tmp_path / "v4.cfg").write_text(SYNTHETIC_V4)
    write_random_weights(tmp_path / "v4.weights", SYNTHETIC_V4, seed=3)
    images = np.random.default_rng(4).uniform(0, 255, (3, 64, 64, 3))
    converted, raw_diff, decoded_diff = compare_with_cv2(cv2_dnn, tmp_path / "v4.cfg", tmp_path / "v4.weights", images,
                                                         thresh=0.0)
    assert [h["grid"] for h in converted.heads] == [[16, 16], [32, 32]]
    assert [h["scale_x_y"] for h in converted.heads] == [1.1, 1.05]
    np.testing.assert_allclose(converted.heads[0]["anchors"], np.array([[20, 16], [30, 40], [50, 60]]) / 64)
    assert converted.trailing_bytes == 0 and converted.header == (0, 2, 5, 64000)
    assert raw_diff.max() < 1e-4, raw_diff
    assert decoded_diff < 1e-5, decoded_diff


def test_decode_without_scale_x_y_would_not_match(cv2_dnn, tmp_path):
    """The comparison above can fail: decoding the heads as YOLOv3 (scale_x_y = 1) moves the centres."""
    from visionkit.convert.darknet import convert_darknet
    from visionkit.detection.decode import decode

    (tmp_path / "v4.cfg").write_text(SYNTHETIC_V4)
    write_random_weights(tmp_path / "v4.weights", SYNTHETIC_V4, seed=3)
    converted = convert_darknet(tmp_path / "v4.cfg", tmp_path / "v4.weights")
    raw = np.asarray(converted.model(np.full((1, 64, 64, 3), 100.0, np.float32))[0])[0]
    stretched, _, _ = decode(raw, converted.heads[0]["anchors"], 1.1, "logistic")
    plain, _, _ = decode(raw, converted.heads[0]["anchors"], 1.0, "logistic")
    assert np.abs(stretched - plain).max() > 1e-3


@pytest.mark.parametrize("name, published_bytes", [
    ("yolov3.cfg", 248_007_048),  # pjreddie.com/media/files/yolov3.weights
    ("yolov4.cfg", 257_717_640),  # AlexeyAB darknet release darknet_yolo_v3_optimal/yolov4.weights
    ("yolov4-tiny.cfg", 24_251_276),  # AlexeyAB darknet release darknet_yolo_v4_pre/yolov4-tiny.weights
])
def test_official_cfgs_read_exactly_the_published_weights_files(name, published_bytes):
    """Each official cfg builds, and needs exactly the floats its published weights file holds (20-byte header)."""
    from visionkit.convert.darknet import darknet_architecture

    built = darknet_architecture(DATA / name)
    assert 20 + 4 * built.values == published_bytes
    assert built.num_classes == 80 and built.class_activation == "logistic"
    grids = sorted(h["grid"][0] for h in built.heads)
    side = built.model.input_shape[1]
    assert grids == ([side // 32, side // 16, side // 8] if name != "yolov4-tiny.cfg" else [side // 32, side // 16])


def test_official_yolov4_tiny_cfg_with_random_weights_matches_cv2_dnn(cv2_dnn, tmp_path):
    cfg = DATA / "yolov4-tiny.cfg"
    write_random_weights(tmp_path / "v4tiny.weights", cfg.read_text(), seed=5)
    images = np.random.default_rng(6).uniform(0, 255, (1, 416, 416, 3))
    converted, raw_diff, decoded_diff = compare_with_cv2(cv2_dnn, cfg, tmp_path / "v4tiny.weights", images)
    assert len(converted.heads) == 2 and [h["scale_x_y"] for h in converted.heads] == [1.05, 1.05]
    assert raw_diff.max() < 1e-3, raw_diff
    assert decoded_diff < 1e-4, decoded_diff


def _variant(tmp_path, old: str, new: str, name: str = "bad") -> Path:
    assert old in SYNTHETIC_V4
    path = tmp_path / f"{name}.cfg"
    path.write_text(SYNTHETIC_V4.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old, new, at, message", [
    ("[shortcut]\nfrom=-2\n", "[shortcut]\nfrom=-2\nweights_type=per_channel\n", "weights_type",
     r"\[shortcut\] weights_type=per_channel is not supported"),
    ("scale_x_y=1.1\n", "scale_x_y=1.1\nnew_coords=1\n", "new_coords", r"\[yolo\] new_coords=1 is not supported"),
    ("groups=2\nactivation=relu", "groups=2\nxnor=1\nactivation=relu", "xnor", r"\[convolutional\] xnor=1"),
    ("groups=2\nactivation=relu", "groups=2\nmystery=3\nactivation=relu", "mystery",
     r"\[convolutional\] key mystery= is not supported"),
    ("layers=-1,1\n", "layers=-1,9\n", "layers=-1,9", r"\[route\] layers= refers to layer 9, but layer 6"),
    ("layers=-3\n", "layers=-1\n", None, r"\[route\] layers= refers to layer 13, a detection head"),
    ("activation=mish\n", "activation=gelu\n", "activation=gelu",
     r"\[convolutional\] activation=gelu is not supported"),
    ("[upsample]", "[gaussian_yolo]", "[gaussian_yolo]", r"\[gaussian_yolo\] \(layer 16\): darknet section"),
    ("classes=4\nnum=6\nscale_x_y=1.05", "classes=3\nnum=6\nscale_x_y=1.05", "classes=3",
     r"\[yolo\] classes=3, but an earlier"),
    ("filters=27\n", "filters=26\n", None, r"\[yolo\] needs 3 x \(5 \+ 4\) = 27 input channels"),
])
def test_unsupported_or_inconsistent_cfgs_get_one_clear_error(tmp_path, old, new, at, message):
    """One error naming the cfg file, the line (``at``: the line of the variant that starts so; None: some line) and
    what is wrong there."""
    import re

    from visionkit.convert.darknet import darknet_architecture

    path = _variant(tmp_path, old, new)
    where = re.escape(f"{path}: ") + rf"cfg line {line_of(path.read_text(), at) if at else '[0-9]+'}: "
    with pytest.raises(ModelError, match="^" + where + message):
        darknet_architecture(path)


def test_weights_problems_get_one_clear_error(tmp_path):
    from visionkit.convert.darknet import convert_darknet

    (tmp_path / "v4.cfg").write_text(SYNTHETIC_V4)
    write_random_weights(tmp_path / "v4.weights", SYNTHETIC_V4)
    data = (tmp_path / "v4.weights").read_bytes()
    last_conv = line_of(SYNTHETIC_V4, "[convolutional]", -1)
    cases = {
        "page.weights": (b"<!DOCTYPE html>\n<html><body>Not Found</body></html>", "is an HTML/XML page"),
        "lfs.weights": (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n", "is a git-lfs pointer"),
        "tiny.weights": (data[:10], "too short for a darknet weights file"),
        "short.weights": (data[:-40], rf"the weights end before the kernel of layer 19 \(cfg line {last_conv}"),
        "odd.weights": (np.array([5000, 1, 0, 0], "<i4").tobytes() + data[16:], "format 5000.1.0"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(WeightsError, match=message):
            convert_darknet(tmp_path / "v4.cfg", tmp_path / name)
    (tmp_path / "long.weights").write_bytes(data + b"\x01" * 10)  # darknet ignores what it does not read
    assert convert_darknet(tmp_path / "v4.cfg", tmp_path / "long.weights").trailing_bytes == 10


def test_multi_head_import_round_trips_through_a_keras_file(tmp_path, isolated_cache):
    """``import_darknet`` saves the list-of-heads model and its decoding metadata; loading gives the same outputs."""
    from visionkit.convert.darknet import convert_darknet, import_darknet
    from visionkit.core.model import load_model_file

    (tmp_path / "v4.cfg").write_text(SYNTHETIC_V4)
    write_random_weights(tmp_path / "v4.weights", SYNTHETIC_V4, seed=3)
    path = import_darknet(tmp_path / "v4.cfg", tmp_path / "v4.weights", "tiny_v4", names=list("abcd"))
    loaded = load_model_file(path)
    converted = convert_darknet(tmp_path / "v4.cfg", tmp_path / "v4.weights")
    assert loaded.class_names == list("abcd") and loaded.spec.task == "detect"
    assert loaded.extra["heads"] == converted.heads == loaded.spec.options["heads"]
    assert loaded.extra["class_activation"] == "logistic" and loaded.extra["trailing_bytes"] == 0
    image = np.random.default_rng(7).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    for a, b in zip(loaded.model(image), converted.model(image)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_registry_cfg_is_checked_against_its_pinned_sha256(tmp_path, isolated_cache):
    import hashlib

    from visionkit.convert.darknet import registry_detector
    from visionkit.core.registry import ModelSpec, WeightsSource

    (tmp_path / "v4.cfg").write_text(SYNTHETIC_V4)
    write_random_weights(tmp_path / "v4.weights", SYNTHETIC_V4)
    good = hashlib.sha256(SYNTHETIC_V4.encode()).hexdigest()
    spec = ModelSpec(name="v4_remote", task="detect", builder="visionkit.convert.darknet:registry_detector",
                     options={"cfg_url": (tmp_path / "v4.cfg").as_uri(), "cfg_sha256": "0" * 64},
                     weights=WeightsSource(source="url", url=(tmp_path / "v4.weights").as_uri()))
    with pytest.raises(WeightsError, match=r"hash mismatch: .*v4.cfg does not match the registry's hash 000000000000"):
        registry_detector(spec)
    spec = ModelSpec(**{**spec.__dict__, "options": {**spec.options, "cfg_sha256": good}})
    assert registry_detector(spec).is_file()
