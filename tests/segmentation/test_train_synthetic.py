"""Sanity check: the classic U-Net learns random shapes on noise and scores mIoU >= 0.90 on held-out images.

Discs, squares and triangles of random size, place and flat colour are drawn on Gaussian noise (a shape's
colour can sit anywhere in the noise's range, so colour alone does not give it away: flat vs noisy texture
and outline do). Training goes through the real pieces: PNG pairs on disk, the data set check,
SegmentationBatches (with flips), the U-Net builder and the segmentation loss. Budget: 32x32 images,
depth 3, 8 base filters, 120 steps.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import write_pair

SIZE = 32


def random_shapes(count: int, rng: np.random.Generator):
    """(images uint8 (N, S, S, 3), masks uint8 (N, S, S)): 1-3 shapes per image, mask 1 inside a shape."""
    images = rng.normal(128, 50, (count, SIZE, SIZE, 3)).clip(0, 255).astype(np.uint8)
    masks = np.zeros((count, SIZE, SIZE), np.uint8)
    for image, mask in zip(images, masks):
        for _ in range(rng.integers(1, 4)):
            layer = np.zeros((SIZE, SIZE), np.uint8)
            radius = int(rng.integers(SIZE // 8, SIZE // 4))
            x, y = (int(v) for v in rng.integers(radius, SIZE - radius, 2))
            kind = rng.integers(3)
            if kind == 0:
                cv2.circle(layer, (x, y), radius, 1, -1)
            elif kind == 1:
                cv2.rectangle(layer, (x - radius, y - radius), (x + radius, y + radius), 1, -1)
            else:
                corners = np.array([[x, y - radius], [x - radius, y + radius], [x + radius, y + radius]], np.int32)
                cv2.fillPoly(layer, [corners], 1)
            image[layer > 0] = rng.integers(0, 256, 3)
            mask[layer > 0] = 1
    return images, masks


@pytest.mark.slow  # trains a model
def test_classic_unet_reaches_miou_090_on_held_out_shapes(tmp_path):
    import keras

    from visionkit.segmentation.augment import SegAugment, SegmentationBatches
    from visionkit.segmentation.data import open_dataset
    from visionkit.segmentation import metrics as seg_metrics
    from visionkit.segmentation.losses import SegmentationLoss
    from visionkit.segmentation.train import SegmentConfig, build_model

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images, masks = random_shapes(256, rng)
    for index, (image, mask) in enumerate(zip(images, masks)):
        write_pair(tmp_path, f"s{index:03d}", image, mask, image_ext=".png")
    data = open_dataset(tmp_path, classes="0:background,1:shape")
    flips_only = SegAugment(scale=(1.0, 1.0), rotation=0.0, brightness=0.0, contrast=0.0, saturation=0.0)
    batches = SegmentationBatches(data, batch_size=32, long_side=None, crop=SIZE, augment=flips_only, multiple=8)

    model = build_model(SegmentConfig(arch="unet", depth=3, base_filters=8), num_classes=2)
    model.compile(keras.optimizers.Adam(1e-2), SegmentationLoss("ce"), jit_compile=False)
    model.fit(batches, epochs=15, verbose=0)

    held_images, held_masks = random_shapes(64, np.random.default_rng(1))  # never seen in training
    predicted = np.asarray(model.predict_on_batch(held_images.astype("float32"))).argmax(-1)
    matrix = seg_metrics.confusion_matrix(held_masks, predicted, 2)
    iou = seg_metrics.class_iou(matrix)
    assert seg_metrics.mean_iou(matrix) >= 0.90, (iou, matrix)
    assert iou[1] >= 0.85
