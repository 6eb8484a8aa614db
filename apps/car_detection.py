"""Find the cars, buses, trucks and people in street photos or a dash-cam video, as the course's autonomous-driving
exercise does with YOLO: boxes with class and score drawn on copies, every box in a CSV, a count per input.

    python apps/car_detection.py ../shared/data/coco128/images/000000000257.jpg -o street/
    python apps/car_detection.py drive.mp4 -o drive/ --conf 0.3      # writes drive/drive.mp4 with the boxes

Written only against visionkit's public API. It needs a detector trained on the 80 COCO classes (default
``yolov3_tiny_coco``, bundled): when that cannot be loaded it says so and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

import visionkit

ROAD_CLASSES = ("car", "bus", "truck", "person")


def load_coco_detector(name: str):
    """The detector; a ModelError saying which model this app needs when it cannot be loaded or lacks classes."""
    try:
        detector = visionkit.load_detector(name)
    except visionkit.VisionkitError as error:
        raise visionkit.ModelError(f"car_detection needs an 80-class COCO detector such as yolov3_tiny_coco; "
                                   f"{name!r} could not be loaded: {error}") from None
    missing = [c for c in ROAD_CLASSES if c not in detector.class_names]
    if missing:
        raise visionkit.ModelError(f"{name!r} does not detect {', '.join(missing)} (it knows "
                                   f"{', '.join(detector.class_names[:8])} …); car_detection needs a COCO detector")
    return detector


def counts_per_input(results) -> dict[str, Counter]:
    """source -> how many boxes of each class (over all frames of a video)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for result in results:
        counts[result.source].update(box.label for box in result.boxes)
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="street photos, folders of them, or video files (.mp4, .avi …)")
    parser.add_argument("-o", "--output", default="car_detection", help="folder for the drawn copies and boxes.csv")
    parser.add_argument("--model", default="yolov3_tiny_coco", help="an 80-class COCO detector")
    parser.add_argument("--conf", type=float, default=0.25, help="minimum box score")
    parser.add_argument("--iou", type=float, default=0.45, help="non-max suppression IoU")
    args = parser.parse_args(argv)
    visionkit.mute_tensorflow()
    out = Path(args.output)
    try:
        detector = load_coco_detector(args.model)
        results = visionkit.detect(args.inputs, detector, conf=args.conf, iou=args.iou, classes=list(ROAD_CLASSES),
                                   save=out)
        visionkit.write_detections(results, "csv", out / "boxes.csv", detector.class_names)
    except visionkit.VisionkitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for result in results:
        if not result.ok:
            print(f"skipped: {result.error}", file=sys.stderr)
    frames = Counter(r.source for r in results if r.frame is not None)
    for source, counts in counts_per_input(r for r in results if r.ok).items():
        found = ", ".join(f"{counts[c]} {c}" for c in ROAD_CLASSES if counts[c]) or "nothing"
        where = f" in {frames[source]} frames" if frames[source] else ""
        print(f"{source}: {found}{where}")
    print(f"boxes: {out / 'boxes.csv'}; drawn copies in {out}/")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
