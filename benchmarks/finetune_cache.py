"""Time per epoch of transfer learning with ``--cache-features`` against without, same data, same split, same run.

Both runs freeze the whole backbone (``--freeze all``), use no augmentation (cached features are of fixed
images) and the same seed, epochs and optimizer. Without the cache every epoch runs the frozen backbone over
every training and dev image; with it the backbone runs once (features written to disk) and each epoch trains
only the head. The epoch time is the median of the ``seconds`` column of each run's ``history.csv`` (training
plus dev evaluation); the one-off feature extraction and the whole run time are printed as well.

    python benchmarks/finetune_cache.py [DATA] [--epochs 6] [--base efficientnet_lite0]

Targets: cached epochs ≥ 5× faster; test accuracy within 2 points.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hymenoptera" / "train"


def _run(data, output, cache: bool, args):
    import visionkit
    from visionkit.core.training import HISTORY_FILE
    from visionkit.core.callbacks import read_history

    started = time.perf_counter()
    run = visionkit.finetune(data, output=output, base=args.base, cache_features=cache, epochs=args.epochs,
                             dev_fraction=0.15, test_fraction=0.25, seed=0, quiet=True)
    total = time.perf_counter() - started
    seconds = [row["seconds"] for row in read_history(Path(run.run_dir) / HISTORY_FILE)]
    return run, total, statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--base", default="efficientnet_lite0")
    args = parser.parse_args()
    from visionkit.core.config import set_cache_dir
    from visionkit.core.model import load_backbone

    root = Path(tempfile.mkdtemp(prefix="vk-cache-bench-"))
    set_cache_dir(root / "home")  # an empty feature cache: the cached run pays for extracting its features
    load_backbone(args.base)  # converts the weights once, outside both timed runs
    plain, plain_total, plain_epoch = _run(args.data, root / "plain", False, args)
    cached, cached_total, cached_epoch = _run(args.data, root / "cached", True, args)
    print(f"data: {args.data}; base {args.base}, freeze all, {args.epochs} epochs, seed 0; "
          f"test split {plain.report.count} images")
    print(f"{'':<22}{'epoch (median s)':>18}{'whole run (s)':>16}{'test accuracy':>16}")
    print(f"{'without cache':<22}{plain_epoch:>18.2f}{plain_total:>16.1f}{plain.report.accuracy:>16.4f}")
    print(f"{'with --cache-features':<22}{cached_epoch:>18.3f}{cached_total:>16.1f}{cached.report.accuracy:>16.4f}")
    print(f"epoch speed-up: {plain_epoch / cached_epoch:.1f}x (target >= 5x); whole-run speed-up "
          f"{plain_total / cached_total:.1f}x; accuracy difference "
          f"{abs(plain.report.accuracy - cached.report.accuracy) * 100:.2f} points (target <= 2)")
    print(f"runs kept in {root}")


if __name__ == "__main__":
    main()
