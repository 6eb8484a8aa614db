"""``visionkit verify`` and ``visionkit faces …`` through click's CliRunner (tiny encoder, AT&T faces)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import make_tiny_encoder, two_faces
from visionkit.cli import cli
from visionkit.core.io import load_image, save_image

REPO = Path(__file__).resolve().parents[2]


def run(*args):
    return CliRunner().invoke(cli, ["-q", *map(str, args)], catch_exceptions=False)


def test_help_does_not_import_tensorflow():
    code = ("import sys; from click.testing import CliRunner; from visionkit.cli import cli; "
            "r1 = CliRunner().invoke(cli, ['faces', 'train', '--help']); r2 = CliRunner().invoke(cli, ['verify', '--help']); "
            "print(r1.exit_code, r2.exit_code, 'tensorflow' in sys.modules, '--threshold' in r2.output, '--holdout' in r1.output)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout.split()
    assert out == ["0", "0", "False", "True", "True"]


def test_verify_same_and_different(att, tiny_encoder):
    a = att / "s5" / "1.png"
    result = run("verify", a, a, "--model", tiny_encoder, "--format", "json")
    assert result.exit_code == 0, result.output
    [match] = json.loads(result.stdout)
    assert match["same"] is True and match["distance"] == pytest.approx(0, abs=1e-6) and match["threshold"] == 1.0
    result = run("verify", a, att / "s6" / "1.png", "--model", tiny_encoder, "--threshold", "0", "--format", "json")
    assert json.loads(result.stdout)[0]["same"] is False and json.loads(result.stdout)[0]["threshold_source"] == "given"


def test_verify_bad_inputs_are_one_line_errors(att, tiny_encoder, tmp_path):
    a = att / "s5" / "1.png"
    result = run("verify", a, a, "--model", tiny_encoder, "--threshold", "4.2")
    assert result.exit_code == 2 and result.stderr.strip().startswith("error:") and "[0, 4]" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    blank = tmp_path / "wall.png"
    save_image(blank, np.full((120, 120, 3), 40, np.uint8))
    result = run("verify", a, blank, "--model", tiny_encoder)
    assert result.exit_code == 1 and "no face found" in result.stderr
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\x00" * 50)
    result = run("verify", junk, a, "--model", tiny_encoder)
    assert result.exit_code == 1 and "junk.jpg" in result.stderr and "Traceback" not in result.output


def test_verify_several_faces_note_or_strict(att, tiny_encoder, tmp_path):
    group = tmp_path / "group.png"
    save_image(group, two_faces(att))
    result = CliRunner().invoke(cli, ["verify", str(group), str(att / "s1" / "1.png"), "--model", tiny_encoder,
                                      "--format", "json"])
    assert result.exit_code == 0 and "2 faces found; used the largest" in result.stderr
    assert json.loads(result.stdout)[0]["faces_in_a"] == 2
    result = run("verify", group, att / "s1" / "1.png", "--model", tiny_encoder, "--strict")
    assert result.exit_code == 1 and "2 faces found" in result.stderr


def test_database_commands(att, tiny_encoder, tmp_path):
    db = tmp_path / "people.db"
    assert "no such face database" in run("faces", "list", "--db", db).stderr
    result = run("faces", "identify", att / "s1" / "1.png", "--db", db, "--model", tiny_encoder)
    assert result.exit_code == 1 and "no such face database" in result.stderr and not db.exists()
    result = run("faces", "enroll", "alice", att / "s1" / "1.png", att / "s1" / "2.png", "--db", db, "--model",
                 tiny_encoder, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["encodings"] == 2
    result = run("faces", "enroll", "bob", att / "s2" / "1.png", "--db", db)  # the default encoder: refused
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"not 'dlib_resnet_v1'" in result.stderr and f"--model {Path(tiny_encoder).resolve()}" in result.stderr
    assert run("faces", "enroll", "bob", att / "s2" / "1.png", "--db", db, "--model", tiny_encoder,
               "--format", "json").exit_code == 0
    listed = json.loads(run("faces", "list", "--db", db, "--format", "json").stdout)
    assert [(r["name"], r["encodings"]) for r in listed] == [("alice", 2), ("bob", 1)]
    result = run("faces", "identify", att / "s1" / "2.png", att / "s2" / "1.png", "--db", db, "--threshold", "0.001",
                 "--model", tiny_encoder, "--format", "json")
    found = json.loads(result.stdout)
    assert [r["identity"] for r in found] == ["alice", "bob"] and found[0]["distance"] < 1e-5
    assert "removed 'bob' (1 encodings)" in run("faces", "remove", "bob", "--db", db).stdout
    result = run("faces", "remove", "bob", "--db", db)
    assert result.exit_code == 1 and "no identity named 'bob'" in result.stderr


def test_enrolling_the_same_photos_again_adds_nothing(att, tiny_encoder, tmp_path):
    import shutil

    photos, db = tmp_path / "photos", tmp_path / "people.db"
    photos.mkdir()
    for number in (1, 2, 3):
        shutil.copy(att / "s1" / f"{number}.png", photos / f"{number}.png")
    enroll = ("faces", "enroll", "--db", db, "--model", tiny_encoder, "--format", "json")
    first = run(*enroll[:2], "alice", photos, *enroll[2:])
    assert first.exit_code == 0 and json.loads(first.stdout)[0]["added"] == 3
    again = run(*enroll[:2], "alice", photos, *enroll[2:])  # the same run twice
    assert again.exit_code == 0, again.output
    [summary] = json.loads(again.stdout)
    assert (summary["encodings"], summary["added"], len(summary["already_enrolled"])) == (3, 0, 3)
    assert again.stderr.count("already enrolled: ") == 3 and "not added again" in again.stderr
    shutil.copy(photos / "2.png", tmp_path / "copy.png")  # the same content elsewhere is the same photo
    copied = run(*enroll[:2], "alice", tmp_path / "copy.png", att / "s1" / "4.png", *enroll[2:])
    assert json.loads(copied.stdout)[0]["added"] == 1 and "already enrolled: " in copied.stderr
    refused = run(*enroll[:2], "bob", photos / "1.png", *enroll[2:])  # alice's photo under another name
    assert refused.exit_code == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "already enrolled as 'alice'; one photo cannot stand for two identities" in refused.stderr
    listed = json.loads(run("faces", "list", "--db", db, "--format", "json").stdout)
    assert [(r["name"], r["encodings"]) for r in listed] == [("alice", 4)]


def test_identify_counts_failed_images_not_faces(att, tiny_encoder, tmp_path):
    db, group, blank = tmp_path / "people.db", tmp_path / "group.png", tmp_path / "wall.png"
    save_image(group, two_faces(att))
    save_image(blank, np.full((120, 120, 3), 40, np.uint8))
    assert run("faces", "enroll", "alice", att / "s1" / "1.png", "--db", db, "--model", tiny_encoder).exit_code == 0
    result = CliRunner().invoke(cli, ["faces", "identify", str(group), str(blank), str(att / "s2" / "1.png"), "--db",
                                      str(db), "--model", tiny_encoder, "--format", "json"])
    assert result.exit_code == 1 and len(json.loads(result.stdout)) == 3  # 2 faces + 1 face
    assert result.stderr.strip().splitlines()[-1] == "1 of 3 inputs failed"


def test_detect_reports_no_face_rows(att, tiny_encoder, tmp_path):
    blank = tmp_path / "blank.png"
    save_image(blank, np.full((100, 100, 3), 0, np.uint8))
    crops = tmp_path / "crops"
    result = run("faces", "detect", att / "s7" / "1.png", blank, "--format", "json", "--crops", crops, "--crop-size", 64,
                 "--model", tiny_encoder)
    assert result.exit_code == 0, result.output
    face, nothing = json.loads(result.stdout)
    assert len(face["faces"]) == 1 and len(face["faces"][0]["landmarks"]) == 5
    assert nothing["faces"] == [] and nothing["note"] == "no face found"
    assert [p.name for p in crops.iterdir()] == ["1_0_0.png"]
    assert load_image(crops / "1_0_0.png").shape == (64, 64, 3)


def test_detect_crops_are_what_the_encoder_takes(att, tiny_encoder, tmp_path):
    from visionkit.faces.align import ARCFACE, Alignment, align_face, detect_faces

    chip = make_tiny_encoder(tmp_path / "chip.keras", size=40, alignment="dlib_chip", border="black")
    photo = tmp_path / "corner.png"  # a face near the edge, so that the border fill shows in the crop
    save_image(photo, np.pad(load_image(att / "s3" / "1.png"), ((0, 20), (0, 20), (0, 0)), constant_values=200)[8:, 8:])
    [face], _ = detect_faces(load_image(photo))
    written = {}
    for model, size, alignment in ((chip, 40, Alignment("dlib_chip", "black")), (tiny_encoder, 32, ARCFACE)):
        crops = tmp_path / f"crops-{size}"
        assert run("faces", "detect", photo, "--crops", crops, "--model", model, "--format", "json").exit_code == 0
        [path] = crops.iterdir()
        written[size] = load_image(path)
        expected = align_face(load_image(photo), face, (size, size), alignment)
        np.testing.assert_array_equal(written[size], expected)  # PNG: the very pixels the encoder gets
    arcface_40 = align_face(load_image(photo), face, (40, 40), ARCFACE)
    assert np.abs(written[40].astype(int) - arcface_40).mean() > 10  # not the ArcFace crop it used to write
    replicated = align_face(load_image(photo), face, (40, 40), Alignment("dlib_chip", "replicate"))
    outside = (written[40] != replicated).any(axis=2)
    # black outside the image (as dlib cuts its chips), blended with the image along its edge
    assert (written[40].sum(axis=2) == 0).sum() >= 40 and (written[40] <= replicated)[outside].all()


def test_calibrate_folder_logistic_and_save_threshold(att, tiny_encoder, tmp_path):
    import shutil

    data = tmp_path / "people"
    for person in ("s8", "s9", "s10"):
        (data / person).mkdir(parents=True)
        for number in (1, 2, 3):
            shutil.copy(att / person / f"{number}.png", data / person / f"{number}.png")
    model = tmp_path / "enc.keras"
    shutil.copy(tiny_encoder, model)
    shutil.copy(Path(tiny_encoder).with_suffix(".json"), model.with_suffix(".json"))
    roc = tmp_path / "roc.png"
    result = run("faces", "calibrate", data, "--model", model, "--roc", roc, "--method", "logistic",
                 "--save-threshold", "eer", "--format", "json")
    assert result.exit_code == 0, result.output
    [summary] = json.loads(result.stdout)
    assert summary["pairs"] == 36 and summary["positives"] == 9 and 0 <= summary["auc"] <= 1
    assert 0 <= summary["threshold_eer"] <= 4 and roc.stat().st_size > 1000
    # the same figures from the encodings directly: all 36 pairs of the 9 images, AUC of -distance (scikit-learn)
    from sklearn.metrics import roc_auc_score

    import visionkit

    paths = sorted(str(p) for p in data.rglob("*.png"))
    encodings = {r.source: r.encodings[0] for r in visionkit.embed(paths, model=str(model))}
    pairs = [(a, b) for i, a in enumerate(paths) for b in paths[i + 1:]]
    distances = np.array([np.sum((encodings[a] - encodings[b]) ** 2) for a, b in pairs])
    same = np.array([Path(a).parent == Path(b).parent for a, b in pairs])
    assert summary["auc"] == pytest.approx(roc_auc_score(same, -distances), abs=1e-6)
    assert summary["accuracy_eer"] == pytest.approx(np.mean((distances <= summary["threshold_eer"]) == same))
    assert Path(summary["logistic_path"]) == tmp_path / "enc.verifier.json"
    assert json.loads(model.with_suffix(".json").read_text())["extra"]["threshold"] == pytest.approx(summary["threshold_eer"])
    result = run("verify", data / "s8" / "1.png", data / "s8" / "2.png", "--model", model, "--method", "logistic",
                 "--format", "json")
    assert result.exit_code == 0 and 0 <= json.loads(result.stdout)[0]["probability"] <= 1
    verifier = json.loads((tmp_path / "enc.verifier.json").read_text())  # P(same) = σ(w·|f(a) − f(b)| + b)
    a, b = encodings[str(data / "s8" / "1.png")], encodings[str(data / "s8" / "2.png")]
    logit = np.abs(a - b) @ np.array(verifier["coef"]) + verifier["intercept"]
    assert json.loads(result.stdout)[0]["probability"] == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-6)


def test_calibrate_pairs_csv_errors(tmp_path, tiny_encoder):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("a,b\nx.png,y.png\n")
    result = run("faces", "calibrate", pairs, "--model", tiny_encoder)
    assert result.exit_code == 1 and "missing column(s) same" in result.stderr


def test_train_on_bad_data_leaves_no_run_folder(att, tmp_path):
    import shutil

    data = tmp_path / "people"
    for person in ("s11", "s12", "s13"):
        (data / person).mkdir(parents=True)
        for number in (1, 2):
            shutil.copy(att / person / f"{number}.png", data / person / f"{number}.png")
    for number in (1, 2):  # s12's photos are not images: two people to train on
        (data / "s12" / f"{number}.png").write_bytes(b"not an image")
    tiny = ["--input-size", 32, "-K", 2, "--head-epochs", 0, "--epochs", 0, "-o", tmp_path / "run"]
    result = run("faces", "train", data / "s11", *tiny)  # no identity folders at all
    assert result.exit_code == 1 and "identity folder" in result.stderr
    result = run("faces", "train", data, "-P", 3, *tiny)  # found out once the faces are aligned
    assert result.exit_code == 2 and "P = 3 identities per batch but the data has 2" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_train_tiny_run_then_resume(att, tmp_path, model_cache):
    import shutil

    data = tmp_path / "people"
    for person in ("s11", "s12", "s13", "s14"):
        (data / person).mkdir(parents=True)
        for number in (1, 2, 3):
            shutil.copy(att / person / f"{number}.png", data / person / f"{number}.png")
    run_dir = tmp_path / "run"
    args = ["faces", "train", data, "--run-dir", run_dir, "--input-size", 32, "--embedding-dim", 8, "-P", 2, "-K", 2,
            "--head-epochs", 1, "--epochs", 1, "--holdout-names", "s13,s14", "--head-channels", 4]
    result = run(*args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["evaluated_on"] == "held-out" and summary["evaluation"]["pairs"] == 15
    assert summary["detection"] == {"images": 12, "faces_found": 12, "found_after_upscaling": 0}
    meta = json.loads((run_dir / "face_encoder.json").read_text())
    assert meta["extra"]["held_out_identities"] == ["s13", "s14"] and 0 <= meta["extra"]["threshold"] <= 4
    assert meta["extra"]["threshold"] == summary["evaluation"]["threshold_eer"]  # the held-out EER threshold
    assert (run_dir / "head" / "history.csv").is_file() and (run_dir / "tail" / "history.csv").is_file()
    assert (run_dir / "head.weights.h5").is_file() and (run_dir / "tail.weights.h5").is_file()
    stamp = (run_dir / "tail.weights.h5").stat().st_mtime_ns
    result = run(*args, "--resume")  # both phases are done: nothing is trained again, the model is evaluated again
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["evaluation"] == summary["evaluation"]
    assert (run_dir / "tail.weights.h5").stat().st_mtime_ns == stamp
    # the saved file encodes like the trained model: calibrating it on the held-out people gives the run's AUC
    result = run("faces", "calibrate", data, "--identities", "s13,s14", "--model", run_dir / "face_encoder.keras",
                 "--roc", tmp_path / "roc.png", "--format", "json")
    assert result.exit_code == 0, result.output
    calibrated = json.loads(result.stdout)[0]
    assert calibrated["pairs"] == 15 and calibrated["auc"] == pytest.approx(summary["evaluation"]["auc"], abs=1e-6)
