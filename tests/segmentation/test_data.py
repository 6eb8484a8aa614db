"""Image/mask pairs: pairing, class files, --classes rules, bad input, and joint augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import write_pair
from visionkit.segmentation import data as seg
from visionkit.core.errors import DatasetError, UsageError
from visionkit.segmentation.metrics import IGNORE_INDEX


def _image(h=20, w=30):
    return np.full((h, w, 3), 120, np.uint8)


def test_pairs_by_stem_and_identity_classes(tmp_path):
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 5:10] = 2
    mask[0, 0] = 255
    write_pair(tmp_path, "b", _image(), mask)
    write_pair(tmp_path, "a", _image(), np.ones((20, 30), np.uint8))
    data = seg.open_dataset(tmp_path)
    assert [p[0].name for p in data.pairs] == ["a.jpg", "b.jpg"]
    assert data.class_names == ("0", "1", "2")
    assert data.pixel_counts.tolist() == [[0, 600, 0], [574, 0, 25]]  # the 255 pixel is ignored
    image, loaded = seg.load_pair(*data.pairs[1], data.class_map)
    assert image.shape == (20, 30, 3) and loaded[0, 0] == IGNORE_INDEX and loaded[6, 6] == 2


def test_coco_style_rule_maps_merges_and_ignores(tmp_path):
    values = np.array([[0, 1, 7], [200, 1, 255]], np.uint8)
    class_map = seg.parse_classes("1:person,0:ignore,*:background")
    assert class_map.names == ("background", "person")  # background always gets id 0
    mapped = seg.apply_class_map(values.astype(np.int32), class_map)
    assert mapped.tolist() == [[IGNORE_INDEX, 1, 0], [0, 1, IGNORE_INDEX]]
    assert "ignored source ids: 0,255" in class_map.describe()
    again = seg.ClassMap.from_dict(json.loads(json.dumps(class_map.to_dict())))
    assert np.array_equal(again.lut, class_map.lut) and again.names == class_map.names


def test_rule_with_ranges_and_class_file_names(tmp_path):
    names = tmp_path / "classes.json"
    names.write_text(json.dumps({"mask_ids": {"0": "unlabeled", "1": "person", "2": "bicycle", "3": "car"}}))
    class_file = seg.read_class_file(names)
    class_map = seg.parse_classes("person:person,2-3:vehicle,unlabeled:ignore", class_file)
    assert class_map.names == ("person", "vehicle")
    assert seg.apply_class_map(np.array([[1, 2, 3, 0]]), class_map).tolist() == [[0, 1, 1, IGNORE_INDEX]]
    with pytest.raises(DatasetError, match="outside the class map"):
        seg.apply_class_map(np.array([[1, 9]]), class_map)
    with pytest.raises(UsageError, match="not an id"):
        seg.parse_classes("horse:animal,*:background", class_file)
    with pytest.raises(UsageError, match="at least 2"):
        seg.parse_classes("*:background")


def test_colour_masks_through_a_class_file(tmp_path):
    (tmp_path / "classes.txt").write_text("background 0 0 0\n# a comment\nroad #804080\nvoid 255 255 255\n")
    class_file = seg.read_class_file(tmp_path / "classes.txt")
    mask = np.zeros((20, 30, 3), np.uint8)
    mask[:, 10:] = (128, 64, 128)
    mask[0, :] = (255, 255, 255)
    write_pair(tmp_path, "x", _image(), mask)
    data = seg.open_dataset(tmp_path, class_file=tmp_path / "classes.txt")
    assert data.class_names == ("background", "road")
    _, loaded = seg.load_pair(*data.pairs[0], data.class_map)
    assert loaded[5, 15] == 1 and loaded[5, 5] == 0 and loaded[0, 0] == IGNORE_INDEX
    assert class_file.colours[(128, 64, 128)] == 1


def test_unknown_colour_names_the_colour(tmp_path):
    (tmp_path / "classes.txt").write_text("background 0 0 0\nroad 128 64 128\n")
    mask = np.zeros((20, 30, 3), np.uint8)
    mask[3, 3] = (1, 2, 3)
    write_pair(tmp_path, "x", _image(), mask)
    with pytest.raises(DatasetError, match=r"colour \(1, 2, 3\)"):
        seg.open_dataset(tmp_path, class_file=tmp_path / "classes.txt")


def test_rgb_mask_where_ids_are_expected(tmp_path):
    mask = np.zeros((20, 30, 3), np.uint8)
    mask[:, :5] = (200, 10, 10)
    write_pair(tmp_path, "x", _image(), mask)
    with pytest.raises(DatasetError, match="colour .*class ids were expected"):
        seg.open_dataset(tmp_path)


def test_grey_ids_saved_as_rgb_are_accepted(tmp_path):
    mask = np.zeros((20, 30, 3), np.uint8)
    mask[:, :5] = 1
    write_pair(tmp_path, "x", _image(), mask)
    assert seg.open_dataset(tmp_path).class_names == ("0", "1")


def test_size_mismatch_is_reported_with_both_sizes(tmp_path):
    write_pair(tmp_path, "x", _image(20, 30), np.zeros((10, 30), np.uint8))
    with pytest.raises(DatasetError, match="mask is 30x10 but its image x.jpg is 30x20"):
        seg.open_dataset(tmp_path)


def test_values_outside_the_class_file(tmp_path):
    (tmp_path / "classes.txt").write_text("background\ncat\n")
    mask = np.zeros((20, 30), np.uint8)
    mask[2, 2] = 5
    write_pair(tmp_path, "x", _image(), mask)
    with pytest.raises(DatasetError, match="mask values 5 are outside the class map"):
        seg.open_dataset(tmp_path, class_file=tmp_path / "classes.txt")


def test_images_without_masks(tmp_path):
    write_pair(tmp_path, "x", _image(), np.zeros((20, 30), np.uint8))
    Image.fromarray(_image()).save(tmp_path / "images" / "lonely.jpg")
    with pytest.raises(DatasetError, match="1 of 2 images have no mask .*lonely.jpg.*--skip-unmasked"):
        seg.find_pairs(tmp_path)
    assert len(seg.find_pairs(tmp_path, skip_unmasked=True)) == 1


def test_layout_and_lossy_mask_errors(tmp_path):
    with pytest.raises(DatasetError, match="images/ and masks/"):
        seg.find_pairs(tmp_path)
    write_pair(tmp_path, "x", _image(), np.zeros((20, 30), np.uint8))
    Image.fromarray(_image()).save(tmp_path / "masks" / "y.jpg")
    with pytest.raises(DatasetError, match="lossy"):
        seg.find_pairs(tmp_path)


def test_split_is_seeded_and_disjoint():
    train, val = seg.split_indices(10, 0.2, seed=3)
    assert len(val) == 2 and sorted(train + val) == list(range(10))
    assert seg.split_indices(10, 0.2, seed=3) == (train, val)
    with pytest.raises(DatasetError, match="at least 2"):
        seg.split_indices(1, 0.2)


def test_joint_augmentation_keeps_mask_ids_and_pixel_alignment(rng):
    from visionkit.segmentation.augment import SegAugment, jitter_colour, random_geometry, warp_pair

    mask = np.kron(rng.integers(0, 3, (4, 6)), np.ones((10, 10))).astype(np.uint8)  # blocks of 10x10 pixels
    image = np.repeat((mask * 80)[..., None], 3, axis=2).astype(np.uint8)  # the image encodes the mask
    config = SegAugment(rotation=30.0, scale=(0.5, 1.5))
    for _ in range(5):
        matrix = random_geometry(rng, mask.shape, (32, 32), config)
        warped_image, warped_mask = warp_pair(image, mask, matrix, (32, 32))
        assert set(np.unique(warped_mask)) <= {0, 1, 2, IGNORE_INDEX}  # nearest neighbour: no blended ids
        inside = warped_mask != IGNORE_INDEX
        # away from edges between classes the bilinear image agrees with the nearest-neighbour mask
        agree = np.abs(warped_image[..., 0].astype(int) - warped_mask.astype(int) * 80) <= 1
        assert agree[inside].mean() > 0.8
    jittered = jitter_colour(image, rng, config)
    assert jittered.dtype == np.float32 and jittered.min() >= 0 and jittered.max() <= 255


def test_flip_only_warp_is_an_exact_mirror():
    from visionkit.segmentation.augment import affine_matrix, warp_pair

    mask = np.arange(12, dtype=np.uint8).reshape(3, 4)
    image = np.repeat(mask[..., None], 3, axis=2)
    warped_image, warped_mask = warp_pair(image, mask, affine_matrix((3, 4), (3, 4), 1.0, 0.0, True), (3, 4))
    assert np.array_equal(warped_mask, mask[:, ::-1]) and np.array_equal(warped_image[..., 0], mask[:, ::-1])
