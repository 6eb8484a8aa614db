"""The course's face-recognition door: enrol the people allowed in from a folder of photos, then say for each
arriving photo who it is, or "unknown", with the distance that decided it.

    python apps/face_door.py --people staff/ --db door.db arrivals/*.jpg
    python apps/face_door.py --db door.db visitor.jpg                # the people enrolled before

``staff/`` holds one folder per person (``staff/alice/*.jpg``). The distance is ||f(a) - f(b)||^2 between face
encodings; the door opens when the nearest enrolled face is within the encoder's threshold (``--threshold``
overrides it). Written only against visionkit's public API; the database is one SQLite file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import visionkit


def enrol_people(folder: Path, db: str) -> list[str]:
    """Enrol every sub-folder of ``folder`` as one person (its photos); returns lines to print."""
    people = sorted(p for p in folder.iterdir() if p.is_dir())
    if not people:
        raise visionkit.InputError(f"{folder}: no sub-folders; put each person's photos in {folder}/NAME/")
    lines = []
    for person in people:
        enrolled = visionkit.enroll_face(person.name, str(person), db=db)
        lines.append(f"enrolled {person.name}: {enrolled.added} photos ({enrolled.encodings} in the database)"
                     + (f", {len(enrolled.skipped)} skipped" if enrolled.skipped else ""))
        lines += [f"  skipped: {reason}" for reason in enrolled.skipped]
    return lines


def verdict(identity) -> str:
    """One line for one face at the door."""
    if not identity.ok:
        return f"{identity.source}: {identity.error}"
    if identity.identity == "unknown":
        return (f"{identity.source}: unknown (nearest {identity.nearest} at distance {identity.distance:.3f} > "
                f"{identity.threshold:.3f}) - door stays shut")
    return (f"{identity.source}: {identity.identity} (distance {identity.distance:.3f} <= {identity.threshold:.3f})"
            " - door opens")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arrivals", nargs="*", help="photos of people arriving at the door")
    parser.add_argument("--people", type=Path, default=None, help="enrol these people first (a folder per person)")
    parser.add_argument("--db", default="door.db", help="the face database (SQLite), created if missing")
    parser.add_argument("--threshold", type=float, default=None, help="override the encoder's distance threshold")
    args = parser.parse_args(argv)
    visionkit.mute_tensorflow()
    try:
        if args.people is not None:
            print("\n".join(enrol_people(args.people, args.db)))
        if not args.arrivals:
            return 0
        identities = visionkit.identify_faces(args.arrivals, db=args.db, threshold=args.threshold)
    except visionkit.VisionkitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for identity in identities:
        print(verdict(identity))
    return 0 if all(i.ok for i in identities) else 1


if __name__ == "__main__":
    sys.exit(main())
