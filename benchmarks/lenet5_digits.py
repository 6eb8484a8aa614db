"""LeNet-5 trained from scratch on real handwritten digits, through the public API (``visionkit.finetune``).

Data: scikit-learn's ``load_digits`` (1,797 8×8 images of handwritten digits, 16 grey levels, from the UCI
"Optical Recognition of Handwritten Digits" set; ships inside scikit-learn, so it works offline). The images are
upscaled to 32×32 (bilinear) and written as PNG class folders, then trained with ``--base lenet5 --weights none``
on a stratified seeded split; the test split (20 %) is never trained on or used for early stopping.

    python benchmarks/lenet5_digits.py [--epochs 30] [--augment rotate,zoom] [--keep DIR]

Prints the test accuracy and the bias/variance diagnosis. Target: ≥ 0.97 test accuracy.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_digits(folder: Path, size: int = 32) -> int:
    """Write ``load_digits`` as ``folder/<digit>/<index>.png`` (RGB, ``size``×``size``); returns the image count."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index, (image, label) in enumerate(zip(digits.images, digits.target)):
        grey = (image / 16.0 * 255.0).round().astype(np.uint8)
        picture = Image.fromarray(grey, "L").resize((size, size), Image.BILINEAR).convert("RGB")
        target = folder / str(label)
        target.mkdir(parents=True, exist_ok=True)
        picture.save(target / f"{index:04d}.png")
    return len(digits.images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--base", default="lenet5")
    parser.add_argument("--augment", default="rotate,zoom", help="Augmentations (no flips: digits are not symmetric).")
    parser.add_argument("--keep", help="Write the data and the run here instead of a temporary folder.")
    args = parser.parse_args()
    import visionkit

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vk-digits-"))
    data = root / "digits"
    count = write_digits(data)
    started = time.perf_counter()
    run = visionkit.finetune(data, output=root / "run", base=args.base, weights="none", epochs=args.epochs,
                             batch_size=32, optimizer="adam", learning_rate=1e-3, dev_fraction=0.1, test_fraction=0.2,
                             train_dev_fraction=0.1, augment=args.augment, seed=0, quiet=True)
    seconds = time.perf_counter() - started
    report = run.report
    print(f"data: sklearn load_digits, {count} images upscaled to 32x32, folders in {data}")
    print(f"model: {args.base} from scratch, {run.epochs} epochs, augment {args.augment}, {seconds:.0f} s; run folder {run.run_dir}")
    print(f"test accuracy: {report.accuracy:.4f} on {report.count} images (target >= 0.97)")
    print("errors by split: " + ", ".join(f"{k} {v * 100:.2f} %" for k, v in report.errors.items()))
    print(f"dominant gap: {report.diagnosis['dominant']}")
    if not args.keep:
        print("(temporary folder, delete it when done: " + os.fspath(root) + ")")


if __name__ == "__main__":
    main()
