"""Top-1 / top-5 accuracy of a registry classifier on a folder of class folders mapped to ImageNet ids.

Usage: python benchmarks/classify_accuracy.py [FOLDER] [--map ants=310,bees=309] [--model NAME] [--tta]
Default: ../shared/data/hymenoptera/train with ants -> 310 (ant), bees -> 309 (bee).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import visionkit  # noqa: E402
from visionkit.core.io import expand_sources  # noqa: E402

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hymenoptera" / "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER))
    parser.add_argument("--map", default="ants=310,bees=309", help="sub-folder=ImageNet class id, comma separated")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--tta", action="store_true")
    args = parser.parse_args()
    mapping = {name: int(index) for name, index in (pair.split("=") for pair in args.map.split(","))}

    start = time.perf_counter()
    hits1 = hits5 = total = 0
    for folder, index in mapping.items():
        results = visionkit.classify(expand_sources([Path(args.folder) / folder]), model=args.model, top_k=5, tta=args.tta)
        for result in results:
            ranks = [p.index for p in result.top]
            hits1 += bool(ranks) and ranks[0] == index
            hits5 += index in ranks
            total += 1
        print(f"{folder:>10} (class {index}): {len(results)} images")
    print(f"model {args.model}{' +TTA' if args.tta else ''}: top-1 {hits1 / total:.3f}  top-5 {hits5 / total:.3f}  "
          f"on {total} images ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
