"""Reference helpers for the darknet tests and ``benchmarks/darknet_vs_cv2dnn.py`` (no pytest needed).

- small cfgs written from Python (:func:`cfg_text`, :func:`conv`, :func:`maxpool`, :func:`yolo`, :func:`section`),
  with :func:`line_of` to find where a key landed, so that a test can name the line an error must report;
- random darknet ``.weights`` for a cfg, written with their own channel bookkeeping: nothing here uses the
  converter; the layout follows darknet's ``load_convolutional_weights`` (biases, then scales, rolling means,
  rolling variances with ``batch_normalize=1``, then the kernel (filters, channels / groups, size, size)) and the
  channel arithmetic of ``parse_route`` / ``parse_shortcut`` / ``parse_upsample``;
- OpenCV's darknet reader (``cv2.dnn.readNetFromDarknet``, OpenCV 4.x) as the independent reference: its raw
  head tensors and its own [yolo] decoding + ``cv2.dnn.NMSBoxesBatched``, against visionkit's decode + NMS.
"""

from __future__ import annotations

import numpy as np


def section(kind: str, **options) -> str:
    """One cfg section: ``[kind]``, then a ``key=value`` line per option in the order given (a list is written
    comma-separated)."""
    lines = [f"[{kind}]"]
    for key, value in options.items():
        lines.append(f"{key}={','.join(map(str, value)) if isinstance(value, (list, tuple)) else value}")
    return "\n".join(lines) + "\n"


def conv(filters: int, size: int = 3, stride: int = 1, activation: str = "leaky", batch_normalize: bool = True,
         **options) -> str:
    """A ``[convolutional]`` section padded as darknet's own cfgs are (``pad=1``: ``size // 2`` on each side)."""
    normalize = {"batch_normalize": 1} if batch_normalize else {}
    return section("convolutional", **normalize, filters=filters, size=size, stride=stride, pad=1, **options,
                   activation=activation)


def maxpool(size: int = 2, stride: int = 2) -> str:
    return section("maxpool", size=size, stride=stride)


def yolo(mask, anchors, classes: int, **options) -> str:
    """A ``[yolo]`` head predicting anchors ``mask`` of ``anchors`` ((width, height) pairs in input pixels)."""
    return section("yolo", mask=mask, anchors=", ".join(f"{w},{h}" for w, h in anchors), classes=classes,
                   num=len(anchors), **options)


def cfg_text(*layers: str, width: int = 64, height: int = 64, channels: int = 3) -> str:
    """A whole cfg: ``[net]`` and then ``layers`` (darknet's layer 0, 1, …), a blank line between sections."""
    return "\n".join([section("net", width=width, height=height, channels=channels), *layers])


def line_of(text: str, start: str, nth: int = 0) -> int:
    """The line number (from 1) of the ``nth`` line of ``text`` that starts with ``start`` (-1: the last)."""
    return [number for number, line in enumerate(text.splitlines(), start=1) if line.startswith(start)][nth]


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


