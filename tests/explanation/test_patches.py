"""The patches that most activate units: window maths, and the red unit finding the red squares."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.explanation.conftest import square_image
from visionkit.core.errors import UsageError
from visionkit.explanation.patches import erf_side, square_window, strongest_units, unit_centre, unit_maxima


def test_erf_side_is_the_smallest_square_holding_the_mass():
    saliency = np.zeros((20, 20))
    saliency[5:10, 5:10] = 1.0  # a 5 x 5 linear filter's gradient, centred at pixel 7 (centre 7.5)
    assert erf_side(saliency, (7.5, 7.5), 1.0) == 5
    assert erf_side(saliency, (7.5, 7.5), 0.5) == 4  # 16/25 >= 0.5 > 9/25
    assert erf_side(np.zeros((6, 9)), (3, 3), 0.5) == 9


def test_square_windows_stay_inside_the_image_and_centres_map_cells_to_pixels():
    assert square_window((1.0, 1.0), 6, (20, 30)) == (0, 0, 6, 6)
    assert square_window((19.5, 29.5), 6, (20, 30)) == (14, 24, 20, 30)
    assert square_window((10, 10), 50, (20, 30)) == (0, 0, 20, 30)
    assert unit_centre(9, (7, 7), (224, 224)) == (1.5 * 32, 2.5 * 32)


def test_maxima_and_the_strongest_units():
    activations = np.zeros((3, 2, 2, 3))
    activations[0, 1, 0, 0] = 5.0
    activations[1, 0, 1, 1] = 2.0
    activations[2, 0, 0, 1] = 3.0
    best, where, means = unit_maxima(activations)
    assert best[:, 0].tolist() == [5, 0, 0] and where[0, 0] == 2 and where[2, 1] == 0
    assert strongest_units(best, means, 2, 1) == [0, 1]  # best single image
    assert strongest_units(best, means, 1, 2) == [1]  # unit 1 has two good images, unit 0 one


def test_the_red_unit_finds_the_red_squares(colour_files, tmp_path):
    import visionkit

    boxes = {"r0.png": (2, 2, 10, 10), "r1.png": (20, 12, 30, 22), "r2.png": (8, 22, 14, 30)}
    for name, box in boxes.items():
        Image.fromarray(square_image(32, 32, box, (230, 20, 20))).save(tmp_path / name)
    for i in range(3):
        Image.fromarray(square_image(32, 32, (4 * i, 4, 4 * i + 8, 12), (20, 230, 20))).save(tmp_path / f"g{i}.png")
    (tmp_path / "broken.png").write_text("no")
    sheet = tmp_path / "sheet.png"
    result = visionkit.visualize_units(tmp_path, model=colour_files["nested"], layer="colour_relu", count=2, top=3,
                                       output=sheet, tile=24, erf_mass=1.0)
    assert result.layer == "backbone/colour_relu" and result.images == 6 and len(result.skipped) == 1
    assert sorted(result.units) == [0, 1] and result.median_side == 1  # a 1x1 convolution sees one pixel
    red = result.patches[result.units.index(0)]
    assert sorted(p.source.rsplit("/", 1)[-1] for p in red) == sorted(boxes)
    for patch in red:
        x1, y1, x2, y2 = boxes[patch.source.rsplit("/", 1)[-1]]
        assert x1 <= patch.box[0] < x2 and y1 <= patch.box[1] < y2
    assert Image.open(sheet).size[1] == 22 + 4 + 2 * (24 + 14 + 4)  # title, two rows of captioned tiles
    assert len(result.to_rows()) == 6
    with pytest.raises(UsageError, match="indices 0-1"):
        visionkit.visualize_units(tmp_path, model=colour_files["flat"], units=[2])
