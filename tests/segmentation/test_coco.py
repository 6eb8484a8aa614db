"""The shipped person segmenter on its own held-out coco128 images (the split recorded in the model)."""

from __future__ import annotations

import pytest

from tests.conftest import shared_data


@pytest.mark.slow
def test_shipped_person_segmenter_on_its_held_out_split():
    from visionkit.segmentation.val import evaluate

    report = evaluate("unet_person", shared_data("coco128"), subset="val")
    assert report.images == 20
    person = report.pooled["classes"]["person"]
    assert person["pixels"] == 353_067  # mask id 1 in the 20 held-out masks, at full resolution
    assert person["iou"] == pytest.approx(0.585, abs=0.002)  # the figure in pretrained/cards/unet_person.md
