"""The official YOLOv3-tiny COCO weights (``../shared/data/weights``) converted, against OpenCV's darknet reader.

Same cfg + weights in both, same letterboxed canvas (visionkit's :func:`~visionkit.detection.boxes.letterbox`, fed to
``cv2.dnn.blobFromImage`` unchanged): the raw head tensors agree to ~1e-4 (float32 summation order) and the
final detections (decode + visionkit NMS vs cv2's [yolo] layer + ``cv2.dnn.NMSBoxesBatched``, the same
thresholds) are the same boxes on real photos. The bundled float16 copy (registry ``yolov3_tiny_coco``) is the
conversion rounded to float16 and gives the same boxes. ``benchmarks/darknet_vs_cv2dnn.py`` prints the figures.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, shared_data
from tests.convert.darknet_reference import compare_box_sets, cv2_boxes, cv2_forward, visionkit_boxes
from visionkit.core.errors import ModelError

PHOTOS = ["examples/astronaut.jpg", "examples/chelsea.jpg", "examples/coffee.jpg"]
COCO128 = ["000000000009.jpg", "000000000025.jpg", "000000000030.jpg", "000000000034.jpg", "000000000049.jpg",
           "000000000061.jpg", "000000000064.jpg", "000000000071.jpg"]
CONF, IOU = 0.25, 0.45  # visionkit.detection.config's DEFAULT_CONF / DEFAULT_IOU
#: darknet's data/coco.names spells 7 of the 80 COCO classes the old way; labels/coco80.txt uses COCO's own names.
OLD_NAMES = {"motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch", "pottedplant": "potted plant",
             "diningtable": "dining table", "tvmonitor": "tv"}


BUNDLED_CFG = REPO / "pretrained" / "weights" / "yolov3-tiny.cfg"


@pytest.fixture(scope="module")
def files():
    """The official weights, with the bundled cfg: pjreddie's, its second head's mask the one the weights were
    trained with (``benchmarks/make_yolov3_tiny_coco.py``); cv2.dnn reads the same cfg."""
    return BUNDLED_CFG, shared_data("weights/yolov3-tiny.weights")


def test_the_bundled_cfg_is_pjreddies_with_the_trained_mask():
    """One line differs from the pip/pjreddie copy (``mask = 0,1,2`` of the 26 x 26 head), plus its comment."""
    original = shared_data("weights/yolov3-tiny.cfg").read_text().splitlines()
    bundled = BUNDLED_CFG.read_text().splitlines()
    changed = [(i, line) for i, line in enumerate(original) if line != bundled[i + (i >= 174)]]
    assert changed == [(174, "mask = 0,1,2")] and len(bundled) == len(original) + 1
    assert bundled[174].startswith("# the released yolov3-tiny.weights") and bundled[175] == "mask = 1,2,3"


@pytest.fixture(scope="module")
def cv2_net(files, tmp_path_factory):
    """cv2's reader on the same files; its [yolo] layers are told ``thresh = 0`` (OpenCV's own key, default 0.2,
    which zeroes lower class scores; darknet and visionkit ignore it) so that low ``conf`` can be compared too."""
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):
        pytest.skip(f"OpenCV {cv2.__version__} has no cv2.dnn.readNetFromDarknet (dropped in OpenCV 5)")
    cfg = tmp_path_factory.mktemp("cv2") / "yolov3-tiny.cfg"
    cfg.write_text(files[0].read_text().replace("[yolo]", "[yolo]\nthresh = 0"))
    return cv2, cv2.dnn.readNetFromDarknet(str(cfg), str(files[1]))


@pytest.fixture(scope="module")
def converted(files):
    from visionkit.convert.darknet import convert_darknet

    return convert_darknet(*files)


@pytest.fixture(scope="module")
def canvases():
    from visionkit.core.io import load_image
    from visionkit.detection.boxes import letterbox

    paths = [REPO / p for p in PHOTOS]
    coco = shared_data("coco128") / "images"
    paths += [coco / name for name in COCO128]
    return [letterbox(load_image(path), (416, 416))[0] for path in paths]


def _heads(model, canvas) -> list[np.ndarray]:
    return [np.asarray(out)[0] for out in model(canvas[None].astype(np.float32))]


def test_the_file_is_read_exactly_as_darknet_reads_it(files, converted):
    assert hashlib.sha256(files[1].read_bytes()).hexdigest() == \
        "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"  # pjreddie's yolov3-tiny.weights
    assert converted.header == (0, 2, 0, 32013312)  # format 0.2: a 64-bit 'seen' -> 20-byte header
    assert converted.values == 8_858_734 and converted.trailing_bytes == 0
    assert 20 + 4 * converted.values == files[1].stat().st_size
    assert converted.num_classes == 80 and [h["grid"] for h in converted.heads] == [[13, 13], [26, 26]]
    assert [h["anchors_px"] for h in converted.heads] == [[[81, 82], [135, 169], [344, 319]],
                                                          [[23, 27], [37, 58], [81, 82]]]


def test_raw_heads_match_cv2_dnn(cv2_net, converted, canvases):
    cv2, net = cv2_net
    worst = np.zeros(2)
    for canvas in canvases:
        theirs, _ = cv2_forward(cv2, net, canvas)
        for k, (mine, reference) in enumerate(zip(_heads(converted.model, canvas), theirs)):
            assert mine.shape == reference.shape == (13 * 2 ** k, 13 * 2 ** k, 3, 85)
            worst[k] = max(worst[k], np.abs(mine - reference).max())
    assert worst.max() < 1e-3, worst  # measured ~1.6e-4 on outputs of magnitude ~20


@pytest.mark.parametrize("conf", [CONF, 0.05])
def test_boxes_match_cv2_dnn_on_real_photos(cv2_net, converted, canvases, conf):
    cv2, net = cv2_net
    found = []
    for canvas in canvases:
        _, rows = cv2_forward(cv2, net, canvas)
        ours = visionkit_boxes(_heads(converted.model, canvas), converted.heads, (416, 416), conf, IOU)
        agreement = compare_box_sets(ours, cv2_boxes(cv2, rows, (416, 416), conf, IOU))
        assert agreement["same"], agreement
        if agreement["matched"]:
            assert agreement["worst_iou"] > 0.999 and agreement["worst_score_gap"] < 1e-4, agreement
        found.append(agreement["ours"])
    assert sum(n > 0 for n in found) >= 8 and sum(found) >= 12, found  # most photos have boxes (15 at conf 0.25)


def test_the_photos_show_what_they_should(converted, canvases):
    from visionkit.core.registry import get_spec

    names = get_spec("yolov3_tiny_coco").class_names()
    expected = {2: "cup", 4: "giraffe", 9: "clock"}  # coffee.jpg, coco128 ...025.jpg, ...064.jpg
    for index, label in expected.items():
        _, scores, class_ids = visionkit_boxes(_heads(converted.model, canvases[index]), converted.heads,
                                               (416, 416), CONF, IOU)
        assert names[int(class_ids[np.argmax(scores)])] == label


def test_coco80_labels_are_darknets_coco_names(files):
    from visionkit.core.registry import get_spec

    darknet = shared_data("weights/coco.names").read_text().split("\n")
    darknet = [OLD_NAMES.get(n, n) for n in darknet if n]
    assert get_spec("yolov3_tiny_coco").class_names() == darknet


def test_bundled_float16_detector_is_the_conversion_rounded(converted, canvases, cv2_net):
    """Registry ``yolov3_tiny_coco``: hash-checked, loaded without pickle, float16 values of the conversion."""
    from visionkit.core.registry import get_spec
    from visionkit.core.model import build

    spec = get_spec("yolov3_tiny_coco")
    assert spec.weights.source == "bundled" and spec.weights.file.endswith(".weights.h5")
    bundled = build(spec)
    for mine, full in zip(bundled.weights, converted.model.weights):
        assert mine.path == full.path and mine.dtype == "float32"
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(full).astype(np.float16).astype(np.float32))
    cv2, net = cv2_net
    for canvas in canvases:
        half, full = _heads(bundled, canvas), _heads(converted.model, canvas)
        assert max(np.abs(h - f).max() for h, f in zip(half, full)) < 0.1  # measured ~0.03
        _, rows = cv2_forward(cv2, net, canvas)
        agreement = compare_box_sets(visionkit_boxes(half, spec.options["heads"], (416, 416), CONF, IOU),
                                     cv2_boxes(cv2, rows, (416, 416), CONF, IOU))
        assert agreement["same"], agreement
        assert not agreement["matched"] or agreement["worst_iou"] > 0.99, agreement


def test_registry_metadata_must_agree_with_the_cfg(files):
    from visionkit.convert.darknet import darknet_detector
    from visionkit.core.registry import get_spec

    options = dict(get_spec("yolov3_tiny_coco").options)
    heads = [dict(h) for h in options["heads"]]
    heads[0]["scale_x_y"] = 1.05
    with pytest.raises(ModelError, match="registry options heads=.* disagree with yolov3-tiny.cfg"):
        darknet_detector(**{**options, "heads": heads})
    with pytest.raises(ModelError, match="num_classes=20"):
        darknet_detector(**{**options, "num_classes": 20})
    from visionkit.core.errors import WeightsError

    with pytest.raises(WeightsError, match="sha256 does not match"):
        darknet_detector(**{**options, "cfg": str(shared_data("weights/yolov3-tiny.cfg"))})  # the pip copy


def test_import_refuses_class_names_that_do_not_fit(files, isolated_cache):
    from visionkit.convert.darknet import import_darknet

    names = [n for n in shared_data("weights/coco.names").read_text().split("\n") if n]
    with pytest.raises(ModelError, match="79 class names given for a detector of 80 classes"):
        import_darknet(*files, "v3tiny", names=names[:79])
    assert not Path(isolated_cache / "detectors" / "v3tiny.keras").exists()


def test_importing_the_official_weights_with_the_later_mask_warns(files, isolated_cache, caplog):
    from visionkit.convert.darknet import import_darknet

    pip_cfg = shared_data("weights/yolov3-tiny.cfg")  # the 26 x 26 head says mask = 0,1,2
    with caplog.at_level("WARNING", logger="visionkit"):
        import_darknet(pip_cfg, files[1], "later_mask")
    assert any("trained with 'mask = 1,2,3'" in r.getMessage() for r in caplog.records), caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="visionkit"):
        import_darknet(*files, "trained_mask")  # the bundled cfg: no warning
    assert not any("mask" in r.getMessage() for r in caplog.records), caplog.text
