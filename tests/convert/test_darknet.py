"""Darknet import: a tiny YOLOv2-style net written to disk, converted, and checked against a numpy forward pass.

The reference below follows darknet's C code directly (batch norm with eps outside the root, leaky 0.1,
max-pool padded with -inf, ``reorg_cpu``'s index arithmetic, route concatenation) and shares nothing with the
converter but the cfg text.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.convert.darknet_reference import cfg_text, conv, line_of, maxpool, section, sections, write_random_weights
from visionkit.core.errors import ModelError, WeightsError

#: A YOLOv2-tiny-style net: max-pool stride 1 (darknet pads it), a passthrough (route, reorg, route), [region].
TINY_CFG = cfg_text(
    conv(4), maxpool(),  # 0, 1
    conv(8), maxpool(),  # 2, 3
    conv(8, size=1), maxpool(),  # 4, 5
    conv(16), maxpool(),  # 6: 8 x 8, the passthrough source; 7
    conv(16), maxpool(stride=1),  # 8, 9
    conv(16),  # 10
    section("route", layers=-5),  # 11: layer 6
    conv(4, size=1),  # 12
    section("reorg", stride=2),  # 13
    section("route", layers=[-1, -4]),  # 14: layers 13 and 10
    conv(16),  # 15
    conv(16, size=1, activation="linear", batch_normalize=False),  # 16: 2 anchors x (5 + 3)
    section("region", anchors="0.5,0.8, 2.0,1.5", classes=3, num=2, coords=4, softmax=1),  # 17
)


def reference_forward(image, text, weights):
    """Darknet's forward pass in plain numpy, channel-first (C, H, W), from the C sources' formulas."""
    x = image.transpose(2, 0, 1).astype(np.float64) / 255.0
    outputs = []
    for index, (kind, opt) in enumerate(sections(text)[1:]):
        if kind == "convolutional":
            layer, size = weights[index], int(opt["size"])
            pad = size // 2
            padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
            c, h, w = x.shape
            out = np.zeros((len(layer["bias"]), h, w))
            for dy in range(size):
                for dx in range(size):
                    out += np.einsum("fc,chw->fhw", layer["w"][:, :, dy, dx], padded[:, dy:dy + h, dx:dx + w])
            if "scale" in layer:
                out = (out - layer["mean"][:, None, None]) / (np.sqrt(layer["var"])[:, None, None] + 1e-6)
                out = out * layer["scale"][:, None, None]
            out = out + layer["bias"][:, None, None]
            x = np.where(out > 0, out, 0.1 * out) if opt["activation"] == "leaky" else out
        elif kind == "maxpool":
            size, stride = int(opt["size"]), int(opt["stride"])
            pad = size - 1
            c, h, w = x.shape
            out_h, out_w = (h + pad - size) // stride + 1, (w + pad - size) // stride + 1
            out = np.full((c, out_h, out_w), -np.inf)
            for i in range(out_h):
                for j in range(out_w):
                    for n in range(size):
                        for m in range(size):
                            y, xx = i * stride - pad // 2 + n, j * stride - pad // 2 + m
                            if 0 <= y < h and 0 <= xx < w:
                                out[:, i, j] = np.maximum(out[:, i, j], x[:, y, xx])
            x = out
        elif kind == "route":
            refs = [int(v) for v in opt["layers"].split(",")]
            x = np.concatenate([outputs[r if r >= 0 else index + r] for r in refs], axis=0)
        elif kind == "reorg":  # reorg_cpu(input, w, h, c, batch, stride, forward=0, output), literally
            stride = int(opt["stride"])
            c, h, w = x.shape
            flat_in, flat_out = x.ravel(), np.zeros(x.size)
            out_c = c // (stride * stride)
            for k in range(c):
                for j in range(h):
                    for i in range(w):
                        in_index = i + w * (j + h * k)
                        c2, offset = k % out_c, k // out_c
                        w2, h2 = i * stride + offset % stride, j * stride + offset // stride
                        out_index = w2 + w * stride * (h2 + h * stride * c2)
                        flat_out[in_index] = flat_in[out_index]
            x = flat_out.reshape(c * stride * stride, h // stride, w // stride)
        elif kind == "region":
            num, classes = int(opt["num"]), int(opt["classes"])
            c, h, w = x.shape
            x = x.reshape(num, 5 + classes, h, w).transpose(2, 3, 0, 1)  # -> (H, W, num, 5 + C)
        outputs.append(x)
    return x


@pytest.fixture(scope="module")
def tiny_net(tmp_path_factory):
    folder = tmp_path_factory.mktemp("darknet")
    (folder / "tiny.cfg").write_text(TINY_CFG)
    weights = write_random_weights(folder / "tiny.weights", TINY_CFG, seed=0, header=(0, 2, 0), seen=123456)
    return folder, weights


def test_converted_model_matches_the_numpy_forward_pass(tiny_net):
    from visionkit.convert.darknet import convert_darknet

    folder, weights = tiny_net
    converted = convert_darknet(folder / "tiny.cfg", folder / "tiny.weights")
    assert converted.header == (0, 2, 0, 123456) and converted.num_classes == 3
    # [region] anchors are in grid cells (4 x 4 here): 0.5 cells = 0.125 of the input
    np.testing.assert_allclose(converted.anchors, [[0.125, 0.2], [0.5, 0.375]])
    images = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    ours = converted.model(images).numpy()
    assert ours.shape == (2, 4, 4, 2, 8)
    for image, output in zip(images, ours):
        np.testing.assert_allclose(output, reference_forward(image, TINY_CFG, weights), rtol=1e-4, atol=1e-4)


def test_reorg_is_not_space_to_depth(tiny_net):
    """Darknet's reorg is its own permutation; a converter using space_to_depth would scramble the passthrough."""
    import tensorflow as tf

    from visionkit.convert.darknet_layers import DarknetReorg

    x = np.arange(2 * 4 * 4 * 8, dtype=np.float32).reshape(2, 4, 4, 8)
    ours = DarknetReorg(2)(x).numpy()
    assert ours.shape == (2, 2, 2, 32) and sorted(ours.ravel()) == sorted(x.ravel())
    assert not np.array_equal(ours, tf.nn.space_to_depth(x, 2).numpy())