def random_weights(text: str, rng: np.random.Generator) -> dict[int, dict]:
    """Per convolutional layer (by darknet layer index): bias, (scale, mean, var), kernel (filters, channels / groups,
    size, size) — scaled so activations stay O(1)."""
    layers = {}
    for index, (kind, opt, inputs, filters) in enumerate(layer_channels(text)):
        if kind != "convolutional":
            continue
        size, groups = int(opt.get("size", 1)), int(opt.get("groups", 1))
        fan_in = inputs // groups * size * size
        layer = {"bias": rng.normal(0, 0.1, filters)}
        if opt.get("batch_normalize") == "1":
            layer.update(scale=rng.uniform(0.5, 1.5, filters), mean=rng.normal(0, 0.1, filters),
                         var=rng.uniform(0.5, 2.0, filters))
        layer["w"] = rng.normal(0, 1.0 / np.sqrt(fan_in), (filters, inputs // groups, size, size))
        layers[index] = layer
    return layers


def weights_bytes(layers: dict[int, dict], header=(0, 2, 5), seen: int = 64000) -> bytes:
    """A ``.weights`` file: the header (``seen`` 64-bit from format 0.2 on, parser.c), then each layer's values."""
    wide = header[0] * 10 + header[1] >= 2
    head = np.array(header, "<i4").tobytes() + np.array([seen], "<i8" if wide else "<i4").tobytes()
    chunks = [layer[k].ravel() for layer in layers.values() for k in ("bias", "scale", "mean", "var", "w")
              if k in layer]
    return head + np.concatenate(chunks).astype("<f4").tobytes()


def write_random_weights(path, text: str, seed: int = 0, header=(0, 2, 5), seen: int = 64000) -> dict[int, dict]:
    """Random weights for cfg ``text`` written to ``path``; returns them per layer (see :func:`random_weights`)."""
    layers = random_weights(text, np.random.default_rng(seed))
    path.write_bytes(weights_bytes(layers, header, seen))
    return layers


def cv2_head_layers(net) -> tuple[list[str], list[str]]:
    """cv2's names for the tensors feeding each [yolo] layer (just before its permute) and of the [yolo] layers."""
    names = list(net.getLayerNames())
    yolo = [n for n in names if n.startswith("yolo_")]
    return [names[names.index(n) - 2] for n in yolo], yolo


def cv2_forward(cv2, net, canvas: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """(raw head tensors as (S_h, S_w, B, 5 + C), cv2's decoded [yolo] rows) for one RGB canvas of the input size.

    The rows are (x, y, w, h) as fractions of the input, objectness, objectness x class probability (0 where not
    above the [yolo] ``thresh``, 0.2 by default).
    """
    feeds, yolo = cv2_head_layers(net)
    net.setInput(cv2.dnn.blobFromImage(canvas, 1 / 255.0, canvas.shape[1::-1], swapRB=False, crop=False))
    outputs = net.forward(feeds + yolo)
    raws = []
    for raw, rows in zip(outputs[:len(feeds)], outputs[len(feeds):]):
        channels, height, width = raw.shape[1:]
        raws.append(raw[0].transpose(1, 2, 0).reshape(height, width, len(rows) // (height * width), -1))
    return raws, np.concatenate(outputs[len(feeds):])


def cv2_boxes(cv2, rows: np.ndarray, size, conf: float, iou: float):
    """cv2's detections from its [yolo] rows: best class per box, ``NMSBoxesBatched`` -> xyxy pixels, scores, ids."""
    height, width = size
    class_ids = rows[:, 5:].argmax(axis=1)
    scores = rows[np.arange(len(rows)), 5 + class_ids]
    xywh = np.stack([(rows[:, 0] - rows[:, 2] / 2) * width, (rows[:, 1] - rows[:, 3] / 2) * height,
                     rows[:, 2] * width, rows[:, 3] * height], axis=1)
    keep = np.asarray(cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), class_ids.tolist(), conf, iou),
                      dtype=np.int64).reshape(-1)
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return boxes[keep], scores[keep], class_ids[keep]


def visionkit_boxes(raws, heads, size, conf: float, iou: float, max_det: int = 300):
    """visionkit's postprocess on one image's head outputs (decode + the toolkit's NMS), in canvas pixels."""
    from visionkit.detection.nms import non_max_suppression
    from visionkit.detection.decode import head_detections

    boxes, scores, class_ids = head_detections(raws, heads)
    height, width = size
    pixels = boxes * np.array([width, height, width, height], dtype=np.float64)
    keep = non_max_suppression(pixels, scores, class_ids, conf, iou, max_det)
    return pixels[keep], scores[keep], class_ids[keep]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def compare_box_sets(ours, theirs) -> dict:
    """Pair boxes one-to-one by class and best IoU: counts, whether the sets are the same, worst IoU and score gap."""
    (boxes_a, scores_a, ids_a), (boxes_b, scores_b, ids_b) = ours, theirs
    matched, worst_iou, worst_score = 0, 1.0, 0.0
    if len(boxes_a) and len(boxes_b):
        overlap = iou_matrix(boxes_a, boxes_b) * (ids_a[:, None] == ids_b[None, :])
        available = np.ones(len(boxes_b), dtype=bool)
        for i in np.argsort(-scores_a):
            candidates = np.where(available, overlap[i], -1.0)
            j = int(np.argmax(candidates))
            if candidates[j] > 0.5:
                available[j] = False
                matched += 1
                worst_iou = min(worst_iou, float(overlap[i, j]))
                worst_score = max(worst_score, abs(float(scores_a[i] - scores_b[j])))
    same = matched == len(boxes_a) == len(boxes_b)
    return {"ours": len(boxes_a), "theirs": len(boxes_b), "matched": matched, "same": same,
            "worst_iou": worst_iou if matched else float("nan"), "worst_score_gap": worst_score}
