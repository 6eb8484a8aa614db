"""Training-time augmentation: mirroring, random crop, rotation, zoom, shear, colour shifts, PCA colour noise.

Geometric and colour steps are Keras preprocessing layers (``RandomFlip``, ``RandomRotation``, ``RandomZoom``,
``RandomShear``, ``RandomColorJitter``); they run in the tf.data pipeline and only on training batches.
The AlexNet PCA colour augmentation (Krizhevsky, Sutskever & Hinton 2012, section 4.1) is written here because
neither Keras nor keras-cv ships it: each image gets ``[p1 p2 p3] · [α1 λ1, α2 λ2, α3 λ3]ᵀ`` added to every pixel,
where ``p_i``, ``λ_i`` are the eigenvectors / eigenvalues of the 3×3 covariance of the training set's RGB
values and ``α_i ~ N(0, σ)`` is drawn once per image (σ = 0.1 in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from visionkit.core.errors import UsageError

AUGMENTATIONS = ("flip", "crop", "rotate", "zoom", "shear", "colour", "pca")
PRESETS = {"none": (), "standard": ("flip", "crop", "rotate", "zoom", "colour"), "all": AUGMENTATIONS}


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run, and how strongly (defaults defined once; the CLI reads them)."""

    names: tuple[str, ...] = ()
    rotation: float = 15.0  # degrees either way
    zoom: float = 0.15  # fraction either way
    shear: float = 0.1  # x and y shear factor
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    pca_sigma: float = 0.1  # AlexNet's standard deviation of the PCA coefficients


def parse_augment(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"standard"``, ``"all"``, ``"none"`` or a comma list such as ``"flip,crop,pca"`` -> a tuple of names."""
    if text is None:
        return ()
    items = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    names: list[str] = []
    for item in items:
        item = {"color": "colour", "mirror": "flip", "rotation": "rotate"}.get(item, item)
        expanded = PRESETS.get(item, (item,))
        for name in expanded:
            if name not in AUGMENTATIONS:
                raise UsageError(f"unknown augmentation {item!r}; choose from {', '.join(AUGMENTATIONS)} "
                                 f"or a preset ({', '.join(PRESETS)})")
            if name not in names:
                names.append(name)
    return tuple(names)


def pca_colour_basis(pixels: np.ndarray, max_pixels: int = 1_000_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (3,) and eigenvectors (3, 3, columns) of the RGB covariance of ``pixels`` (…, 3) in [0, 255],
    measured on the [0, 1] scale (ImageNet gives λ ≈ 0.2175, 0.0188, 0.0045 there).

    A random sample of at most ``max_pixels`` pixels is used, which is plenty for a 3×3 covariance.
    """
    flat = np.asarray(pixels).reshape(-1, 3)
    if len(flat) > max_pixels:
        flat = flat[np.random.default_rng(seed).choice(len(flat), max_pixels, replace=False)]
    covariance = np.cov(flat.astype(np.float64) / 255.0, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    return eigenvalues.clip(min=0), eigenvectors


def pca_colour_shift(eigenvalues: np.ndarray, eigenvectors: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """The RGB offset ``255 · P · (α ⊙ λ)`` for each row of ``alphas`` (N, 3) -> (N, 3), in pixel units [0, 255]
    (λ from :func:`pca_colour_basis`, on the [0, 1] scale, used as the paper writes it: λ, not √λ).
    """
    return 255.0 * (np.asarray(alphas) * np.asarray(eigenvalues)[None, :]) @ np.asarray(eigenvectors).T


def build_augmenter(config: AugmentConfig, input_size: tuple[int, int], pca_basis=None,
                    seed: int = 0) -> Callable:
    """A function ``(batch float32 [0,255] (N,S,S,3)) -> (N,H,W,3)`` for tf.data's ``map``, training only.

    Without ``crop`` the centre ``input_size`` crop is taken, as at inference.
    """
    import keras
    import tensorflow as tf

    height, width = input_size
    names = set(config.names)
    steps = []
    if "flip" in names:
        steps.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if "rotate" in names:
        steps.append(keras.layers.RandomRotation(config.rotation / 360.0, fill_mode="reflect", seed=seed + 1))
    if "zoom" in names:
        steps.append(keras.layers.RandomZoom((-config.zoom, config.zoom), fill_mode="reflect", seed=seed + 2))
    if "shear" in names:
        steps.append(keras.layers.RandomShear(config.shear, config.shear, fill_mode="reflect", seed=seed + 3))
    if "colour" in names:
        steps.append(keras.layers.RandomColorJitter(
            value_range=(0, 255), brightness_factor=config.brightness, contrast_factor=config.contrast,
            saturation_factor=config.saturation, seed=seed + 4))
    crop = keras.layers.RandomCrop(height, width, seed=seed + 5) if "crop" in names else None
    use_pca = "pca" in names
    if use_pca and pca_basis is None:
        raise UsageError("PCA colour augmentation needs the training set's colour basis (pca_colour_basis)")
    if use_pca:
        values = tf.constant(np.asarray(pca_basis[0]), tf.float32)
        vectors = tf.constant(np.asarray(pca_basis[1]), tf.float32)
    generator = tf.random.Generator.from_seed(seed + 6)

    def augment(batch):
        x = tf.cast(batch, tf.float32)
        for layer in steps:
            x = layer(x, training=True)
        if crop is not None:
            x = crop(x, training=True)
        else:
            x = centre_crop_batch(x, height, width)
        if use_pca:
            alphas = generator.normal((tf.shape(x)[0], 3), stddev=config.pca_sigma)
            shift = 255.0 * tf.matmul(alphas * values[None, :], vectors, transpose_b=True)
            x = x + shift[:, None, None, :]
        return tf.clip_by_value(x, 0.0, 255.0)

    return augment


def centre_crop_batch(batch, height: int, width: int):
    """The centre ``height``×``width`` of a (N, S, S, C) batch (tensor or array)."""
    rows, cols = int(batch.shape[1]), int(batch.shape[2])
    top, left = (rows - height) // 2, (cols - width) // 2
    return batch[:, top:top + height, left:left + width, :]
