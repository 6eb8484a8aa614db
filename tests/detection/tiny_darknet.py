"""A tiny darknet YOLOv3-style detector for the detection tests: two [yolo] heads, a few filters, 64 px."""

from __future__ import annotations

from pathlib import Path

from tests.convert.darknet_reference import write_random_weights

#: YOLOv3-tiny's layout (two heads, route -4 / upsample / route -1,8) with a handful of filters, 3 classes.
TINY_V3 = """[net]
width=64
height=64
channels=3
[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
batch_normalize=1
filters=16
size=1
stride=1
pad=1
activation=leaky
[convolutional]
size=1
stride=1
pad=1
filters=24
activation=linear
[yolo]
mask=2,3
anchors=6,6, 10,12, 20,20, 40,36
classes=7
num=4
[route]
layers=-3
[upsample]
stride=2
[route]
layers=-1,8
[convolutional]
size=1
stride=1
pad=1
filters=24
activation=linear
[yolo]
mask=0,1
anchors=6,6, 10,12, 20,20, 40,36
classes=7
num=4
"""
NAMES = ["c0", "square", "c2", "Bar", "c4", "c5", "c6"]


def import_tiny_darknet(folder: Path, name: str = "tiny_v3") -> str:
    """The tiny cfg with random weights, imported into the (isolated) cache as ``name``; class names :data:`NAMES`."""
    from visionkit.convert.darknet import import_darknet

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.cfg").write_text(TINY_V3)
    write_random_weights(folder / "tiny.weights", TINY_V3, seed=1)
    import_darknet(folder / "tiny.cfg", folder / "tiny.weights", name, NAMES)
    return name
