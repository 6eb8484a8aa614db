"""Image loading: every mode and every kind of bad input gives RGB uint8 or one clear error."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from visionkit.core.errors import ImageError, InputError
from visionkit.core.io import expand_sources, iter_images, load_image, save_image


def _png_header_only(path, width, height):
    """A PNG whose IHDR claims width x height but holds no pixel data (a decompression-bomb header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


@pytest.fixture
def photo():
    rng = np.random.default_rng(1)
    gradient = np.linspace(0, 255, 48, dtype=np.float64)
    image = np.stack([np.tile(gradient, (32, 1)), np.tile(gradient[::-1], (32, 1)), np.full((32, 48), 90.0)], -1)
    return np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)


def test_rgb_jpeg_round_trip(tmp_path, photo):
    path = tmp_path / "a.jpg"
    Image.fromarray(photo).save(path, quality=95)
    image = load_image(path)
    assert image.dtype == np.uint8 and image.shape == (32, 48, 3)
    assert np.abs(image.astype(int) - photo).mean() < 6


def test_png_with_alpha_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    image = load_image(tmp_path / "alpha.png")
    assert image.shape == (4, 4, 3)
    assert tuple(image[0, 0]) == (200, 0, 0)
    assert tuple(image[3, 3]) == (255, 255, 255)


