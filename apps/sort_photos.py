"""Sort a folder of photos into sub-folders named after their top ImageNet label.

    python apps/sort_photos.py PHOTOS OUT [--min-score 0.3] [--copy | --move]

Written only against visionkit's public API; runs offline with the default model. Photos whose best score is
below --min-score go to OUT/_unsure; unreadable files are listed and left where they are. Nothing is overwritten:
a photo whose name is taken in its folder (by another photo of this run or of an earlier one) gets a numbered name
(``cat_2.jpg``). The last line sums up what was done.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import visionkit

UNSURE = "_unsure"


def folder_name(result, min_score: float) -> str:
    """The label as a folder name (no path separators), or ``_unsure``."""
    return result.label.replace("/", "-").replace("\\", "-") if result.score >= min_score else UNSURE


def free_path(folder: Path, name: str) -> Path:
    """``folder/name`` if nothing is there yet, else the first free ``folder/stem_N.ext`` (N = 2, 3, …)."""
    path, number = folder / name, 2
    while path.exists():
        path = folder / f"{Path(name).stem}_{number}{Path(name).suffix}"
        number += 1
    return path


def place(source: Path, folder: Path, move: bool) -> Path:
    """Copy or move ``source`` into ``folder`` under a name nothing else has; returns where it went."""
    folder.mkdir(parents=True, exist_ok=True)
    target = free_path(folder, source.name)
    if move:
        shutil.move(str(source), target)
    else:
        shutil.copy2(source, target)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", help="a folder of photos (sub-folders included)")
    parser.add_argument("out", help="where the label folders go")
    parser.add_argument("--min-score", type=float, default=0.3, help="below this top score a photo is unsure")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--copy", dest="move", action="store_false", help="copy the photos (the default)")
    how.add_argument("--move", dest="move", action="store_true", help="move the photos instead of copying them")
    parser.set_defaults(move=False)
    args = parser.parse_args(argv)
    visionkit.mute_tensorflow()
    try:
        results = visionkit.classify(args.photos, recursive=True, top_k=1)
    except visionkit.VisionkitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    counts: dict[str, int] = {}
    bad = 0
    for result in results:
        if not result.ok:
            print(f"skipped: {result.error}", file=sys.stderr)
            bad += 1
            continue
        label = folder_name(result, args.min_score)
        place(Path(result.source), Path(args.out) / label, args.move)
        counts[label] = counts.get(label, 0) + 1
    for label, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        print(f"{count:5d}  {label}")
    sorted_count = sum(counts.values())
    print(f"{'moved' if args.move else 'copied'} {sorted_count} photos into {len(counts)} folders of {args.out} "
          f"({counts.get(UNSURE, 0)} unsure), {bad} unreadable left in place")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
