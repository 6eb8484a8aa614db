"""kill -9 at the worst moment: inside a face-database transaction, during an atomic write, in the middle of training
(finetune, detect train, segment train) followed by ``--resume``."""

from __future__ import annotations

import signal
import sys

import pytest

from tests.conftest import make_class_folders, make_yolo_dataset
from tests.faults.conftest import cli, kill_when, listing, run

KILLED = -signal.SIGKILL


def test_kill_inside_an_enrolment_leaves_exactly_the_committed_ones(tmp_path, fault_row):
    from visionkit.faces.db import FaceDatabase

    db = tmp_path / "faces.db"
    code, _ = kill_when([sys.executable, "-m", "tests.faults.workers", "enroll", str(db), "p", "10", "5"], None,
                        stdout_line="inside p5")
    assert code == KILLED
    with FaceDatabase(db) as database:
        names = [i.name for i in database.identities()]
        check = database.check()
        assert names == sorted(f"p{i}" for i in range(5)), "the interrupted enrolment p5 must leave no trace"
        assert check == {"integrity": "ok", "foreign_key_errors": 0, "bad_vectors": 0, "identities": 5, "encodings": 15}
        database.enroll("p5", [[1.0] + [0.0] * 7], model="fault-suite")  # and it takes new enrolments
        assert database.count() == 16
    fault_row("kill -9 inside a `faces enroll` transaction",
              "10 enrolments of 3 encodings each (one transaction each) into a new database; SIGKILL between the 2nd "
              "and 3rd encoding of the 6th",
              "nothing (killed); reopening: no error",
              f"database opens, `PRAGMA integrity_check` ok, exactly the 5 committed identities / 15 encodings, no "
              f"trace of the 6th; it takes new enrolments")


def test_kill_during_an_atomic_write_keeps_the_old_file(tmp_path, fault_row):
    from visionkit.core.writers import write_text_atomic

    target = tmp_path / "labels.csv"
    target.write_text("the previous, complete file\n")
    code, _ = kill_when([sys.executable, "-m", "tests.faults.workers", "write", str(target)], None,
                        stdout_line="writing")
    assert code == KILLED
    assert target.read_text() == "the previous, complete file\n"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "labels.csv"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".labels.csv.") and leftovers[0].endswith(".part.csv")
    after_kill = listing(tmp_path)
    write_text_atomic(target, "the next file\n")  # the next write to the same path removes the dead process's part
    assert listing(tmp_path) == "labels.csv" and target.read_text() == "the next file\n"
    fault_row("kill -9 during an atomic output write",
              "a process writing `labels.csv` (900 kB) through `atomic_path`, killed with half of it written",
              "nothing (killed)",
              f"`labels.csv` still the previous complete file; beside it only the hidden part file "
              f"(`{after_kill.split(', ')[0].split('.part')[0]}…part.csv`), removed by the next write to that path")


def _history_rows(run_dir):
    path = run_dir / "history.csv"
    try:
        return max(0, len(path.read_text().splitlines()) - 1)
    except OSError:
        return 0


def _epoch_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("epoch ")]


