"""Sort a folder of photos into sub-folders named after their top ImageNet label.

    python apps/sort_photos.py PHOTOS OUT [--min-score 0.3] [--move]

Written only against visionkit's public API; runs offline with the default model. Photos whose
best score is below --min-score go to OUT/_unsure, unreadable files are listed and left alone.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import visionkit


def destination(result, out: Path, min_score: float) -> Path:
    label = result.label.replace("/", "-") if result.score >= min_score else "_unsure"
    return out / label / Path(result.source).name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos")
    parser.add_argument("out")
    parser.add_argument("--min-score", type=float, default=0.3)
    parser.add_argument("--move", action="store_true", help="move instead of copy")
    args = parser.parse_args(argv)
    try:
        results = visionkit.classify(args.photos, recursive=True, top_k=1)
    except visionkit.VisionkitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    counts: dict[str, int] = {}
    for result in results:
        if not result.ok:
            print(f"skipped: {result.error}", file=sys.stderr)
            continue
        target = destination(result, Path(args.out), args.min_score)
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.move if args.move else shutil.copy2)(result.source, target)
        counts[target.parent.name] = counts.get(target.parent.name, 0) + 1
    for label, count in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"{count:5d}  {label}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
