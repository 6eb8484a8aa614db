"""Writers: tables, JSON, JSON lines, CSV, and atomic files."""

from __future__ import annotations

import csv
import io
import json

import pytest

from visionkit.core.errors import UsageError
from visionkit.classification.results import Classification, Prediction
from visionkit.core.writers import atomic_path, emit, format_from_path, render


@pytest.fixture
def results():
    top = (Prediction(281, "tabby", 0.7), Prediction(282, "tiger cat", 0.2))
    return [Classification("cat.jpg", top, "m"), Classification("bad.jpg", (), "m", error="bad.jpg: empty file")]


def test_json_and_jsonl_hold_every_result(results):
    assert json.loads(render(results, "json"))[0]["top"][0] == {"index": 281, "label": "tabby", "score": 0.7}
    lines = render(results, "jsonl").splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["error"] == "bad.jpg: empty file"


def test_csv_has_one_row_per_rank(results):
    rows = list(csv.DictReader(io.StringIO(render(results, "csv"))))
    assert [r["label"] for r in rows] == ["tabby", "tiger cat", ""]
    assert rows[1]["rank"] == "2" and rows[2]["error"] == "bad.jpg: empty file"


def test_table_is_aligned(results):
    lines = render(results[:1], "table", columns=["source", "rank", "label", "score"]).splitlines()
    assert lines[0].split() == ["source", "rank", "label", "score"]
    assert "0.7" in lines[2].split() and len(lines) == 4


def test_unknown_format_is_a_usage_error(results):
    with pytest.raises(UsageError, match="choose one of"):
        render(results, "xml")


def test_emit_writes_atomically(tmp_path, results):
    out = tmp_path / "sub" / "out.json"
    emit(results, "json", out)
    assert len(json.loads(out.read_text())) == 2
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("crash while writing")
    assert len(json.loads(out.read_text())) == 2  # the old file is intact
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.json"]


def test_format_from_path():
    assert format_from_path("a.csv") == "csv" and format_from_path("a.JSONL") == "jsonl"
    assert format_from_path(None, default="table") == "table"


def test_atomic_files_get_the_usual_permissions(tmp_path, results):
    import os

    mask = os.umask(0o022)
    try:
        emit(results, "json", tmp_path / "out.json")
    finally:
        os.umask(mask)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o644
