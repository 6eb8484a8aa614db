"""Prediction end to end (letterbox -> model -> decode -> NMS -> original pixels), outputs, evaluation, video."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_tiny_detector, make_yolo_dataset, write_image
from visionkit.core.errors import ModelError, UsageError


@pytest.fixture(scope="module")
def detector_path(tmp_path_factory):
    return make_tiny_detector(tmp_path_factory.mktemp("det") / "tiny.keras")


@pytest.fixture(scope="module")
def detector(detector_path):
    from visionkit.detection.predict import load_detector

    return load_detector(detector_path)


def test_boxes_come_back_in_original_pixels(detector, tmp_path):
    from visionkit.detection.predict import detect

    write_image(tmp_path / "wide.png", (200, 50))
    results = detect([tmp_path / "wide.png", np.zeros((30, 90, 3), np.uint8)], detector, conf=0.0, max_det=20)
    assert [r.ok for r in results] == [True, True] and results[1].source == "<ndarray 1>"
    for result, (width, height) in zip(results, ((200, 50), (90, 30))):
        assert (result.width, result.height) == (width, height) and 0 < len(result) <= 20
        boxes, scores, _ = result.arrays()
        assert boxes[:, [0, 2]].min() >= 0 and boxes[:, [0, 2]].max() <= width
        assert boxes[:, [1, 3]].min() >= 0 and boxes[:, [1, 3]].max() <= height
        assert np.all(np.diff(scores) <= 0)


def test_postprocess_maps_a_known_box_back_through_the_letterbox(detector):
    from visionkit.detection.boxes import letterbox_geometry
    from visionkit.detection.detector import postprocess

    geometry = letterbox_geometry(50, 200, (64, 64))  # scale 0.32: the photo fills canvas rows 24…40
    raw = np.zeros((2, 2, 3, 7), np.float32)
    raw[..., 4] = -20
    # cell (row 1, col 1), anchor 1 (0.5 x 0.6): centre x (0.5 + 1) / 2 = 0.75, y (0.0625 + 1) / 2 = 0.53125
    raw[1, 1, 1, :5] = [0.0, np.log(0.0625 / 0.9375), np.log(0.25 / 0.5), np.log(0.125 / 0.6), 10.0]
    raw[1, 1, 1, 6] = 5.0
    raw[1, 0, 1, :5] = [0.0, 0.0, 0.0, np.log(0.1 / 0.6), 10.0]  # a box lying in the grey padding only
    boxes, scores, classes = postprocess(detector, raw, geometry, conf=0.5, iou=0.45, max_det=10)
    # canvas box: centre (48, 34), 16 x 8 px -> x 40…56, y 30…38 -> minus the padding (0, 24) -> / 0.32
    np.testing.assert_allclose(boxes, [[125.0, 18.75, 175.0, 43.75]], atol=1e-6)
    assert classes.tolist() == [1] and scores[0] > 0.99


def test_bad_inputs_do_not_stop_the_batch(detector, tmp_path):
    from visionkit.detection.predict import detect

    write_image(tmp_path / "ok.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    results = detect([tmp_path / "broken.jpg", tmp_path / "ok.png", tmp_path / "missing.png"], detector)
    assert [r.ok for r in results] == [False, True, False]
    assert "broken.jpg" in results[0].error and "no such file" in results[2].error


def test_class_filter_and_threshold_checks(detector, tmp_path):
    from visionkit.detection.predict import detect

    write_image(tmp_path / "a.png")
    only_bars = detect(tmp_path / "a.png", detector, conf=0.0, classes=["bar"])[0]
    assert only_bars.boxes and {b.label for b in only_bars.boxes} == {"bar"}
    assert {b.class_id for b in detect(tmp_path / "a.png", detector, conf=0.0, classes=[0])[0].boxes} == {0}
    with pytest.raises(UsageError, match="unknown class 'cat'.*square, bar"):
        detect(tmp_path / "a.png", detector, classes=["cat"])
    with pytest.raises(UsageError, match="conf must be in"):
        detect(tmp_path / "a.png", detector, conf=2)


def test_save_writes_annotated_copies_and_outputs(detector, tmp_path):
    from visionkit.detection.predict import detect
    from visionkit.detection.output import to_coco, write_results, yolo_lines

    write_image(tmp_path / "in" / "a.png", (80, 60))
    write_image(tmp_path / "in2" / "a.png", (80, 60))
    results = detect([tmp_path / "in" / "a.png", tmp_path / "in2" / "a.png"], detector, conf=0.0, max_det=3,
                     save=tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "a_2.png"]
    coco = to_coco(results, detector.class_names)
    assert len(coco["images"]) == 2 and len(coco["annotations"]) == 6
    first = coco["annotations"][0]
    box = results[0].boxes[0]
    assert first["bbox"] == pytest.approx([box.x1, box.y1, box.x2 - box.x1, box.y2 - box.y1], abs=0.01)
    fields = yolo_lines(results[0]).splitlines()[0].split()
    assert len(fields) == 6 and 0 <= float(fields[1]) <= 1
    width, height = results[0].width, results[0].height  # class, centre and size as fractions of the image, score
    assert [int(fields[0]), *map(float, fields[1:])] == pytest.approx(
        [box.class_id, (box.x1 + box.x2) / 2 / width, (box.y1 + box.y2) / 2 / height, (box.x2 - box.x1) / width,
         (box.y2 - box.y1) / height, box.score], abs=1e-6)
    write_results(results, "yolo", tmp_path / "labels", detector.class_names)
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == ["a.txt", "a_2.txt"]
    with pytest.raises(UsageError, match="--output DIR"):
        write_results(results, "yolo", None, detector.class_names)


def test_evaluate_reports_ap_and_writes_the_curve(detector, tmp_path):
    from visionkit.detection.val import evaluate

    data = make_yolo_dataset(tmp_path / "d", count=4)
    report = evaluate(detector, data, pr_curve=tmp_path / "pr.png")
    assert report.images == 4 and report.class_names == ("square", "bar") and report.positives == (2, 2)
    assert 0.0 <= report.map50 <= 1.0 and 0.0 <= report.map50_95 <= report.map50 + 1e-9
    assert report.map50 == pytest.approx(np.mean(report.ap50))  # the mean over the classes (both have boxes)
    assert report.map50_95 == pytest.approx(np.mean(report.ap50_95))
    assert (tmp_path / "pr.png").stat().st_size > 0
    assert [row["class"] for row in report.to_rows()] == ["square", "bar", "all (mAP)"]


def test_evaluate_leaves_out_classes_the_model_lacks(detector, tmp_path):
    from visionkit.detection.val import evaluate

    data = make_yolo_dataset(tmp_path / "d", count=4)
    (data / "classes.txt").write_text("square\ncat\n")  # the bars are now 'cat', unknown to the model
    report = evaluate(detector, data)
    assert report.positives == (2, 0) and "the model does not know: cat" in report.notes[0]
    (data / "classes.txt").write_text("dog\ncat\n")
    with pytest.raises(UsageError, match="shares no class with the model"):
        evaluate(detector, data)


def test_a_classifier_is_not_a_detector(tmp_path):
    import keras

    from visionkit.core.registry import ModelSpec
    from visionkit.core.model import save_model
    from visionkit.detection.detector import load_detector

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    save_model(model, tmp_path / "c.keras", ModelSpec(name="c", task="classify", builder=""), ["a", "b"])
    with pytest.raises(ModelError, match="not a detector"):
        load_detector(tmp_path / "c.keras")


def test_video_in_annotated_video_out(detector, tmp_path):
    import cv2

    from visionkit.detection.video import detect_video

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (96, 64))
    for i in range(7):
        frame = np.full((64, 96, 3), 20, np.uint8)
        frame[10:30, 5 + 8 * i:25 + 8 * i] = 220
        writer.write(frame)
    writer.release()
    seen = []
    results = detect_video(path, detector, conf=0.0, max_det=2, save=tmp_path / "out", batch_size=3,
                           on_progress=lambda done, total: seen.append(done))
    assert [r.frame for r in results] == list(range(7)) and all(len(r) == 2 for r in results)
    assert seen[-1] == 7
    saved = cv2.VideoCapture(str(tmp_path / "out" / "clip.mp4"))
    assert int(saved.get(cv2.CAP_PROP_FRAME_COUNT)) == 7 and int(saved.get(cv2.CAP_PROP_FRAME_WIDTH)) == 96
    saved.release()
    (tmp_path / "fake.mp4").write_bytes(b"not a video")
    broken = detect_video(tmp_path / "fake.mp4", detector)
    assert len(broken) == 1 and not broken[0].ok


def test_results_serialise(detector, tmp_path):
    from visionkit.detection.predict import detect

    write_image(tmp_path / "a.png")
    result = detect(tmp_path / "a.png", detector, conf=0.0, max_det=2)[0]
    data = json.loads(json.dumps(result.to_dict()))
    assert data["source"].endswith("a.png") and len(data["boxes"]) == 2 and set(data["boxes"][0]) == {
        "label", "class_id", "score", "box"}
    assert len(result.to_rows()) == 2 and Path(result.to_rows()[0]["source"]).name == "a.png"


def test_a_multi_head_darknet_detector_predicts_filters_writes_and_evaluates(tmp_path, isolated_cache):
    """The YOLOv3 contract (one output per head + ``heads``): per-image lists of head arrays, decoded by
    head_detections; names on boxes, --classes by name or id, COCO JSON, video and val all go through it."""
    import cv2

    from tests.detection.tiny_darknet import NAMES, import_tiny_darknet
    from visionkit.detection.decode import head_detections
    from visionkit.detection.detector import candidates, load_detector, raw_outputs
    from visionkit.detection.output import to_coco
    from visionkit.detection.predict import detect
    from visionkit.detection.val import evaluate
    from visionkit.detection.video import detect_video

    detector = load_detector(import_tiny_darknet(tmp_path / "darknet"))
    assert detector.class_names == NAMES and detector.extra["class_activation"] == "logistic"
    batch = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    raws = raw_outputs(detector, batch)
    assert len(raws) == 2 and [r.shape for r in raws[1]] == [(2, 2, 2, 12), (4, 4, 2, 12)]
    heads = [np.asarray(h)[1] for h in detector.model(batch)]
    for ours, theirs in zip(candidates(detector, raws[1]), head_detections(heads, detector.extra["heads"])):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)

    write_image(tmp_path / "a.png", (120, 80))
    result = detect(tmp_path / "a.png", detector, conf=0.0, iou=1.0, max_det=5, classes=["bar", "4"])[0]
    assert 1 <= len(result) <= 5 and {b.label for b in result.boxes} <= {"Bar", "c4"}  # best class of a box
    assert all(b.label == NAMES[b.class_id] for b in result.boxes)
    coco = to_coco([result], detector.class_names)
    assert len(coco["annotations"]) == len(result) and coco["categories"][3] == {"id": 4, "name": "Bar"}

    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (96, 64))
    for _ in range(3):
        writer.write(np.full((64, 96, 3), 90, np.uint8))
    writer.release()
    frames = detect_video(tmp_path / "clip.avi", detector, conf=0.0, max_det=2, save=tmp_path / "out", batch_size=2)
    assert [r.frame for r in frames] == [0, 1, 2] and all(len(r) == 2 for r in frames)
    assert (tmp_path / "out" / "clip.mp4").is_file()

    data = make_yolo_dataset(tmp_path / "d", count=4)
    (data / "classes.txt").write_text("square\nbar\n")  # 'bar' is the model's 'Bar'
    report = evaluate(detector, data)
    assert report.images == 4 and report.positives[1] == 2 and report.positives[3] == 2


def test_class_names_match_across_spellings():
    from visionkit.detection.val import class_key, class_mapping

    assert class_key("Potted_Plant") == class_key("pottedplant") == class_key("potted plant")
    assert class_key("tvmonitor") == class_key("TV") and class_key("motorbike") == class_key("motorcycle")
    mapping, notes = class_mapping(["aeroplane", "sofa", "dining-table", "raccoon"],
                                   ["person", "airplane", "couch", "dining table"])
    assert mapping.tolist() == [1, 2, 3, -1] and "raccoon" in notes[0]
