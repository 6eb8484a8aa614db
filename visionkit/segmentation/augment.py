"""Joint image/mask augmentation and batching for segmentation training.

Geometry (flip, scale-crop, rotation) is ONE affine warp per pair with OpenCV's ``warpAffine``: bilinear for
the image, nearest-neighbour for the mask (class ids must never be blended), and pixels that come from
outside the image are the ignore label in the mask (reflected in the image), so padding never teaches
"background". Keras' and keras-cv's random layers warp separately and fill masks with a real class id,
which is why the matrix is composed here. Colour jitter touches the image only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import keras
import numpy as np

from visionkit.segmentation.data import SegmentationData, load_pair
from visionkit.segmentation.metrics import IGNORE_INDEX


@dataclass(frozen=True)
class SegAugment:
    """How strongly to augment (defaults defined once; the CLI reads them)."""

    flip: bool = True
    scale: tuple[float, float] = (0.75, 1.25)
    rotation: float = 10.0  # degrees either way
    brightness: float = 0.2  # fraction of 255 either way
    contrast: float = 0.2
    saturation: float = 0.2


NO_AUGMENT = SegAugment(flip=False, scale=(1.0, 1.0), rotation=0.0, brightness=0.0, contrast=0.0, saturation=0.0)


def resize_long_side(image: np.ndarray, long_side: int | None, nearest: bool = False) -> np.ndarray:
    """Resize so the longer side is ``long_side`` (area filter when shrinking; nearest for masks); None keeps it."""
    height, width = image.shape[:2]
    if not long_side or max(height, width) == long_side:
        return image
    scale = long_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    flag = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return cv2.resize(image, size, interpolation=flag)


def round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def pad_to(image: np.ndarray, height: int, width: int, value: int | None = None) -> np.ndarray:
    """Pad bottom/right to (height, width): reflected (images) or with ``value`` (masks)."""
    bottom, right = height - image.shape[0], width - image.shape[1]
    if bottom == 0 and right == 0:
        return image
    if value is None:
        return cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_REFLECT_101)
    return cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_CONSTANT, value=value)


def affine_matrix(src_hw, out_hw, scale: float, angle: float, flip: bool, shift=(0.0, 0.0)) -> np.ndarray:
    """2x3 matrix mapping source pixels to output pixels: centre, mirror, rotate, scale, then move to the
    output centre plus ``shift`` (x, y)."""
    (src_h, src_w), (out_h, out_w) = src_hw, out_hw
    centre = np.array([[1, 0, -(src_w - 1) / 2], [0, 1, -(src_h - 1) / 2], [0, 0, 1]], dtype=np.float64)
    mirror = np.diag([-1.0 if flip else 1.0, 1.0, 1.0])
    theta = math.radians(angle)
    rotate = np.array([[math.cos(theta), -math.sin(theta), 0], [math.sin(theta), math.cos(theta), 0], [0, 0, 1]])
    zoom = np.diag([scale, scale, 1.0])
    place = np.array([[1, 0, (out_w - 1) / 2 + shift[0]], [0, 1, (out_h - 1) / 2 + shift[1]], [0, 0, 1]])
    return (place @ zoom @ rotate @ mirror @ centre)[:2]


def random_geometry(rng: np.random.Generator, src_hw, out_hw, config: SegAugment) -> np.ndarray:
    """A random flip / scale / rotation and a random crop position inside the scaled image."""
    scale = float(rng.uniform(*config.scale))
    angle = float(rng.uniform(-config.rotation, config.rotation)) if config.rotation else 0.0
    flip = bool(config.flip and rng.random() < 0.5)
    slack = [max(0.0, (s * scale - o) / 2) for s, o in zip(src_hw, out_hw)]  # (y, x) room to move the crop
    shift = (float(rng.uniform(-slack[1], slack[1])), float(rng.uniform(-slack[0], slack[0])))
    return affine_matrix(src_hw, out_hw, scale, angle, flip, shift)


def warp_pair(image: np.ndarray, mask: np.ndarray, matrix: np.ndarray, out_hw) -> tuple[np.ndarray, np.ndarray]:
    """Apply one affine ``matrix``: bilinear + reflection for the image, nearest + ignore fill for the mask."""
    size = (int(out_hw[1]), int(out_hw[0]))
    warped_image = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    warped_mask = cv2.warpAffine(mask, matrix, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=IGNORE_INDEX)
    return warped_image, warped_mask


def jitter_colour(image: np.ndarray, rng: np.random.Generator, config: SegAugment) -> np.ndarray:
    """Random brightness, contrast and saturation (image only), clipped to [0, 255] float32."""
    x = image.astype(np.float32)
    if config.saturation:
        grey = x.mean(axis=-1, keepdims=True)
        x = grey + (x - grey) * (1 + rng.uniform(-config.saturation, config.saturation))
    if config.contrast:
        x = x.mean() + (x - x.mean()) * (1 + rng.uniform(-config.contrast, config.contrast))
    if config.brightness:
        x = x + 255.0 * rng.uniform(-config.brightness, config.brightness)
    return np.clip(x, 0, 255)


def canvas_pair(image: np.ndarray, mask: np.ndarray | None, long_side: int | None, multiple: int):
    """Deterministic evaluation input: resize the long side, pad to a multiple (ignore label in the mask padding)."""
    image = resize_long_side(image, long_side)
    height, width = (round_up(s, multiple) for s in image.shape[:2])
    if long_side:
        height = width = round_up(long_side, multiple)  # one shape for every image: batches, one traced graph
    padded = pad_to(image, height, width)
    if mask is None:
        return padded, None
    return padded, pad_to(resize_long_side(mask, long_side, nearest=True), height, width, IGNORE_INDEX)


class SegmentationBatches(keras.utils.PyDataset):
    """Batches of (pixels float32 (B, S, S, 3), class ids uint8 (B, S, S)) for ``model.fit``.

    Training: random crops of ``crop`` pixels after resizing each pair so its long side is ``long_side``
    (once, then cached), augmented with ``augment``. Evaluation (``augment=None``): whole images on a
    fixed padded canvas. Randomness depends only on (seed, epoch, batch), so runs repeat.
    """

    def __init__(self, data: SegmentationData, batch_size: int, long_side: int | None, crop: int,
                 augment: SegAugment | None, multiple: int = 32, seed: int = 0, shuffle: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.data, self.batch_size, self.long_side, self.crop = data, batch_size, long_side, crop
        self.augment, self.multiple, self.seed = augment, multiple, seed
        self.shuffle = shuffle and augment is not None
        self.epoch = 0
        self.order = np.arange(len(data.pairs))
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._reorder()

    def __len__(self) -> int:
        return math.ceil(len(self.data.pairs) / self.batch_size)

    def _reorder(self) -> None:
        if self.shuffle:
            self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.data.pairs))

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._reorder()

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The pair resized to ``long_side`` (cached)."""
        if index not in self._cache:
            image, mask = load_pair(*self.data.pairs[index], self.data.class_map)
            self._cache[index] = (resize_long_side(image, self.long_side),
                                  resize_long_side(mask, self.long_side, nearest=True))
        return self._cache[index]

    def __getitem__(self, batch: int):
        indices = self.order[batch * self.batch_size:(batch + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, batch])
        images, masks = [], []
        for index in indices:
            image, mask = self.pair(int(index))
            if self.augment is None:
                image, mask = canvas_pair(image, mask, None, self.multiple)
                side = round_up(self.long_side, self.multiple) if self.long_side else None
                if side:
                    image, mask = pad_to(image, side, side), pad_to(mask, side, side, IGNORE_INDEX)
            else:
                matrix = random_geometry(rng, image.shape[:2], (self.crop, self.crop), self.augment)
                image, mask = warp_pair(image, mask, matrix, (self.crop, self.crop))
                image = jitter_colour(image, rng, self.augment)
            images.append(image.astype(np.float32))
            masks.append(mask)
        return np.stack(images), np.stack(masks)
