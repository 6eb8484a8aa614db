"""Seconds per style-transfer optimisation step: the compiled step of ``visionkit stylize`` against a
plain eager ``tf.GradientTape`` loop of the same losses (and the compiled step with XLA), in one run.

Usage: python benchmarks/stylize_step.py [--sizes 256 512] [--repeats 5] [--backbone auto] [--no-xla]

Each size uses the default layers and weights on a square image of that size. Steps of the modes are
interleaved (compiled, eager, XLA, compiled, …) so that load from other processes hits them alike; the
medians are compared. Target: compiled >= 1.5x faster than eager.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from visionkit.style import transfer as task  # noqa: E402


def build_steps(size: int, backbone: str, modes: list[str]) -> dict:
    """A fresh image variable and Adam per mode, all optimising the same objective."""
    import keras
    from visionkit.style.features import feature_extractor
    from visionkit.style.optim import StyleObjective, make_adam_step

    rng = np.random.default_rng(0)
    content = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    style = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    layers = task.parse_layer_weights(task.DEFAULT_STYLE_LAYERS)
    extractor = feature_extractor([*layers, task.DEFAULT_CONTENT_LAYER], backbone)
    objective = StyleObjective(extractor, extractor.preprocess(content), [extractor.preprocess(style)], [1.0], layers,
                               task.DEFAULT_CONTENT_LAYER, task.DEFAULT_CONTENT_WEIGHT, task.DEFAULT_STYLE_WEIGHT,
                               task.DEFAULT_TV_WEIGHT)
    steps = {}
    for mode in modes:
        image = keras.Variable(extractor.preprocess(content), name=f"image_{mode.replace('+', '_')}")
        optimizer = keras.optimizers.Adam(learning_rate=task.DEFAULT_LR)
        optimizer.build([image])
        steps[mode] = make_adam_step(objective, image, optimizer, extractor.bounds(),
                                     compiled=mode != "eager", jit_compile=mode == "compiled+xla")
    return steps, extractor.backbone


def time_steps(steps: dict, repeats: int, warmup: int) -> dict[str, list[float]]:
    for step in steps.values():  # tracing, XLA compilation, oneDNN primitive caches
        for _ in range(warmup):
            float(step()["total"])
    times: dict[str, list[float]] = {mode: [] for mode in steps}
    for _ in range(repeats):
        for mode, step in steps.items():
            start = time.perf_counter()
            float(step()["total"])  # float() waits for the result
            times[mode].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per mode and size")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--backbone", default="auto")
    parser.add_argument("--no-xla", action="store_true", help="skip the jit_compile=True variant")
    args = parser.parse_args()
    import tensorflow as tf

    modes = ["compiled", "eager"] + ([] if args.no_xla else ["compiled+xla"])
    print(f"TF {tf.__version__}, TF_NUM_INTRAOP_THREADS={os.environ.get('TF_NUM_INTRAOP_THREADS', 'unset')}, "
          f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at start")
    for size in args.sizes:
        steps, backbone = build_steps(size, args.backbone, modes)
        times = time_steps(steps, args.repeats, args.warmup)
        medians = {mode: statistics.median(values) for mode, values in times.items()}
        cells = "  ".join(f"{mode} {medians[mode]:.3f}" for mode in modes)
        line = f"{size}x{size} {backbone}: s/step (median of {args.repeats})  {cells}"
        line += f"  | eager/compiled {medians['eager'] / medians['compiled']:.2f}x"
        if "compiled+xla" in medians:
            line += f"  compiled/xla {medians['compiled'] / medians['compiled+xla']:.2f}x"
        print(line, flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at end (other processes share these cores)")


if __name__ == "__main__":
    main()
