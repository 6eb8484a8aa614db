"""How a registry or saved model is fed: resize the short side, centre-crop (or take ten crops), and read its
outputs as probabilities. ``ModelSpec.resize`` / ``input_size`` / ``interpolation`` say how; every task that feeds
a classifier-style model (classify, evaluate, export, finetune's decoding) uses these same steps.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from PIL import Image

_FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "area": Image.BOX,
            "lanczos": Image.LANCZOS}


def resize_short_side(image: np.ndarray, short: int, interpolation: str = "bilinear") -> np.ndarray:
    """Resize so the shorter side is ``short`` pixels, keeping the aspect ratio (antialiased)."""
    size = resized_size(*image.shape[:2], short)
    return np.asarray(Image.fromarray(image).resize(size, _FILTERS[interpolation]))


def resized_size(height: int, width: int, short: int) -> tuple[int, int]:
    """(width, height) after resizing the shorter side to ``short`` (as :func:`resize_short_side` does)."""
    scale = short / min(height, width)
    return max(short, round(width * scale)), max(short, round(height * scale))


def resize_centre_crop(image: np.ndarray, short: int, height: int, width: int,
                       interpolation: str = "bilinear") -> np.ndarray:
    """``centre_crop(resize_short_side(image, short), height, width)`` in one Pillow call that resamples only the
    crop's source box (``Image.resize(box=...)``): about 40 % less work for a 4:3 photo. The same filter taps, so the
    same pixels up to the rounding of the intermediate pass (±1 for nearly all differing pixels)."""
    rows, cols = image.shape[:2]
    new_width, new_height = resized_size(rows, cols, short)
    if new_height < height or new_width < width:
        return centre_crop(resize_short_side(image, short, interpolation), height, width)
    scale_x, scale_y = new_width / cols, new_height / rows
    top, left = (new_height - height) // 2, (new_width - width) // 2
    box = (left / scale_x, top / scale_y, (left + width) / scale_x, (top + height) / scale_y)
    return np.asarray(Image.fromarray(image).resize((width, height), _FILTERS[interpolation], box=box))


def centre_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    return image[top:top + height, left:left + width]


def ten_crops(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Four corners and the centre, and their mirror images (Krizhevsky et al. 2012, section 4.1)."""
    rows, cols = image.shape[:2]
    corners = [(0, 0), (0, cols - width), (rows - height, 0), (rows - height, cols - width)]
    crops = [image[r:r + height, c:c + width] for r, c in corners] + [centre_crop(image, height, width)]
    return np.stack(crops + [crop[:, ::-1] for crop in crops])


def make_transform(input_size: Sequence[int], resize: int | None, interpolation: str, tta: bool) -> Callable:
    """The per-image preprocessing as one function (run in the decoding threads)."""
    height, width = input_size
    short = resize or min(height, width)

    def transform(image: np.ndarray) -> np.ndarray:
        side = max(short, height, width) if resize is None else short
        if tta:
            return ten_crops(resize_short_side(image, side, interpolation), height, width)
        return resize_centre_crop(image, side, height, width, interpolation)[None]

    return transform


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Softmax the outputs unless they already are probabilities (rows summing to 1)."""
    outputs = outputs.astype(np.float64)
    if np.all(outputs >= 0) and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3):
        return outputs
    shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def resize(image: np.ndarray, height: int, width: int, interpolation: str = "bilinear") -> np.ndarray:
    """``image`` resized to exactly ``height`` x ``width`` (aspect ratio not kept), antialiased."""
    return np.asarray(Image.fromarray(image).resize((width, height), _FILTERS[interpolation]))
