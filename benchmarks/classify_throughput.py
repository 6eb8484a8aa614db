"""Images/s of ``visionkit.classify`` over a folder of JPEGs, against two baselines in the same run.

* raw: ``model.predict`` on the same images already decoded, resized and cropped in memory;
* naive: decode + preprocess + ``model.predict`` one image at a time.

Usage: python benchmarks/classify_throughput.py [FOLDER] [--model NAME] [--batch-size 32] [--limit N]
Default folder: ../shared/data/hymenoptera/train (245 JPEGs), searched recursively.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import visionkit  # noqa: E402
from visionkit.core.io import expand_sources, load_image  # noqa: E402
from visionkit.core.preprocess import make_transform  # noqa: E402
from visionkit.core.model import load_model  # noqa: E402

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hymenoptera" / "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images")
    parser.add_argument("--naive-limit", type=int, default=60, help="images for the one-at-a-time baseline")
    args = parser.parse_args()

    paths = expand_sources([args.folder], recursive=True)
    paths = paths[: args.limit] if args.limit else paths
    start = time.perf_counter()
    loaded = load_model(args.model)
    print(f"model {args.model}: loaded in {time.perf_counter() - start:.2f} s; {len(paths)} images, batch {args.batch_size}")
    spec = loaded.spec
    transform = make_transform(spec.input_size, spec.resize, spec.interpolation, tta=False)

    # Warm-up: trace the graphs once for every path measured below.
    visionkit.classify(paths[: args.batch_size * 2], model=loaded, batch_size=args.batch_size)
    warm = np.stack([transform(load_image(p))[0] for p in paths[: args.batch_size]]).astype(np.float32)
    loaded.model.predict(warm, batch_size=args.batch_size, verbose=0)

    start = time.perf_counter()
    decoded = np.stack([transform(load_image(p))[0] for p in paths]).astype(np.float32)
    decode_seconds = time.perf_counter() - start

    start = time.perf_counter()
    loaded.model.predict(decoded, batch_size=args.batch_size, verbose=0)
    raw = len(paths) / (time.perf_counter() - start)

    start = time.perf_counter()
    results = visionkit.classify(paths, model=loaded, batch_size=args.batch_size)
    ours = len(paths) / (time.perf_counter() - start)
    assert sum(r.ok for r in results) == len(paths)

    naive_paths = paths[: args.naive_limit]
    start = time.perf_counter()
    for path in naive_paths:
        loaded.model.predict(transform(load_image(path)).astype(np.float32), verbose=0)
    naive = len(naive_paths) / (time.perf_counter() - start)

    print(f"decode + preprocess alone (1 thread): {len(paths) / decode_seconds:8.1f} images/s")
    print(f"raw model.predict on decoded arrays : {raw:8.1f} images/s")
    print(f"visionkit.classify on the JPEGs     : {ours:8.1f} images/s   ratio to raw {ours / raw:.2f} (target >= 0.85)")
    print(f"naive one-at-a-time loop            : {naive:8.1f} images/s   classify is {ours / naive:.1f}x faster")


if __name__ == "__main__":
    main()