def _kill_then_resume(command, run_dir, after_rows: int = 2):
    """Kill ``command`` once ``after_rows`` epochs are in history.csv, then run it again with --resume."""
    from visionkit.core.callbacks import read_history

    code, _ = kill_when(command, lambda: _history_rows(run_dir) >= after_rows)
    assert code == KILLED
    at_kill = [row["epoch"] for row in read_history(run_dir / "history.csv")]
    resumed = run([*command, "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    lines = _epoch_lines(resumed.stderr)
    history = read_history(run_dir / "history.csv")
    return at_kill, lines, history, resumed


@pytest.mark.slow  # trains a small model twice in child processes
def test_kill_during_finetune_then_resume(tmp_path, fault_row):
    data = make_class_folders(tmp_path / "data", per_class=48, size=32)
    run_dir = tmp_path / "run"
    command = cli("finetune", data, "--base", "lenet5", "--weights", "none", "--epochs", "5", "-b", "4",
                  "--optimizer", "sgd", "--lr", "0.01", "-o", run_dir, "--format", "json")
    at_kill, lines, history, _ = _kill_then_resume(command, run_dir)
    first = int(lines[0].split()[1].split("/")[0]) - 1  # "epoch 3/5 ..." -> 2
    assert first >= 2 and first <= len(at_kill), (at_kill, lines)
    assert [row["epoch"] for row in history] == list(range(5)), "every epoch exactly once"
    assert len(lines) == 5 - first, "the resumed run trained only the epochs that were not done"
    assert (run_dir / "model.keras").is_file() and not (run_dir / "backup").exists()
    fault_row("kill -9 during `finetune`, then `--resume`",
              "`visionkit finetune DATA --base lenet5 --weights none --epochs 5 -o run` killed once 2 epochs were in "
              "history.csv; the same command again with `--resume`",
              f"killed run: nothing; resumed run: first line `{lines[0][:40]}…`, exit 0",
              f"history.csv at the kill: epochs {at_kill}; after resume: epochs 0-4 once each, model.keras, "
              f"report.json; no backup/ left")


@pytest.mark.slow
def test_kill_during_detect_train_then_resume(tmp_path, isolated_cache, fault_row):
    data = make_yolo_dataset(tmp_path / "data", count=24)
    run_dir = tmp_path / "run"
    command = cli("detect", "train", data, "--base", "tiny_functional_cnn", "--input-size", "64", "-k", "2",
                  "--frozen-epochs", "1", "--epochs", "5", "-b", "2", "--head-filters", "8", "--no-augment",
                  "-o", run_dir)
    at_kill, lines, history, _ = _kill_then_resume(command, run_dir, after_rows=3)
    epochs = [row["epoch"] for row in history]
    assert epochs == list(range(5)), history
    assert len(lines) <= 5 - 2, "the resumed run trained only the epochs that were not done"
    assert (run_dir / "model.keras").is_file() and (run_dir / "metrics.json").is_file()
    fault_row("kill -9 during `detect train`, then `--resume`",
              "`visionkit detect train DATA --base tiny_functional_cnn --input-size 64 --frozen-epochs 1 --epochs 5 "
              "-o run` killed once 3 epochs were in history.csv (in the fine-tuning phase); again with `--resume`",
              f"resumed run: first line `{lines[0][:40]}…`, exit 0" if lines else "resumed run: exit 0",
              f"history.csv at the kill: epochs {at_kill}; after resume: epochs 0-4 once each (frozen, then fine-tune), "
              f"model.keras, metrics.json")


@pytest.mark.slow
def test_kill_during_segment_train_then_resume(tmp_path, fault_row):
    import numpy as np

    from tests.conftest import write_pair

    rng = np.random.default_rng(0)
    for i in range(24):
        image = rng.integers(0, 80, (32, 32, 3), dtype=np.uint8)
        mask = np.zeros((32, 32), np.uint8)
        y, x = rng.integers(0, 16, 2)
        image[y:y + 12, x:x + 12, 0] = 240
        mask[y:y + 12, x:x + 12] = 1
        write_pair(tmp_path / "data", f"s{i:02d}", image, mask, image_ext=".png")
    run_dir = tmp_path / "run"
    command = cli("segment", "train", tmp_path / "data", "--arch", "unet", "--depth", "1", "--filters", "2",
                  "--crop", "32", "--image-size", "32", "--epochs", "5", "-b", "2", "--no-augment", "-o", run_dir)
    at_kill, lines, history, _ = _kill_then_resume(command, run_dir)
    first = int(lines[0].split()[1].split("/")[0]) - 1
    assert 2 <= first <= len(at_kill), (at_kill, lines)
    assert [row["epoch"] for row in history] == list(range(5))
    assert (run_dir / "model.keras").is_file() and (run_dir / "report.json").is_file()
    fault_row("kill -9 during `segment train`, then `--resume`",
              "`visionkit segment train DATA --arch unet --depth 1 --filters 2 --epochs 5 -o run` (24 32×32 pairs) "
              "killed once 2 epochs were in history.csv; again with `--resume`",
              f"resumed run: first line `{lines[0][:40]}…`, exit 0",
              f"history.csv at the kill: epochs {at_kill}; after resume: epochs 0-4 once each, model.keras, "
              f"report.json")
