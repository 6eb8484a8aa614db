"""Contact sheets: the grid's size, images fitted with their aspect ratio, white around them."""

from __future__ import annotations

import numpy as np

from visionkit.core.viz import contact_sheet


def test_contact_sheet_grid_and_aspect():
    wide = np.zeros((10, 40, 3), np.uint8)
    wide[..., 0] = 255  # red, 4:1
    square = np.zeros((5, 5, 3), np.uint8)
    sheet = contact_sheet([[wide, square], [square]], tile=40, gap=4)
    assert sheet.shape == (4 + 2 * (40 + 4), 4 + 2 * (40 + 4), 3)
    cell = sheet[4:44, 4:44]
    red = (cell[..., 0] == 255) & (cell[..., 1] == 0)
    assert red.sum() == 40 * 10 and red[15:25].all() and (cell[:15] == 255).all()  # 40 x 10, centred on white
    assert (sheet[48:88, 4:44] == 0).all() and (sheet[48:88, 48:88] == 255).all()  # row 2: one image, then blank
    titled = contact_sheet([[square], [square]], [["caption"], [""]], ["row 1", "row 22"], tile=20,
                           title="a title longer than the grid")
    assert titled.shape[0] == 22 + 2 * (4 + 20 + 14) + 4 and titled.shape[1] > 200  # the title fits
    rows, cols = np.nonzero((titled == 0).all(axis=-1))  # the two black cells, found by their colour
    assert len(rows) == 2 * 20 * 20 and cols.min() > 30  # after the label column; no text painted over them


def test_contact_sheet_keeping_the_height():
    wide, tall = np.zeros((10, 40, 3), np.uint8), np.full((40, 20, 3), 100, np.uint8)
    sheet = contact_sheet([[wide, tall], [tall]], [["a", "b"], ["c"]], tile=20, gap=2, keep_height=True, font_scale=0.5)
    assert sheet.shape == (2 + 2 * (20 + 20 + 2), 2 + 80 + 2 + 10 + 2, 3)  # cells as wide as the images, captions 20 px
    assert (sheet[2:22, 2:82] == 0).all() and (sheet[2:22, 84:94] == 100).all() and (sheet[2:22, 82:84] == 255).all()
    assert (sheet[44:64, 2:12] == 100).all() and (sheet[44:64, 12:] == 255).all()  # row 2: its own width, then white
