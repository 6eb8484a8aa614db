"""Load images from anything a user hands us, always as RGB uint8 (H, W, 3).

Decoding uses Pillow rather than OpenCV because Pillow applies EXIF orientation, converts
CMYK/palette/16-bit/alpha modes faithfully and can refuse decompression bombs before it
allocates the pixels; OpenCV is used for resizing and drawing elsewhere.
"""

from __future__ import annotations

import glob
import io as _stdio
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from visionkit.core.errors import ImageError, InputError
from visionkit.core.results import Result

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
#: Refuse images with more pixels than this (a 50,000 x 50,000 header would need 7.5 GB).
MAX_PIXELS = 178_956_970  # Pillow's own default (about 13,000 x 13,000).
EXIF_ORIENTATION = 0x0112

ImageSource = Union[str, os.PathLike, bytes, np.ndarray, Image.Image]


def _check_size(image: Image.Image, name: str, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (a decompression bomb?); raise it with max_pixels= (or VISIONKIT_MAX_PIXELS) only if "
            "you trust the file"
        )


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to RGB uint8: 16-bit is scaled, alpha composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if pixels.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        gray = np.clip(pixels / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        span = max(pixels.max() - pixels.min(), 1e-12)
        gray = ((pixels - pixels.min()) / span * 255.0 + 0.5).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    """Accept HxW, HxWx1, HxWx3, HxWx4 arrays (uint8, uint16 or float in [0, 1])."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InputError(f"array of shape {array.shape} is not an image: expected (H, W), (H, W, 1|3|4)")
    if array.dtype == np.uint16:
        array = (array.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if np.nanmax(array, initial=0) <= 1.0:
            array = array * 255.0
        array = np.clip(np.nan_to_num(array) + 0.5, 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        array = (array[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(array)


def open_image(data: Union[str, os.PathLike, bytes], name: str, max_pixels: int, draft: int | None = None) -> np.ndarray:
    """Decode a file path or encoded bytes to RGB uint8, EXIF-rotated, size-checked."""
    stream = _stdio.BytesIO(data) if isinstance(data, bytes) else data
    if Image.MAX_IMAGE_PIXELS and 2 * Image.MAX_IMAGE_PIXELS < max_pixels:
        # Pillow refuses at open() above twice its own limit; a limit the user raised must get past that gate
        Image.MAX_IMAGE_PIXELS = max_pixels // 2 + 1
    try:
        with Image.open(stream) as image:
            _check_size(image, name, max_pixels)
            if draft and image.format == "JPEG":
                image.draft("RGB", (draft, draft))  # DCT-domain downscale: decodes big JPEGs much faster
            image.load()
            if image.getexif().get(EXIF_ORIENTATION, 1) != 1:  # exif_transpose copies even an upright image
                image = ImageOps.exif_transpose(image) or image
            return _to_rgb_array(image)
    except Image.DecompressionBombError as error:  # Pillow's own gate, met before visionkit's check
        found = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise ImageError(f"{name}: image has {size}, over the limit of {max_pixels:,} (a decompression bomb?); "
                         "raise it with max_pixels= (or VISIONKIT_MAX_PIXELS) only if you trust the file") from None
    except UnidentifiedImageError as error:
        raise ImageError(f"{name}: not a readable image ({error.__class__.__name__})") from None
    except (OSError, SyntaxError, ValueError) as error:
        reason = str(error) or error.__class__.__name__
        if "truncated" in reason.lower() or "image file is truncated" in reason:
            reason = "file is truncated"
        raise ImageError(f"{name}: cannot decode image: {reason}") from None


def load_image(source: ImageSource, max_pixels: int | None = None, draft: int | None = None) -> np.ndarray:
    """Return ``source`` as an RGB uint8 array of shape (H, W, 3).

    ``source`` may be a path, encoded bytes, a numpy array or a PIL image. ``draft`` lets JPEG
    decoding shrink by a power of two while keeping both sides >= ``draft`` pixels.
    """
    limit = max_pixels or int(os.environ.get("VISIONKIT_MAX_PIXELS", MAX_PIXELS))
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source)
    if isinstance(source, Image.Image):
        _check_size(source, "image", limit)
        return _to_rgb_array(source)
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageError("<bytes>: empty input")
        return open_image(bytes(source), "<bytes>", limit, draft)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.is_dir():
            raise InputError(f"{path}: is a folder; pass it to a batch command or use iter_images")
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes)")
        return open_image(str(path), str(path), limit, draft)
    raise InputError(f"cannot load an image from {type(source).__name__}; pass a path, bytes or an array")


def image_size(path: Union[str, os.PathLike]) -> tuple[int, int]:
    """(height, width) as displayed (EXIF rotation applied), read from the header without decoding pixels."""
    with Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
            width, height = height, width
    return height, width


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _folder_images(folder: Path, recursive: bool) -> list[str]:
    pattern = "**/*" if recursive else "*"
    return sorted(str(p) for p in folder.glob(pattern) if p.is_file() and is_image_path(p))


def expand_sources(inputs: Iterable[Union[str, os.PathLike]], recursive: bool = False) -> list[str]:
    """Turn paths, folders, glob patterns and ``.txt`` lists of paths into a list of file paths.

    Explicit files are kept even when they do not look like images, so that a bad file named
    by the user is reported rather than silently skipped. Raises InputError when nothing matches.
    """
    paths: list[str] = []
    for item in inputs:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            found = _folder_images(path, recursive)
            if not found:
                hint = "" if recursive else " (use --recursive to look in sub-folders)"
                raise InputError(f"{path}: folder holds no images{hint}")
            paths.extend(found)
        elif path.suffix.lower() == ".txt" and path.is_file():
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            paths.extend(line.strip() for line in lines if line.strip() and not line.startswith("#"))
        elif glob.has_magic(text):
            found = sorted(p for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not found:
                raise InputError(f"{text}: pattern matches no files")
            paths.extend(found)
        else:
            paths.append(text)  # missing files are reported per file by iter_images
    if not paths:
        raise InputError("no input images given")
    return paths


def as_sources(images, recursive: bool = False) -> list:
    """One image or many, as a list: paths/folders/globs/.txt lists expanded; arrays, bytes and PIL images kept."""
    single = isinstance(images, (str, os.PathLike, bytes, bytearray, Image.Image))
    if single or (isinstance(images, np.ndarray) and images.ndim in (2, 3)):
        images = [images]
    images = list(images)
    if images and all(isinstance(i, (str, os.PathLike)) for i in images):
        return expand_sources(images, recursive=recursive)
    return images


@dataclass(frozen=True)
class LoadedImage(Result):
    """One item of a batch: the image, or the reason it could not be read."""

    source: str
    image: np.ndarray | None = None
    error: str | None = None


def _load_one(source: ImageSource, draft: int | None, max_pixels: int | None, transform) -> LoadedImage:
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"<{type(source).__name__}>"
    try:
        image = load_image(source, max_pixels=max_pixels, draft=draft)
        return LoadedImage(name, transform(image) if transform else image)
    except InputError as error:
        return LoadedImage(name, error=str(error))


def iter_images(
    sources: Sequence[ImageSource],
    workers: int = 2,
    draft: int | None = None,
    max_pixels: int | None = None,
    prefetch: int = 64,
    transform=None,
) -> Iterator[LoadedImage]:
    """Decode ``sources`` in a thread pool, in order, yielding a LoadedImage per source.

    ``transform`` (array -> array) runs in the worker threads too, e.g. resize and crop. A bad file yields an item
    with ``error`` set; iteration goes on. Pillow releases the GIL while decoding, so threads overlap decoding with
    whatever the caller does (inference). A single source is decoded in this thread (no pool to start).
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    if isinstance(sources, (list, tuple)) and len(sources) == 1:
        yield _load_one(sources[0], draft, max_pixels, transform)
        return

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()
        iterator = iter(sources)
        for source in iterator:
            pending.append(pool.submit(_load_one, source, draft, max_pixels, transform))
            if len(pending) >= prefetch:
                break
        while pending:
            item = pending.popleft().result()
            nxt = next(iterator, None)
            if nxt is not None:
                pending.append(pool.submit(_load_one, nxt, draft, max_pixels, transform))
            yield item


def batched_results(items: Iterable[LoadedImage], total: int, batch_size: int,
                    predict: Callable[[list[int], list], list], failed: Callable[[int, str], Result],
                    on_progress: Callable[[int, int], None] | None = None) -> list:
    """One result per item of :func:`iter_images`, in order: ``failed(index, error)`` for an item that could not be
    read; the readable ones go to ``predict(indices, images)`` (one result each) ``batch_size`` at a time, so that a
    model sees full batches while the next images are decoded. ``on_progress(done, total)`` after every batch."""
    results: list = [None] * total
    pending: list[tuple[int, object]] = []
    done = 0

    def flush() -> None:
        nonlocal done
        indices = [index for index, _ in pending]
        for index, result in zip(indices, predict(indices, [image for _, image in pending])):
            results[index] = result
        done += len(pending)
        pending.clear()
        if on_progress:
            on_progress(done, total)

    for index, item in enumerate(items):
        if not item.ok:
            results[index] = failed(index, item.error)
            done += 1
            continue
        pending.append((index, item.image))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    if on_progress:
        on_progress(total, total)
    return [r for r in results if r is not None]


def source_name(source: ImageSource, index: int) -> str:
    """A printable name for a source: its path, or ``<array 3>`` for in-memory inputs."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return f"<{type(source).__name__} {index}>"


#: formats that keep an alpha channel; an RGBA image written as anything else is composited on white.
ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")


def save_image(path: Union[str, os.PathLike], image: np.ndarray, quality: int = 95) -> None:
    """Write an image atomically (temporary file, then rename), in the format of the path's extension.

    A 2-D uint8 array is written as greyscale (a mask stays one channel), (H, W, 4) as RGBA where the format keeps
    alpha (PNG, WebP, TIFF; composited on white otherwise), anything else as RGB (see :func:`load_image` for the
    dtypes accepted).
    """
    from visionkit.core.writers import atomic_path

    target = Path(path)
    fmt = _format_for(target)
    array = np.asarray(image)
    if array.ndim == 2 and array.dtype == np.uint8:
        picture = Image.fromarray(array)  # mode L
    elif array.ndim == 3 and array.shape[2] == 4 and array.dtype == np.uint8 and fmt in ALPHA_FORMATS:
        picture = Image.fromarray(array)  # mode RGBA
    else:
        picture = Image.fromarray(_array_to_rgb(array))
    with atomic_path(target) as tmp:
        picture.save(tmp, format=fmt, quality=quality)


def _format_for(path: Path) -> str:
    ext = path.suffix.lower()
    formats = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
    if ext not in formats:
        raise InputError(f"{path}: unknown image extension {ext!r}; use one of {', '.join(sorted(formats))}")
    return formats[ext]
