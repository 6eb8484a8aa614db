"""A tiny darknet YOLOv3-style detector for the detection tests: two [yolo] heads, a few filters, 64 px."""

from __future__ import annotations

from pathlib import Path

from tests.convert.darknet_reference import cfg_text, conv, maxpool, section, write_random_weights, yolo

ANCHORS = [(6, 6), (10, 12), (20, 20), (40, 36)]
#: YOLOv3-tiny's layout (two heads; route back, upsample, route -1,8) with a handful of filters, 7 classes.
TINY_V3 = cfg_text(
    conv(4), maxpool(),  # 0, 1
    conv(8), maxpool(),  # 2, 3
    conv(8), maxpool(),  # 4, 5
    conv(8), maxpool(),  # 6, 7
    conv(16), maxpool(),  # 8, 9: 2 x 2
    conv(16, size=1),  # 10
    conv(24, size=1, activation="linear", batch_normalize=False),  # 11: 2 anchors x (5 + 7)
    yolo([2, 3], ANCHORS, 7),  # 12
    section("route", layers=-3),  # 13: layer 10
    section("upsample", stride=2),  # 14: 4 x 4
    section("route", layers=[-1, 8]),  # 15
    conv(24, size=1, activation="linear", batch_normalize=False),  # 16
    yolo([0, 1], ANCHORS, 7),  # 17
)
NAMES = ["c0", "square", "c2", "Bar", "c4", "c5", "c6"]


def import_tiny_darknet(folder: Path, name: str = "tiny_v3") -> str:
    """The tiny cfg with random weights, imported into the (isolated) cache as ``name``; class names :data:`NAMES`."""
    from visionkit.convert.darknet import import_darknet

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.cfg").write_text(TINY_V3)
    write_random_weights(folder / "tiny.weights", TINY_V3, seed=1)
    import_darknet(folder / "tiny.cfg", folder / "tiny.weights", name, NAMES)
    return name
