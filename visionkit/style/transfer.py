"""Neural style transfer (Gatys, Ecker & Bethge 2015): C's content in S's style, by optimising G's pixels.

load + resize -> VGG features (one pass, chosen layers) -> style Gram matrices once -> Adam (or L-BFGS)
on the pixels -> optional colour preservation -> :class:`~visionkit.style.results.Stylized`.

Defaults live here; the CLI reads them. Inputs: the content image is resized so its long side is
``size``; each style image is resized to the content's number of pixels, so that the brush strokes
keep a similar scale whatever the style image's size or aspect ratio (Gram matrices are normalised
by the number of positions, so they compare across sizes).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from visionkit.core.errors import InputError, UsageError
from visionkit.core.io import ImageSource, load_image, save_image, source_name
from visionkit.style.config import (DEFAULT_BACKBONE, DEFAULT_CONTENT_LAYER, DEFAULT_CONTENT_WEIGHT,  # noqa: F401
                                    DEFAULT_INIT, DEFAULT_LR, DEFAULT_OPTIMIZER, DEFAULT_SEED, DEFAULT_SIZE,
                                    DEFAULT_STEPS, DEFAULT_STYLE_LAYERS, DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT,
                                    IMAGE_SUFFIXES, INITS, MAX_STYLE_AREA_RATIO, MIN_SIDE, NOISE_AMPLITUDE,
                                    OPTIMIZERS)

ProgressCallback = Callable[[int, int, dict], None]


def parse_layer_weights(layers: str | Mapping[str, float] | Sequence[str] | None) -> dict[str, float]:
    """``"block1_conv1:0.2,block2_conv1"`` (or a mapping, or names) -> {layer: weight}.

    A layer given without a weight gets 1/n for n layers. Weights must be >= 0, not all zero.
    """
    if layers is None:
        layers = DEFAULT_STYLE_LAYERS
    if isinstance(layers, str):
        items = [item.strip() for item in layers.split(",") if item.strip()]
        pairs = [item.partition(":")[::2] for item in items]
    elif isinstance(layers, Mapping):
        pairs = [(name, value) for name, value in layers.items()]
    else:
        pairs = [(name, "") for name in layers]
    if not pairs:
        raise UsageError(f"no style layers in {layers!r}; give e.g. {DEFAULT_STYLE_LAYERS!r}")
    weights: dict[str, float] = {}
    for name, value in pairs:
        name = str(name).strip()
        try:
            weight = 1.0 / len(pairs) if value in ("", None) else float(value)
        except ValueError:
            raise UsageError(f"style layer weight {value!r} for {name!r} is not a number") from None
        if not np.isfinite(weight) or weight < 0:
            raise UsageError(f"style layer weight for {name!r} must be a number >= 0, received {value!r}")
        weights[name] = weights.get(name, 0.0) + weight
    if not any(weights.values()):
        raise UsageError(f"style layer weights are all zero in {layers!r}")
    return weights


def parse_blend(blend: str | Sequence[float] | None, count: int) -> list[float]:
    """Blend weights of ``count`` style images, normalised to sum 1 (equal when ``blend`` is None)."""
    if blend is None or (isinstance(blend, str) and not blend.strip()):
        return [1.0 / count] * count
    try:
        values = [float(v) for v in (blend.split(",") if isinstance(blend, str) else blend)]
    except ValueError:
        raise UsageError(f"blend weights must be numbers, received {blend!r}") from None
    if len(values) != count:
        raise UsageError(f"{count} style image(s) but {len(values)} blend weight(s) in {blend!r}")
    if any(not np.isfinite(v) or v < 0 for v in values) or sum(values) <= 0:
        raise UsageError(f"blend weights must be >= 0 and not all zero, received {blend!r}")
    return [v / sum(values) for v in values]


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def fit_long_side(image: np.ndarray, size: int, name: str = "image") -> np.ndarray:
    """Resize so the long side is ``size`` pixels (aspect kept); InputError if the short side gets under MIN_SIDE."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    if min(new_w, new_h) < MIN_SIDE:
        raise InputError(
            f"{name}: {width}x{height} at size {size} would be {new_w}x{new_h}, under the {MIN_SIDE} px "
            f"that VGG's five blocks need on the short side; crop it or raise --size"
        )
    return image if (new_w, new_h) == (width, height) else _resize(image, new_w, new_h)


