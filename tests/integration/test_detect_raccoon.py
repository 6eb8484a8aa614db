"""The shipped raccoon detector on its held-out photos (needs ../shared/data/raccoon)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import shared_data

#: The 32 photos ``detect train`` held out (seed 0) when yolo_raccoon was trained; see its model card.
HELD_OUT = [f"raccoon-{n}" for n in (2, 4, 7, 16, 18, 23, 31, 34, 36, 39, 43, 48, 54, 72, 77, 82, 84, 89, 91, 98, 106, 111, 118, 146, 159, 161, 172, 177, 181, 184, 193, 199)]


def test_shipped_raccoon_detector_on_held_out_photos():
    from visionkit.detection.data import load_detection_data
    from visionkit.detection.val import evaluate

    data = load_detection_data(shared_data("raccoon"))
    held = data.subset([i for i, a in enumerate(data.items) if Path(a.image).stem in HELD_OUT])
    assert len(held) == 32
    report = evaluate("yolo_raccoon", held)
    assert report.map50 > 0.9  # 0.9245 when measured for the card
