"""Test helpers: random darknet ``.weights`` for a cfg, written with their own channel bookkeeping.

Nothing here uses the converter: the layout follows darknet's ``load_convolutional_weights`` (biases, then
scales, rolling means, rolling variances with ``batch_normalize=1``, then the kernel (filters, channels / groups,
size, size)) and the channel arithmetic of ``parse_route`` / ``parse_shortcut`` / ``parse_upsample``.
"""

from __future__ import annotations

import numpy as np


def sections(text: str) -> list[tuple[str, dict]]:
    out = []
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("["):
            out.append((line[1:-1], {}))
        elif "=" in line:
            key, value = line.split("=", 1)
            out[-1][1][key.strip()] = value.strip()
    return out


def layer_channels(text: str) -> list[tuple[str, dict, int, int]]:
    """(kind, options, input channels, output channels) per layer after [net]."""
    channels, rows = [], []
    net = sections(text)
    previous = int(net[0][1].get("channels", 3))
    for index, (kind, opt) in enumerate(net[1:]):
        if kind == "convolutional":
            out = int(opt["filters"])
        elif kind == "route":
            refs = [int(v) for v in opt["layers"].split(",")]
            out = sum(channels[r if r >= 0 else index + r] for r in refs) // int(opt.get("groups", 1))
        elif kind in ("yolo", "region"):
            out = 0
        elif kind == "reorg":
            out = previous * 4
        else:  # maxpool, shortcut, upsample keep the channels
            out = previous
        rows.append((kind, opt, previous, out))
        channels.append(out)
        previous = out
    return rows


def random_weights(text: str, rng: np.random.Generator) -> list[dict]:
    """Per convolutional layer: bias, (scale, mean, var), kernel — scaled so activations stay O(1)."""
    layers = []
    for kind, opt, inputs, filters in layer_channels(text):
        if kind != "convolutional":
            continue
        size, groups = int(opt.get("size", 1)), int(opt.get("groups", 1))
        fan_in = inputs // groups * size * size
        layer = {"bias": rng.normal(0, 0.1, filters)}
        if opt.get("batch_normalize") == "1":
            layer.update(scale=rng.uniform(0.5, 1.5, filters), mean=rng.normal(0, 0.1, filters),
                         var=rng.uniform(0.5, 2.0, filters))
        layer["w"] = rng.normal(0, 1.0 / np.sqrt(fan_in), (filters, inputs // groups, size, size))
        layers.append(layer)
    return layers


def weights_bytes(layers: list[dict], header=(0, 2, 5), seen: int = 64000) -> bytes:
    wide = header[0] * 10 + header[1] >= 2  # parser.c: a 64-bit 'seen' from format 0.2 on
    head = np.array(header, "<i4").tobytes() + np.array([seen], "<i8" if wide else "<i4").tobytes()
    chunks = [layer[k].ravel() for layer in layers for k in ("bias", "scale", "mean", "var", "w") if k in layer]
    return head + np.concatenate(chunks).astype("<f4").tobytes()


def write_random_weights(path, text: str, seed: int = 0) -> list[dict]:
    layers = random_weights(text, np.random.default_rng(seed))
    path.write_bytes(weights_bytes(layers))
    return layers