def fit_area(image: np.ndarray, area: int, name: str = "style image") -> np.ndarray:
    """Resize to about ``area`` pixels (aspect kept) with the short side at least MIN_SIDE.

    InputError when that short side would take more than MAX_STYLE_AREA_RATIO x ``area`` pixels (a sliver).
    """
    height, width = image.shape[:2]
    scale = max(np.sqrt(area / (height * width)), MIN_SIDE / min(height, width))
    new_w, new_h = round(width * scale), round(height * scale)
    if new_w * new_h > MAX_STYLE_AREA_RATIO * area:
        raise InputError(
            f"{name}: {width}x{height} is too elongated: a {MIN_SIDE} px short side makes it {new_w}x{new_h}, "
            f"over {MAX_STYLE_AREA_RATIO:g} times the content's pixels; crop it to a less extreme aspect ratio"
        )
    return image if (new_w, new_h) == (width, height) else _resize(image, new_w, new_h)


def is_grayscale(image: np.ndarray, tolerance: int = 2) -> bool:
    """Whether the three channels are (nearly) equal everywhere."""
    pixels = image.astype(np.int16)
    return bool(np.abs(pixels[..., 0] - pixels[..., 1]).max() <= tolerance
                and np.abs(pixels[..., 1] - pixels[..., 2]).max() <= tolerance)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """The Y channel of YCrCb (ITU-R BT.601, as OpenCV computes it), float32 (H, W)."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb, np.uint8), cv2.COLOR_RGB2YCrCb)[..., 0].astype(np.float32)


def match_luminance(style_y: np.ndarray, content_y: np.ndarray) -> np.ndarray:
    """Shift and scale the style's luminance to the content's mean and deviation (Gatys et al. 2016, eq. 1)."""
    spread = style_y.std()
    scale = content_y.std() / spread if spread > 1e-6 else 1.0
    return np.clip((style_y - style_y.mean()) * scale + content_y.mean(), 0, 255)


def gray_rgb(y: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(np.rint(y), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def combine_luminance(result_rgb: np.ndarray, content_rgb: np.ndarray) -> np.ndarray:
    """The result's luminance with the content's chroma (Cr, Cb): colour preserved, strokes transferred."""
    import cv2

    ycrcb = cv2.cvtColor(np.ascontiguousarray(content_rgb, np.uint8), cv2.COLOR_RGB2YCrCb)
    ycrcb[..., 0] = np.clip(np.rint(luminance(result_rgb)), 0, 255).astype(np.uint8)
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)


def initial_image(content_x: np.ndarray, init: str, bounds, seed: int) -> np.ndarray:
    """Starting point in preprocessed space: the content, uniform noise over the pixel range, or content + noise."""
    rng = np.random.default_rng(seed)
    low, high = (np.asarray(b, np.float32) for b in bounds)
    if init == "content":
        x = content_x.copy()
    elif init == "noise":
        x = rng.uniform(low, high, size=content_x.shape).astype(np.float32)
    elif init == "content+noise":
        x = content_x + rng.uniform(-NOISE_AMPLITUDE, NOISE_AMPLITUDE, size=content_x.shape).astype(np.float32)
    else:
        raise UsageError(f"unknown init {init!r}; choose one of: {', '.join(INITS)}")
    return np.clip(x, low, high).astype(np.float32)


def contact_sheet(panels: Sequence[np.ndarray], labels: Sequence[str], height: int = 256, gap: int = 6) -> np.ndarray:
    """Panels side by side at a common ``height``, each captioned underneath (RGB uint8): the ``--grid`` sheet, one
    row of :func:`visionkit.core.viz.contact_sheet`."""
    from visionkit.core.viz import contact_sheet as sheet

    return sheet([panels], [labels], tile=height, gap=gap, keep_height=True, font_scale=0.55)


def _check_options(steps, size, lr, weights, init, optimizer, save_every) -> None:
    if steps < 0:
        raise UsageError(f"steps must be >= 0, received {steps}")
    if size is not None and size < MIN_SIDE:
        raise UsageError(f"size must be at least {MIN_SIDE} pixels, received {size}")
    if not lr > 0:
        raise UsageError(f"learning rate must be > 0, received {lr}")
    for name, value in weights.items():
        if not np.isfinite(value) or value < 0:
            raise UsageError(f"{name} must be a number >= 0, received {value}")
    if init not in INITS:
        raise UsageError(f"unknown init {init!r}; choose one of: {', '.join(INITS)}")
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if save_every < 0:
        raise UsageError(f"save_every must be >= 0, received {save_every}")


def stylize(
    content: ImageSource,
    style: ImageSource | Sequence[ImageSource],
    size: int | None = DEFAULT_SIZE,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    content_weight: float = DEFAULT_CONTENT_WEIGHT,
    style_weight: float = DEFAULT_STYLE_WEIGHT,
    tv_weight: float = DEFAULT_TV_WEIGHT,
    style_layers: str | Mapping[str, float] | Sequence[str] | None = DEFAULT_STYLE_LAYERS,
    content_layer: str = DEFAULT_CONTENT_LAYER,
    blend: str | Sequence[float] | None = None,
    preserve_color: bool = False,
    init: str = DEFAULT_INIT,
    optimizer: str = DEFAULT_OPTIMIZER,
    backbone: str = DEFAULT_BACKBONE,
    seed: int = DEFAULT_SEED,
    save_every: int = 0,
    frames_dir: str | os.PathLike | None = None,
    jit_compile: bool = False,
    on_progress: ProgressCallback | None = None,
    output: str | os.PathLike | None = None,
    grid: str | os.PathLike | None = None,
    history: str | os.PathLike | None = None,
):
    """Paint ``content`` in the style of ``style`` (one image or several, mixed by ``blend``).

    ``size`` is the output's long side (None keeps the content's size). ``steps`` = 0 only checks the
    inputs and weights and returns the starting image with its losses. ``preserve_color`` transfers
    luminance only (Gatys et al. 2016). ``save_every`` N writes the image every N steps to ``frames_dir``
    (default with ``output``: ``<output stem>_frames/`` beside it). ``output`` writes the result image, ``grid`` a
    contact sheet content | style(s) | result, ``history`` the loss per step (.csv, .json or .jsonl); their paths
    are checked before any work starts and listed in ``files``.
    Returns a :class:`~visionkit.style.results.Stylized` (image + loss history).
    """
    from visionkit.style.features import check_layers, feature_extractor, resolve_backbone
    from visionkit.style.results import Stylized
    from visionkit.style.optim import StyleObjective, run_adam, run_lbfgs

    started = time.perf_counter()
    _check_options(steps, size, lr, {"content_weight": content_weight, "style_weight": style_weight,
                                     "tv_weight": tv_weight}, init, optimizer, save_every)
    for path, option in ((output, "output"), (grid, "grid")):
        if path is not None:
            check_image_path(path, option)
    if save_every and frames_dir is None and output is not None:
        frames_dir = Path(output).with_name(f"{Path(output).stem}_frames")
    if save_every and frames_dir is None:
        raise UsageError("save_every needs frames_dir (the folder the frames go to)")
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise UsageError("no style image given")
    layer_weights = parse_layer_weights(style_layers)
    mix = parse_blend(blend, len(styles))
    name = resolve_backbone(backbone)
    check_layers([*layer_weights, content_layer], name)

    content_rgb = load_image(content)
    content_name = source_name(content, 0)
    if size is not None:
        content_rgb = fit_long_side(content_rgb, size, content_name)
    height, width = content_rgb.shape[:2]
    notes: list[str] = []
    style_rgbs = []
    for index, source in enumerate(styles):
        image = load_image(source)
        label = source_name(source, index)
        if is_grayscale(image) and not preserve_color:
            notes.append(f"{label} is grayscale, so the result will be mostly grey; "
                         "--preserve-color keeps the content's colours")
        style_rgbs.append(fit_area(image, height * width, label))

    if preserve_color:
        content_y = luminance(content_rgb)
        target_content = gray_rgb(content_y)
        target_styles = [gray_rgb(match_luminance(luminance(s), content_y)) for s in style_rgbs]
    else:
        target_content, target_styles = content_rgb, style_rgbs

    extractor = feature_extractor([*layer_weights, content_layer], name)
    content_x = extractor.preprocess(target_content)
    objective = StyleObjective(extractor, content_x, [extractor.preprocess(s) for s in target_styles], mix,
                               layer_weights, content_layer, content_weight, style_weight, tv_weight)
    bounds = extractor.bounds()
    x0 = initial_image(content_x, init, bounds, seed)

    def to_rgb(x: np.ndarray) -> np.ndarray:
        rgb = extractor.deprocess(x)
        return combine_luminance(rgb, content_rgb) if preserve_color else rgb

    frames: list[str] = []

    def write_frame(step: int, x: np.ndarray) -> None:
        path = Path(frames_dir) / f"step_{step:05d}.jpg"
        save_image(path, to_rgb(x), quality=90)
        frames.append(str(path))

    progress = (lambda step, terms: on_progress(step, steps, terms)) if on_progress else None
    optimise_started = time.perf_counter()
    if optimizer == "lbfgs":
        final, losses = run_lbfgs(objective, x0, steps, bounds, progress, write_frame, save_every)
    else:
        final, losses = run_adam(objective, x0, steps, lr, bounds, progress, write_frame, save_every,
                                 jit_compile=jit_compile)
    optimise_seconds = time.perf_counter() - optimise_started
    image = to_rgb(final)
    done_steps = losses[-1]["step"]
    settings = {
        "size": size, "steps": steps, "lr": lr, "content_weight": content_weight, "style_weight": style_weight,
        "tv_weight": tv_weight, "style_layers": layer_weights, "content_layer": content_layer, "blend": mix,
        "preserve_color": preserve_color, "init": init, "optimizer": optimizer, "seed": seed,
    }
    result = Stylized(
        image=image, history=tuple(losses), content=content_name,
        styles=tuple(source_name(s, i) for i, s in enumerate(styles)), backbone=name,
        steps=done_steps, seconds=time.perf_counter() - started,
        seconds_per_step=optimise_seconds / done_steps if done_steps else 0.0,
        settings=settings, frames=tuple(frames), notes=tuple(notes),
        style_images=tuple(style_rgbs), content_image=content_rgb,
    )
    return _write(result, output, grid, history)


def check_image_path(path: str | os.PathLike, option: str = "output") -> None:
    """A UsageError unless ``path`` ends in an image suffix the result can be written as."""
    from visionkit.core.io import IMAGE_EXTENSIONS

    if Path(path).suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"{option} {os.fspath(path)!r}: not an image file name; end it in .jpg or .png "
                         f"(readable: {', '.join(IMAGE_EXTENSIONS)})")


def _write(result, output, grid, history):
    """Write the image, the contact sheet and the loss history that were asked for; their paths go in ``files``."""
    from dataclasses import replace

    from visionkit.core.writers import emit, format_from_path

    files = {}
    if output is not None:
        save_image(output, result.image)
        files["image"] = os.fspath(output)
    if grid is not None:
        panels = [result.content_image, *result.style_images, result.image]
        labels = ["content", *(f"style {Path(s).name}" for s in result.styles), "result"]
        save_image(grid, contact_sheet(panels, labels))
        files["grid"] = os.fspath(grid)
    if history is not None:
        emit([result], format_from_path(history, default="csv"), history)
        files["history"] = os.fspath(history)
    return replace(result, files=files) if files else result
