"""Hostile and unusual files, written on the fly (nothing large is stored: a bomb is a few tens of kB)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int, height: int, idat: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_bomb(path: Path, side: int = 16000) -> Path:
    """A complete, valid 1-bit PNG of side × side black pixels: ~31 kB that would decode to side² RGB pixels."""
    row = b"\0" + bytes((side + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row * 1000) for _ in range(side // 1000)) + packer.flush()
    path.write_bytes(_png(side, side, data))
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares width × height and holds one row of pixels (82 bytes for 20000 × 20000)."""
    path.write_bytes(_png(width, height, zlib.compress(b"\0" + bytes((width + 7) // 8))))
    return path


def photo(seed: int = 0, size=(64, 48)) -> Image.Image:
    """A noisy RGB photo stand-in, ``size`` = (width, height)."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def hostile_images(folder: Path) -> dict[str, str]:
    """Write every hostile and unusual image into ``folder``; returns {file name: what it is}."""
    folder.mkdir(parents=True, exist_ok=True)
    picture = photo()
    made = {}

    def add(name, what, write):
        write(folder / name)
        made[name] = what

    add("bomb.png", "decompression-bomb PNG: 31 kB, 16000×16000 1-bit", png_bomb)
    add("header_20000.png", "82-byte PNG whose header says 20000×20000", lambda p: png_header_only(p, 20000, 20000))
    add("empty.jpg", "0-byte .jpg", lambda p: p.write_bytes(b""))
    encoded = io.BytesIO()
    picture.save(encoded, "JPEG")
    add("truncated.jpg", "JPEG cut in half", lambda p: p.write_bytes(encoded.getvalue()[: len(encoded.getvalue()) // 2]))
    add("page.jpg", "an HTML error page saved as .jpg",
        lambda p: p.write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>"))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    add("exif_rotated.jpg", "JPEG 64×48 with EXIF orientation 6", lambda p: picture.save(p, exif=exif))
    add("grey16.png", "16-bit greyscale PNG", lambda p: Image.fromarray(
        np.linspace(0, 65535, 40 * 40).reshape(40, 40).astype(np.uint16)).save(p))
    add("cmyk.jpg", "CMYK JPEG", lambda p: picture.convert("CMYK").save(p))
    add("palette.png", "palette (P mode) PNG", lambda p: picture.convert("P").save(p))
    transparent = np.zeros((20, 20, 4), np.uint8)
    transparent[:10] = (255, 0, 0, 255)  # top half opaque red, bottom half fully transparent
    add("alpha.png", "RGBA PNG, bottom half transparent", lambda p: Image.fromarray(transparent).save(p))
    add("one_pixel.png", "1×1 PNG", lambda p: Image.new("RGB", (1, 1), (200, 10, 10)).save(p))
    add("name with spaces é 日本.png", "file name with spaces and non-ASCII letters", lambda p: picture.save(p))
    return made