def test_import_then_detect_by_name(tiny_net, tmp_path, isolated_cache):
    from PIL import Image

    from visionkit.convert.darknet import import_darknet
    from visionkit.detection.predict import detect

    folder, _ = tiny_net
    path = import_darknet(folder / "tiny.cfg", folder / "tiny.weights", "tiny_darknet", names=["a", "b", "c"])
    assert path.is_file() and json.loads(path.with_suffix(".json").read_text())["class_names"] == ["a", "b", "c"]
    Image.fromarray(np.full((40, 90, 3), 128, np.uint8)).save(tmp_path / "x.png")
    result = detect(tmp_path / "x.png", "tiny_darknet", conf=0.0, max_det=3)[0]
    assert result.ok and len(result) == 3 and {b.label for b in result.boxes} <= {"a", "b", "c"}


def test_mismatched_files_are_refused(tiny_net, tmp_path):
    from visionkit.convert.darknet import convert_darknet

    folder, _ = tiny_net
    data = (folder / "tiny.weights").read_bytes()
    (tmp_path / "short.weights").write_bytes(data[:-400])
    with pytest.raises(WeightsError, match="end before"):
        convert_darknet(folder / "tiny.cfg", tmp_path / "short.weights")
    (tmp_path / "long.weights").write_bytes(data + b"\0" * 9)
    long = convert_darknet(folder / "tiny.cfg", tmp_path / "long.weights")  # darknet reads what it needs
    assert long.trailing_bytes == 9 and long.values == (len(data) - 20) // 4
    (tmp_path / "other.cfg").write_text(TINY_CFG.replace("[reorg]", "[local]"))
    with pytest.raises(ModelError, match=rf"other.cfg: cfg line {line_of(TINY_CFG, '[reorg]')}: \[local\] \(layer 13\): "
                                         rf"darknet section \[local\] is not"):
        convert_darknet(tmp_path / "other.cfg", folder / "tiny.weights")
    (tmp_path / "nosoftmax.cfg").write_text(TINY_CFG.replace("softmax=1", "softmax=0"))
    with pytest.raises(ModelError, match=r"nosoftmax.cfg: cfg line \d+: \[region\] only softmax=1"):
        convert_darknet(tmp_path / "nosoftmax.cfg", folder / "tiny.weights")


def test_cli_import_darknet(tiny_net, tmp_path, isolated_cache):
    from click.testing import CliRunner

    from visionkit.cli import cli

    folder, _ = tiny_net
    (tmp_path / "names.txt").write_text("cat\ndog\nbird\n")
    result = CliRunner().invoke(cli, ["models", "import-darknet", str(folder / "tiny.cfg"), str(folder / "tiny.weights"),
                                      "tiny_cli", "--names", str(tmp_path / "names.txt")])
    assert result.exit_code == 0, result.output
    assert "tiny_cli:" in result.output and (isolated_cache / "detectors" / "tiny_cli.keras").is_file()
    (tmp_path / "two.txt").write_text("cat\ndog\n")
    bad = CliRunner().invoke(cli, ["models", "import-darknet", str(folder / "tiny.cfg"), str(folder / "tiny.weights"),
                                   "x", "--names", str(tmp_path / "two.txt")])
    assert bad.exit_code == 1 and f"{tmp_path / 'two.txt'}: 2 class names given for a detector of 3 classes" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def test_registry_entry_downloads_converts_once_and_records_the_hash(tiny_net, tmp_path, isolated_cache):
    from visionkit.convert.darknet import registry_detector
    from visionkit.core.registry import ModelSpec, WeightsSource
    from visionkit.detection.detector import load_detector
    from visionkit.core.weights import expected_hash, file_hash

    folder, _ = tiny_net
    spec = ModelSpec(name="tiny_remote", task="detect", builder="visionkit.convert.darknet:registry_detector",
                     labels="labels/voc20.txt",
                     options={"cfg_url": (folder / "tiny.cfg").as_uri()},
                     weights=WeightsSource(source="url", url=(folder / "tiny.weights").as_uri()))
    with pytest.raises(ModelError, match="20 class names given for a detector of 3 classes"):
        registry_detector(spec)  # the labels file must fit the [region] classes
    spec = ModelSpec(**{**spec.__dict__, "labels": ""})
    path = registry_detector(spec)
    assert expected_hash(spec) == file_hash(folder / "tiny.weights")  # trust on first use, checked afterwards
    assert registry_detector(spec) == path and load_detector(path).class_names == ["0", "1", "2"]