def test_16bit_png_is_scaled_to_8bit(tmp_path):
    values = np.array([[0, 65535], [32768, 257 * 100]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    image = load_image(tmp_path / "deep.png")
    assert image.shape == (2, 2, 3)
    assert image[0, 0, 0] == 0 and image[0, 1, 0] == 255 and image[1, 1, 0] == 100
    assert abs(int(image[1, 0, 0]) - 128) <= 1


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    image = load_image(tmp_path / "gray.png")
    assert image.shape == (8, 8, 3)
    assert np.array_equal(image[..., 0], gray) and np.array_equal(image[..., 2], gray)


def test_cmyk_jpeg_converts_to_rgb(tmp_path):
    Image.new("CMYK", (10, 6), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # pure red in CMYK
    image = load_image(tmp_path / "cmyk.jpg")
    assert image.shape == (6, 10, 3)
    red, green, blue = image.reshape(-1, 3).mean(axis=0)
    assert red > 200 and green < 60 and blue < 60


def test_palette_image(tmp_path):
    Image.new("RGB", (5, 5), (10, 200, 30)).convert("P").save(tmp_path / "pal.gif")
    image = load_image(tmp_path / "pal.gif")
    assert image.shape == (5, 5, 3) and abs(int(image[0, 0, 1]) - 200) < 10


def test_exif_orientation_is_applied(tmp_path):
    wide = np.zeros((10, 20, 3), np.uint8)
    wide[:, :10] = 255  # white left half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(wide).save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    image = load_image(tmp_path / "rot.jpg")
    assert image.shape == (20, 10, 3)  # displayed upright: tall
    assert image[:10].mean() > 200 and image[10:].mean() < 50  # left half became the top half


@pytest.mark.parametrize(
    "make, kind, words",
    [
        (lambda p: None, InputError, "no such file"),
        (lambda p: p.write_bytes(b""), ImageError, "empty file"),
        (lambda p: p.write_text("this is not a picture\n"), ImageError, "not a readable image"),
    ],
    ids=["missing", "zero-byte", "text-named-jpg"],
)
def test_bad_files_raise_one_clear_error(tmp_path, make, kind, words):
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(kind, match=words):
        load_image(path)


def test_truncated_jpeg(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        load_image(tmp_path / "cut.jpg")


def test_decompression_bomb_header_is_refused_before_decoding(tmp_path):
    _png_header_only(tmp_path / "bomb.png", 50_000, 50_000)
    with pytest.raises(ImageError, match="2,500,000,000 pixels|50000x50000"):
        load_image(tmp_path / "bomb.png")


def test_pixel_limit_is_configurable(tmp_path, photo, monkeypatch):
    Image.fromarray(photo).save(tmp_path / "a.png")
    with pytest.raises(ImageError, match="over the limit"):
        load_image(tmp_path / "a.png", max_pixels=100)
    monkeypatch.setenv("VISIONKIT_MAX_PIXELS", "100")
    with pytest.raises(ImageError):
        load_image(tmp_path / "a.png")


def test_arrays_bytes_and_float_inputs(tmp_path, photo):
    assert load_image(photo).shape == (32, 48, 3)
    assert load_image(photo[..., 0]).shape == (32, 48, 3)
    assert load_image(photo.astype(np.float32) / 255.0).max() >= 250
    Image.fromarray(photo).save(tmp_path / "a.png")
    assert np.array_equal(load_image((tmp_path / "a.png").read_bytes()), photo)
    with pytest.raises(InputError, match="shape"):
        load_image(np.zeros((2, 2, 2, 2)))
    with pytest.raises(InputError):
        load_image(12345)


def test_expand_sources_folders_globs_and_lists(tmp_path, photo):
    (tmp_path / "sub").mkdir()
    for name in ("b.jpg", "a.png", "notes.md", "sub/c.jpg"):
        Image.fromarray(photo).save(tmp_path / name, format="PNG") if name != "notes.md" else (tmp_path / name).write_text("x")
    assert [p.split("/")[-1] for p in expand_sources([tmp_path])] == ["a.png", "b.jpg"]
    assert len(expand_sources([tmp_path], recursive=True)) == 3
    assert len(expand_sources([str(tmp_path / "*.jpg")])) == 1
    listing = tmp_path / "list.txt"
    listing.write_text(f"# my photos\n{tmp_path / 'a.png'}\n\n{tmp_path / 'missing.jpg'}\n")
    assert len(expand_sources([listing])) == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        expand_sources([tmp_path / "empty"])
    with pytest.raises(InputError, match="matches no files"):
        expand_sources([str(tmp_path / "*.tif")])


def test_iter_images_keeps_order_and_goes_past_bad_files(tmp_path, photo):
    paths = []
    for i in range(5):
        path = tmp_path / f"{i}.png"
        Image.fromarray(photo).save(path) if i != 2 else path.write_text("broken")
        paths.append(str(path))
    paths.append(str(tmp_path / "missing.png"))
    items = list(iter_images(paths, workers=2, prefetch=2, transform=lambda im: im[:4, :4]))
    assert [item.source for item in items] == paths
    assert [item.ok for item in items] == [True, True, False, True, True, False]
    assert items[0].image.shape == (4, 4, 3)
    assert "not a readable image" in items[2].error and "no such file" in items[5].error


def test_save_image_is_atomic_and_checks_extension(tmp_path, photo):
    save_image(tmp_path / "out.png", photo)
    assert np.array_equal(load_image(tmp_path / "out.png"), photo)
    with pytest.raises(InputError, match="extension"):
        save_image(tmp_path / "out.xyz", photo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_save_image_keeps_masks_grey_and_alpha_where_the_format_can(tmp_path, photo):
    mask = (photo[..., 0] > 128).astype(np.uint8) * 255
    save_image(tmp_path / "mask.png", mask)
    assert Image.open(tmp_path / "mask.png").mode == "L" and np.array_equal(np.asarray(Image.open(tmp_path / "mask.png")), mask)
    rgba = np.dstack([photo, mask])
    save_image(tmp_path / "cut.png", rgba)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "cut.png")), rgba)
    save_image(tmp_path / "cut.jpg", rgba)  # JPEG has no alpha: composited on white
    assert Image.open(tmp_path / "cut.jpg").mode == "RGB"
    assert np.asarray(Image.open(tmp_path / "cut.jpg"))[mask == 0].mean() > 240


def test_as_sources_wraps_single_inputs_and_expands_paths(tmp_path, photo):
    from visionkit.core.io import as_sources

    Image.fromarray(photo).save(tmp_path / "a.png")
    assert as_sources(photo)[0] is photo and len(as_sources([photo, photo])) == 2
    assert as_sources(b"\x89PNG") == [b"\x89PNG"]
    assert as_sources(tmp_path) == [str(tmp_path / "a.png")]
    assert as_sources(str(tmp_path / "*.png")) == [str(tmp_path / "a.png")]


def test_a_raised_pixel_limit_gets_past_pillows_own_gate(tmp_path, monkeypatch):
    """VISIONKIT_MAX_PIXELS above Pillow's refusal point (2 x Image.MAX_IMAGE_PIXELS) is honoured (shown with a small
    Pillow limit, so that no large image is decoded)."""
    Image.new("RGB", (60, 60), (10, 20, 30)).save(tmp_path / "a.png")  # 3,600 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses above 2,000
    with pytest.raises(ImageError, match="has 3,600 pixels, over the limit of 3,000"):
        load_image(tmp_path / "a.png", max_pixels=3000)
    monkeypatch.setenv("VISIONKIT_MAX_PIXELS", "10000")
    assert load_image(tmp_path / "a.png").shape == (60, 60, 3)


def test_batched_results_keep_the_order_and_fill_every_batch():
    from visionkit.core.io import LoadedImage, batched_results

    items = [LoadedImage(f"i{k}", image=k) if k not in (1, 4) else LoadedImage(f"i{k}", error=f"bad {k}")
             for k in range(7)]
    batches, progress = [], []

    def predict(indices, images):
        batches.append(list(indices))
        assert images == indices  # each image arrives with its own index
        return [f"ok {i}" for i in indices]

    results = batched_results(iter(items), 7, 2, predict, lambda index, error: error,
                              lambda done, total: progress.append((done, total)))
    assert results == ["ok 0", "bad 1", "ok 2", "ok 3", "bad 4", "ok 5", "ok 6"]
    assert batches == [[0, 2], [3, 5], [6]] and progress == [(3, 7), (6, 7), (7, 7), (7, 7)]
