"""Hostile inputs: images that are bombs, empty, truncated or not images at all, unusual but valid images, malformed
and malicious labels, a PyTorch file that asks for code, a darknet weights file that is too short."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import make_yolo_dataset, write_image
from tests.faults.conftest import listing
from tests.faults.hostile import hostile_images
from visionkit.cli import cli

BAD = {  # file -> the reason its error line must give
    "bomb.png": "has 256,000,000 pixels, over the limit of 178,956,970 (a decompression bomb?)",
    "header_20000.png": "has 400,000,000 pixels, over the limit of 178,956,970 (a decompression bomb?)",
    "empty.jpg": "empty file (0 bytes)",
    "truncated.jpg": "cannot decode image: file is truncated",
    "page.jpg": "not a readable image (UnidentifiedImageError)",
}


def test_hostile_images_in_one_batch(tmp_path, tiny_classifier, fault_row):
    from visionkit.core.io import load_image

    folder = tmp_path / "in"
    made = hostile_images(folder)
    before = {p.name: p.stat().st_size for p in folder.iterdir()}
    result = CliRunner().invoke(cli, ["classify", str(folder), "-m", str(tiny_classifier), "--format", "jsonl"])
    assert result.exit_code == 1
    rows = {os.path.basename(json.loads(line)["source"]): json.loads(line) for line in result.stdout.splitlines()}
    assert set(rows) == set(made), "one result per input, in one run"
    errors = {line.split(": ", 2)[1].rsplit("/", 1)[-1]: line for line in result.stderr.splitlines()
              if line.startswith("error: ")}
    assert set(errors) == set(BAD)
    for name, reason in BAD.items():
        assert reason in errors[name] and rows[name]["error"] and not rows[name]["top"], name
    assert f"{len(BAD)} of {len(made)} inputs failed" in result.stderr
    good = sorted(set(made) - set(BAD))
    assert all(rows[name]["top"] and "error" not in rows[name] for name in good)
    assert {p.name: p.stat().st_size for p in folder.iterdir()} == before, "inputs untouched, nothing written"

    decoded = {name: load_image(folder / name) for name in good}
    assert decoded["exif_rotated.jpg"].shape == (64, 48, 3), "EXIF orientation applied (64×48 stored, 48×64 shown)"
    assert decoded["grey16.png"][0, 0].tolist() == [0, 0, 0] and decoded["grey16.png"][-1, -1].tolist() == [255] * 3
    assert decoded["alpha.png"][15, 5].tolist() == [255, 255, 255], "transparent pixels composited on white"
    assert decoded["alpha.png"][5, 5].tolist() == [255, 0, 0]
    assert decoded["one_pixel.png"].shape == (1, 1, 3)
    assert all(image.dtype == np.uint8 and image.shape[2] == 3 for image in decoded.values())

    for name in BAD:
        fault_row(f"hostile image: {made[name]}", f"`visionkit classify in/` on a folder of 12 odd files, this one "
                  "among them", f"`{errors[name].replace(str(folder), 'in')}`; exit 1 after the batch",
                  "input untouched, nothing written; the other 11 files classified in the same run")
    notes = {"exif_rotated.jpg": "classified; decoded as displayed, 48 wide × 64 high",
             "grey16.png": "classified; 0…65535 scaled to 0…255, grey to RGB",
             "cmyk.jpg": "classified; converted to RGB", "palette.png": "classified; palette expanded to RGB",
             "alpha.png": "classified; transparent pixels composited on white",
             "one_pixel.png": "classified (resized up to the model's input)",
             "name with spaces é 日本.png": "classified; the name printed as it is"}
    for name in good:
        fault_row(f"unusual image: {made[name]}", "the same `visionkit classify in/` run",
                  "a result row (top-1 of the untrained test model), no error", notes[name])


def test_malformed_yolo_labels_stop_before_training(tmp_path, fault_row):
    data = make_yolo_dataset(tmp_path / "yolo", count=4)
    (data / "labels" / "im1.txt").write_text("0 0.5 0.5 0.2\n")
    (data / "labels" / "im2.txt").write_text("7 0.5 0.5 0.2 0.2\n0 1.7 0.5 0.2 0.2\n")
    (data / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    result = CliRunner().invoke(cli, ["detect", "train", str(data), "--base", "tiny_functional_cnn", "--input-size",
                                      "64", "-o", str(tmp_path / "run")])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    line = result.stderr.strip()
    for expected in ("4 problem(s)", "im1.txt:1: malformed line", "im2.txt:1: unknown class id 7",
                     "im2.txt:2: out-of-range coordinates cx=1.7", "orphan.txt: label file has no image"):
        assert expected in line, expected
    assert listing(tmp_path / "run") == "(no folder)"
    fault_row("malformed YOLO labels", "`visionkit detect train yolo/` with a 4-field line, class id 7 of 2, cx = 1.7 "
              "and a label file without an image",
              f"one line listing all 4 with file:line, starting `{line.replace(str(tmp_path) + '/', '')[:150]}…`; exit 1",
              "no training started, no run folder made (`run/` is made once the labels are read)")


def test_malicious_and_malformed_voc_xml(tmp_path, fault_row):
    voc = tmp_path / "voc"
    (voc / "annotations").mkdir(parents=True)
    for name in ("laughs", "cut", "escape"):
        write_image(voc / "images" / f"{name}.jpg")
    laughs = "".join(f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">' for i in range(1, 10))
    (voc / "annotations" / "laughs.xml").write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol0 "lol">{laughs}]>\n<annotation><filename>laughs.jpg'
        '</filename><object><name>&lol9;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>'
        '</bndbox></object></annotation>')
    (voc / "annotations" / "cut.xml").write_text("<annotation><filename>cut.jpg</filename><object><name>cat</name>")
    (voc / "annotations" / "escape.xml").write_text(
        "<annotation><filename>../../../../etc/passwd</filename><object><name>cat</name><bndbox><xmin>1</xmin>"
        "<ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>")
    result = CliRunner().invoke(cli, ["detect", "train", str(voc), "--base", "tiny_functional_cnn", "--input-size",
                                      "64", "-o", str(tmp_path / "run")])
    line = result.stderr.strip()
    assert result.exit_code == 1 and "\n" not in line
    assert "laughs.xml: refused: the XML declares entities" in line and "cut.xml: malformed XML" in line
    assert "escape.xml" not in line and "passwd" not in line  # matched on the file name only: escape.jpg
    assert listing(tmp_path / "run") == "(no folder)"
    from visionkit.detection.data import load_voc

    kept = load_voc(voc, on_error="skip")
    assert [os.path.basename(a.image) for a in kept.items] == ["escape.jpg"]
    fault_row("billion-laughs and malformed VOC XML", "`visionkit detect train voc/` with a 10⁹-entity XML, an XML cut "
              "short and a `<filename>../../../../etc/passwd</filename>`",
              f"one line naming both files, starting `{line.replace(str(tmp_path) + '/', '')[:150]}…`; exit 1",
              "no entity expanded, nothing read outside `voc/` (the escaping <filename> is matched by name only, so it "
              "pairs with `escape.jpg`); no run folder made")


def test_coco_file_names_outside_the_folder_are_refused(tmp_path, fault_row):
    coco = tmp_path / "coco"
    write_image(coco / "images" / "x.jpg")
    (tmp_path / "secret.jpg").write_bytes((coco / "images" / "x.jpg").read_bytes())  # a real image, outside
    images = [{"id": 1, "file_name": "x.jpg"}, {"id": 2, "file_name": "../../secret.jpg"},
              {"id": 3, "file_name": str(tmp_path / "secret.jpg")}, {"id": 4, "file_name": None}]
    (coco / "ann.json").write_text(json.dumps({"images": images, "categories": [{"id": 1, "name": "thing"}],
                                               "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                                                                "bbox": [1, 1, 10, 10]}]}))
    result = CliRunner().invoke(cli, ["detect", "train", str(coco / "ann.json"), "--base", "tiny_functional_cnn",
                                      "--input-size", "64", "-o", str(tmp_path / "run")])
    line = result.stderr.strip()
    assert result.exit_code == 1 and "3 problem(s)" in line
    assert "image id 2: file_name '../../secret.jpg' points outside" in line and "image id 3" in line
    from visionkit.detection.data import load_coco

    kept = load_coco(coco / "ann.json", on_error="skip")
    assert [os.path.basename(a.image) for a in kept.items] == ["x.jpg"]
    fault_row("COCO `file_name` pointing outside the data folder", "`visionkit detect train coco/ann.json` whose "
              "images include `../../secret.jpg`, an absolute path to it, and `null`",
              f"one line naming the 3 entries, starting `{line.replace(str(tmp_path) + '/', '')[:150]}…`; exit 1",
              "the outside image never opened; with `--skip-bad-labels` only `x.jpg` is used")


def test_pairs_csv_paths_must_stay_beside_it(tmp_path, tiny_encoder, fault_row):
    (tmp_path / "pairs").mkdir()
    csv = tmp_path / "pairs" / "pairs.csv"
    csv.write_text("a,b,same\nok.jpg,../outside.jpg,1\n")
    result = CliRunner().invoke(cli, ["faces", "calibrate", str(csv), "-m", tiny_encoder])
    line = result.stderr.strip()
    assert result.exit_code == 1 and "pairs.csv:2: '../outside.jpg' points outside" in line
    fault_row("pairs CSV naming a file outside its folder", "`visionkit faces calibrate pairs/pairs.csv` with a row "
              "`ok.jpg,../outside.jpg,1`", f"`{line.replace(str(tmp_path) + '/', '')}`; exit 1", "nothing read or written")


def test_torch_file_asking_for_code_is_refused(tmp_path, fault_row):
    from tests.convert.test_torch_zip import Evil, _example, save_zip
    from visionkit.convert.torch_zip import read_state_dict
    from visionkit.core.errors import WeightsError

    marker = tmp_path / "pwned"
    obj, storages, _ = _example()
    obj["evil"] = Evil(os.system, f"touch {marker}")
    save_zip(tmp_path / "evil.pth", obj, storages)
    with pytest.raises(WeightsError) as error:
        read_state_dict(tmp_path / "evil.pth")
    message = str(error.value)
    assert "refused to unpickle global" in message and "nothing was executed" in message and not marker.exists()
    fault_row("PyTorch zip with a forbidden global", "`read_state_dict(evil.pth)` (the reader behind the pip-packaged "
              "EfficientNet-Lite0) on a state dict whose pickle calls `os.system('touch pwned')`",
              f"`WeightsError: {message.replace(str(tmp_path) + '/', '')[:110]}…`",
              "`pwned` not created: nothing executed")


def test_torch_file_that_expands_is_refused(tmp_path, fault_row):
    from tests.convert.test_torch_zip import FakeStorage, FakeTensor, save_zip
    from visionkit.convert.torch_zip import read_state_dict
    from visionkit.core.errors import WeightsError

    storage = FakeStorage("0", np.array([1.0], dtype=np.float32))
    save_zip(tmp_path / "w.pth", {"w": FakeTensor(storage, 0, (4096, 4096), (0, 0))}, [storage])
    size = (tmp_path / "w.pth").stat().st_size
    with pytest.raises(WeightsError, match="more elements than its storage") as error:
        read_state_dict(tmp_path / "w.pth")
    fault_row("PyTorch zip whose tensor has stride 0", f"`read_state_dict` on a {size}-byte file declaring a 4096×4096 "
              "view (64 MB) of one float", f"`WeightsError: …{str(error.value).split(': ', 1)[1][:90]}…`",
              "no 64 MB array made")


def test_darknet_weights_too_short(tmp_path, isolated_cache, fault_row):
    from tests.convert.darknet_reference import write_random_weights
    from tests.convert.test_darknet import TINY_CFG

    (tmp_path / "tiny.cfg").write_text(TINY_CFG)
    write_random_weights(tmp_path / "full.weights", TINY_CFG)
    data = (tmp_path / "full.weights").read_bytes()
    (tmp_path / "short.weights").write_bytes(data[: len(data) // 2])
    result = CliRunner().invoke(cli, ["models", "import-darknet", str(tmp_path / "tiny.cfg"),
                                      str(tmp_path / "short.weights"), "tiny"])
    line = result.stderr.strip()
    assert result.exit_code == 1 and line.startswith("error: ") and "\n" not in line
    assert not (isolated_cache / "detectors").exists() or listing(isolated_cache / "detectors") == "(empty)"
    fault_row("darknet weights file too short", "`visionkit models import-darknet tiny.cfg short.weights tiny` with "
              "half of the weights", f"`{line.replace(str(tmp_path) + '/', '')}`; exit 1",
              "no detector written to the cache")
