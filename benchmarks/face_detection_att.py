"""How often MTCNN finds the face in the AT&T faces (92×112 grey), at their own size and shrunk, with and without
visionkit's fallback (enlarge ×2 and search again when a small image yields nothing).

Usage: python benchmarks/face_detection_att.py [FOLDER] [--scales 1.0 0.5]
Default folder: ../shared/data/att_faces. Prints found / total per scale and the seconds per image.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402

from visionkit.faces.data import identity_folders  # noqa: E402
from visionkit.core.io import load_image  # noqa: E402
from visionkit.faces.align import detect_faces  # noqa: E402

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "att_faces"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER))
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5])
    args = parser.parse_args()
    paths = identity_folders(args.folder).paths
    print(f"{'scale':>6} {'size':>8} {'found (no fallback)':>20} {'found (with fallback)':>22} {'s/image':>8}")
    for scale in args.scales:
        plain = fallback = 0
        start = time.perf_counter()
        for path in paths:
            image = load_image(path)
            if scale != 1.0:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            min_face = max(12, round(20 * scale))
            found, _ = detect_faces(image, min_face=min_face, upscale=False)
            plain += bool(found)
            if not found:
                found, _ = detect_faces(image, min_face=min_face, upscale=True)
            fallback += bool(found)
        seconds = (time.perf_counter() - start) / len(paths)
        height, width = image.shape[:2]
        print(f"{scale:>6} {f'{width}x{height}':>8} {f'{plain}/{len(paths)}':>20} {f'{fallback}/{len(paths)}':>22} {seconds:>8.3f}")


if __name__ == "__main__":
    main()
