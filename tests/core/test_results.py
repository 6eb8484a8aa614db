"""The one Result contract: every result type of every task has source, error, ok, to_dict, to_rows and save."""

from __future__ import annotations

import csv
import dataclasses
import importlib
import json

import pytest

import visionkit
from visionkit.core.results import Result, Run

RESULT_MODULES = ("classification", "train", "detection", "segmentation", "faces", "style", "zoo")


def result_types() -> list[type]:
    for package in RESULT_MODULES:
        importlib.import_module(f"visionkit.{package}.results")
    importlib.import_module("visionkit.core.catalog")
    found, todo = [], [Result]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def test_every_result_type_names_its_source_and_is_exported():
    types = result_types()
    assert len(types) >= 25
    for cls in types:
        fields = {f.name for f in dataclasses.fields(cls)}
        assert "source" in fields or isinstance(getattr(cls, "source", None), property), cls
        assert "error" in fields or "error" not in cls.__dict__, cls  # no class attribute shadowing the base
        if not cls.__name__.startswith("_") and cls.__module__.startswith("visionkit.") and cls.__name__ != "LoadedImage":
            assert getattr(visionkit, cls.__name__) is cls, f"{cls.__name__} is not exported from visionkit"


def test_a_result_without_an_error_field_is_ok_and_saves_in_the_format_of_its_path(tmp_path):
    result = visionkit.ExportResult("m.keras", "m.tflite", "tflite", 1e-7, 4, True)
    assert result.error is None and result.ok and result.source == "m.keras"
    assert json.loads(open(result.save(tmp_path / "r.json")).read()) == result.to_dict()
    with open(result.save(tmp_path / "r.csv"), newline="") as handle:
        assert next(csv.DictReader(handle))["format"] == "tflite"
    result.save(tmp_path / "r.txt")  # any other suffix: the aligned table
    assert (tmp_path / "r.txt").read_text().splitlines()[0].split() == list(result.to_dict())


def test_a_failed_result_reports_its_message_and_the_evaluation_error_rate_is_separate():
    failed = visionkit.Classification("x.jpg", error="x.jpg: no such file")
    assert not failed.ok and failed.to_dict()["error"] == "x.jpg: no such file"
    assert "error" not in visionkit.Classification("y.jpg").to_dict()
    report = visionkit.EvaluationReport("m", "dev", 4, 0.75, ("a", "b"), (), ((2, 0), (1, 1)))
    assert report.error is None and report.ok and report.error_rate == pytest.approx(0.25)


def test_every_trainer_returns_a_run():
    import inspect

    for verb in ("finetune", "train_detector", "train_segmenter", "train_faces"):
        annotation = inspect.signature(getattr(visionkit, verb)).return_annotation
        returned = getattr(visionkit, annotation.split(".")[-1]) if isinstance(annotation, str) else annotation
        assert issubclass(returned, Run), verb
