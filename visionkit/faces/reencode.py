"""Re-encode a face database with another encoder, from the photos it was enrolled from.

Encodings of two encoders cannot be compared, so a database is tied to the encoder it was made with. Each stored
encoding keeps the absolute path of its photo; :func:`reencode` reads every photo again, encodes its largest face with
the new encoder and replaces all encodings and the recorded model in one transaction. Nothing changes unless every
photo is still there, unchanged (the sha256 recorded at enrolment; encodings from before it was recorded get the hash
of the file read now) and still shows a face (the error lists the ones that do not).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from visionkit.core.errors import InputError
from visionkit.core.integrity import file_hash
from visionkit.core.io import iter_images
from visionkit.core.model import LoadedModel
from visionkit.faces.config import DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_FACE, DEFAULT_MODEL
from visionkit.faces.encoder import encoder_name, load_encoder
from visionkit.faces.predict import encode_image, opened_db
from visionkit.faces.results import Reencoded

LISTED = 3  # problems named in the error message


def reencode(db=None, model: "str | os.PathLike | LoadedModel" = DEFAULT_MODEL, min_face: int = DEFAULT_MIN_FACE,
             min_confidence: float = DEFAULT_MIN_CONFIDENCE,
             on_progress: Callable[[int, int], None] | None = None) -> Reencoded:
    """Replace every encoding of database ``db`` by ``model``'s encoding of the same photo (one transaction)."""
    with opened_db(db, create=False) as database:
        previous, entries = database.model, database.entries()
        if not entries:
            raise InputError(f"{database.path}: the face database is empty; nothing to re-encode")
        target = encoder_name(model)
        if previous == target:
            return Reencoded(str(database.path), previous, target, 0)
        missing = [source for _, _, source in entries if not Path(source).is_absolute() or not Path(source).is_file()]
        if missing:
            raise InputError(f"{database.path}: {len(missing)} of {len(entries)} enrolled photos are no longer there "
                             f"(e.g. {', '.join(missing[:LISTED])}); nothing was re-encoded. Put them back, or enrol "
                             f"the people again into a new --db with --model {target}")
        encoder = load_encoder(model)
        enrolled_hashes = database.photo_hashes()
        vectors, hashes, problems = {}, {}, []
        for index, ((entry, name, source), item) in enumerate(zip(entries, iter_images([s for _, _, s in entries]))):
            hashes[entry] = file_hash(source) if item.ok else ""
            if not item.ok:
                problems.append(item.error)
            elif enrolled_hashes[entry] not in ("", hashes[entry]):
                problems.append(f"{source} ({name}): the file changed since it was enrolled; enrol {name} again "
                                f"(`visionkit faces remove {name}`, then `visionkit faces enroll`)")
            else:
                faces, encodings, _ = encode_image(item.image, encoder, False, min_face, min_confidence)
                if faces:
                    vectors[entry] = encodings[0]
                else:
                    problems.append(f"{source} ({name}): no face found with min_face={min_face}")
            if on_progress:
                on_progress(index + 1, len(entries))
        if problems:
            raise InputError(f"{database.path}: {len(problems)} enrolled photos cannot be re-encoded "
                             f"({'; '.join(problems[:LISTED])}); nothing was re-encoded")
        count = database.reencode(encoder.name, vectors, hashes)
        return Reencoded(str(database.path), previous, encoder.name, count)


__all__ = ["reencode"]
