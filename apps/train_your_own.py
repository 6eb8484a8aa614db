"""The course's transfer-learning workflow end to end: finetune an ImageNet network on your own folder of photos
(one sub-folder per class), read the bias / variance diagnosis, evaluate on photos it never saw, export to TFLite.

    python apps/train_your_own.py ../shared/data/hymenoptera/train -o runs/ants_bees --epochs 5
    python apps/train_your_own.py my_photos/ --eval my_other_photos/ --human-error 0.02

Writes the run folder (model.keras, report, curves) and ``model.tflite`` in it. The frozen backbone's features are
computed once and cached (``--no-cache-features`` trains on the images, for augmentation or fine-tuning). Written
only against visionkit's public API; offline with the default EfficientNet-Lite0 backbone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import visionkit


def describe(report, title: str) -> str:
    """Accuracy and per-class recall of an evaluation report, in a few lines."""
    lines = [f"{title}: accuracy {report.accuracy:.3f} on {report.count} photos"]
    lines += [f"  {m.label:<16} precision {m.precision:.3f}  recall {m.recall:.3f}  ({m.support} photos)"
              for m in report.per_class]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="a folder with one sub-folder of photos per class")
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/train_your_own"), help="the run folder")
    parser.add_argument("--base", default="efficientnet_lite0", help="the ImageNet backbone")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--input-size", type=int, default=None, help="square input side [default: the backbone's]")
    parser.add_argument("--eval", dest="eval_data", default=None,
                        help="photos kept apart (same class folders) to evaluate on [default: the run's test split]")
    parser.add_argument("--human-error", type=float, default=None, help="human-level error, for the avoidable bias")
    parser.add_argument("--no-cache-features", dest="cache_features", action="store_false")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    visionkit.mute_tensorflow()
    try:
        run = visionkit.finetune(args.data, args.output, base=args.base, epochs=args.epochs, seed=args.seed,
                                 cache_features=args.cache_features, human_error=args.human_error, quiet=True,
                                 input_size=(args.input_size, args.input_size) if args.input_size else None)
        print(f"trained {run.epochs} epochs in {run.seconds:.0f} s: {run.model_path}")
        print(describe(run.report, f"held-out {run.report.split} split"))
        print("diagnosis (the course's bias / variance reading):")
        print("\n".join("  " + line for line in run.report.diagnosis_text().splitlines()))
        if args.eval_data:
            print(describe(visionkit.evaluate(run.model_path, args.eval_data), f"evaluated on {args.eval_data}"))
        exported = visionkit.export(run.model_path, "tflite", args.output / "model.tflite")
    except visionkit.VisionkitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"TFLite: {exported.path} (largest output difference from Keras {exported.max_difference:.2g} on "
          f"{exported.checked} images, same top class: {'yes' if exported.same_top1 else 'no'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
