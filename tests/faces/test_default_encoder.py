"""The default encoder, dlib_resnet_v1, end to end through the public verbs and the CLI (converted once per session):
real photos, grey/CMYK/16-bit files, several faces, a database of another encoder, a damaged weights file."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import visionkit
from tests.conftest import REPO, two_faces
from visionkit.cli import cli
from visionkit.core.io import save_image

pytestmark = pytest.mark.slow
ASTRONAUT = REPO / "examples" / "astronaut.jpg"


def run(*args):
    return CliRunner().invoke(cli, ["-q", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def default_encoder(model_cache):
    from visionkit.faces.encoder import load_encoder

    return load_encoder()


def test_verify_and_embed_with_the_default(att, default_encoder):
    same = visionkit.verify(str(att / "s1" / "1.png"), str(att / "s1" / "5.png"))
    assert same.model == "dlib_resnet_v1" and same.threshold == 0.172 and "0.6" in same.threshold_source
    assert same.same and same.distance < 0.13  # measured 0.091
    different = visionkit.verify(str(att / "s3" / "1.png"), str(ASTRONAUT))
    assert not different.same and different.distance > 0.22  # measured 0.276
    [astronaut] = visionkit.embed([str(ASTRONAUT)])
    assert astronaut.ok and astronaut.encodings.shape == (1, 128) and astronaut.model == "dlib_resnet_v1"
    np.testing.assert_allclose(np.linalg.norm(astronaut.encodings, axis=1), 1.0, atol=1e-5)
    assert 75 < astronaut.faces[0].width < 95  # the 84-px face, found at the default min_face


def test_default_encodings_are_dlibs_descriptors_of_visionkits_chips(att, default_encoder):
    """The pipeline's encoding is dlib-bin's own descriptor (normalised) of the chip visionkit cut: same encoder."""
    dlib = pytest.importorskip("dlib", reason="needs dlib-bin as the reference")
    from visionkit.core.io import load_image
    from visionkit.core.weights import pip_file
    from visionkit.faces.align import align_face, detect_faces
    from visionkit.faces.encoder import encoder_alignment

    image = load_image(att / "s9" / "3.png")
    chip = align_face(image, detect_faces(image)[0][0], (150, 150), encoder_alignment(default_encoder))
    reference = np.asarray(dlib.face_recognition_model_v1(str(pip_file(default_encoder.spec)))
                           .compute_face_descriptor(chip))
    [encoded] = visionkit.embed([image])
    np.testing.assert_allclose(encoded.encodings[0], reference / np.linalg.norm(reference), atol=1e-5)


def test_grey_cmyk_and_16_bit_files_encode_like_the_colour_photo(tmp_path, default_encoder):
    photo = Image.open(ASTRONAUT)
    photo.convert("L").save(tmp_path / "grey.png")
    photo.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16) * 257).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    for name in ("grey.png", "cmyk.jpg", "deep.png"):
        match = visionkit.verify(str(ASTRONAUT), str(tmp_path / name))
        assert match.same and match.distance < 0.05, (name, match.distance)  # measured 0.017, 0.002, 0.017


def test_enrol_two_people_and_identify_a_group(att, tmp_path, default_encoder):
    db = tmp_path / "people.db"
    visionkit.enroll_face("alice", [str(att / "s1" / "2.png"), str(att / "s1" / "3.png")], db=db)
    visionkit.enroll_face("bob", [str(att / "s2" / "2.png")], db=db)
    group = tmp_path / "group.png"
    save_image(group, two_faces(att))  # s1/1.png enlarged, s2/1.png at its size
    found = visionkit.identify_faces([str(group), str(ASTRONAUT)], db=db)
    assert [(r.source, r.identity) for r in found] == [(str(group), "alice"), (str(group), "bob"),
                                                       (str(ASTRONAUT), "unknown")]
    assert all(r.threshold == 0.172 for r in found) and found[2].distance > 0.172


def test_a_database_of_another_encoder_is_refused_then_reencoded(att, tmp_path, default_encoder):
    db = tmp_path / "old.db"
    photos = [att / "s4" / "1.png", att / "s4" / "2.png"]
    assert run("faces", "enroll", "dana", *photos, "--db", db, "--model", "facenet_att_lite0").exit_code == 0
    result = run("faces", "identify", att / "s4" / "3.png", "--db", db)
    message = result.stderr.strip()
    assert result.exit_code == 2 and len(message.splitlines()) == 1 and message.startswith("error:")
    assert all(text in message for text in ("'facenet_att_lite0', not 'dlib_resnet_v1'", "--model facenet_att_lite0",
                                            "visionkit faces reencode"))
    result = run("faces", "identify", att / "s4" / "3.png", "--db", db, "--model", "facenet_att_lite0", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["identity"] == "dana"
    result = run("faces", "reencode", "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0] == {"database": str(db), "previous_model": "facenet_att_lite0",
                                            "model": "dlib_resnet_v1", "encodings": 2}
    result = run("faces", "identify", att / "s4" / "3.png", "--db", db, "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["identity"] == "dana"


@pytest.fixture
def damaged_weights(tmp_path, monkeypatch, isolated_cache, default_encoder):
    """Point the dlib_resnet_v1 entry at a copy of its .dat that the test may damage (nothing cached yet)."""
    from visionkit.core import weights
    from visionkit.faces import encoder as enc

    copy = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    shutil.copy(weights.pip_file(default_encoder.spec), copy)
    monkeypatch.setattr(weights, "pip_file", lambda spec: copy)
    monkeypatch.setattr(enc, "_ENCODERS", {})
    return copy


def _one_line_failure(att, isolated_cache, match):
    result = run("verify", att / "s1" / "1.png", att / "s1" / "2.png")
    message = result.stderr.strip()
    assert result.exit_code == 1 and len(message.splitlines()) == 1 and message.startswith("error:"), message
    assert match in message, message
    models = isolated_cache / "models"
    assert not models.exists() or not any(models.iterdir())  # no converted model, no stamp, no temporary file


def test_a_truncated_or_altered_weights_file_is_one_line_and_nothing_cached(att, damaged_weights, isolated_cache,
                                                                            monkeypatch):
    data = damaged_weights.read_bytes()
    damaged_weights.write_bytes(data[: len(data) // 2])
    _one_line_failure(att, isolated_cache, "hash mismatch")
    damaged_weights.write_bytes(data[:-5] + b"\x00" * 5)  # full length, wrong content: a wrong hash
    _one_line_failure(att, isolated_cache, "hash mismatch")
    # With no hash to check against (a spec without one), the reader itself refuses the cut file, naming the offset.
    from visionkit.core import registry

    specs = registry._load_registry()
    spec = specs["dlib_resnet_v1"]
    monkeypatch.setitem(specs, "dlib_resnet_v1", replace(spec, weights=replace(spec.weights, hash="")))
    damaged_weights.write_bytes(data[: len(data) // 2])
    _one_line_failure(att, isolated_cache, "at byte")
    assert Path(damaged_weights).stat().st_size == len(data) // 2  # the source was only read
