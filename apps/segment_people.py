"""Cut the people out of photos with the U-Net person segmenter: a mask PNG (white = person) and a transparent PNG
cut-out (alpha = the mask) per photo.

    python apps/segment_people.py ../shared/data/coco128/images/000000000459.jpg -o people/

Writes ``people/<name>_mask.png`` and ``people/<name>_person.png``. Written only against visionkit's public API;
offline (the bundled ``unet_person`` model, trained on coco128: see its card for what it gets right and wrong).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import visionkit


def person_mask(result, class_name: str = "person") -> np.ndarray:
    """The segmentation's pixels of ``class_name`` as a uint8 mask (255 = person, 0 = anything else)."""
    if class_name not in result.class_names:
        raise visionkit.ModelError(f"{result.model} has no {class_name!r} class (it has {', '.join(result.class_names)})")
    return np.where(result.mask == result.class_names.index(class_name), 255, 0).astype(np.uint8)


def cut_out(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGBA: the photo, transparent wherever the mask is 0."""
    return np.dstack([image, mask])


def free_stem(folder: Path, stem: str, taken: set) -> str:
    """``stem``, or ``stem_2`` … when an earlier photo of this run (or a file in ``folder``) has it."""
    candidate, number = stem, 2
    while candidate in taken or (folder / f"{candidate}_mask.png").exists():
        candidate, number = f"{stem}_{number}", number + 1
    taken.add(candidate)
    return candidate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="+", help="photos, folders or globs")
    parser.add_argument("-o", "--output", type=Path, default=Path("people"), help="folder for the masks and cut-outs")
    parser.add_argument("--model", default="unet_person", help="a segmentation model with a 'person' class")
    args = parser.parse_args(argv)
    visionkit.mute_tensorflow()
    taken: set = set()
    try:
        results = visionkit.segment(args.photos, model=args.model)
        for result in results:
            if not result.ok:
                print(f"skipped: {result.error}", file=sys.stderr)
                continue
            mask = person_mask(result)
            stem = free_stem(args.output, Path(result.source).stem, taken)
            visionkit.save_image(args.output / f"{stem}_mask.png", mask)
            visionkit.save_image(args.output / f"{stem}_person.png", cut_out(visionkit.load_image(result.source), mask))
            print(f"{result.source}: person on {(mask > 0).mean():.1%} of the photo -> {args.output / stem}_mask.png, "
                  f"{args.output / stem}_person.png")
    except visionkit.VisionkitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
