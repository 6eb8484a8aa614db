"""dlib's ResNet face encoder in Keras: architecture, dlib's zero-extending add, the registry conversion and its
equivalence to dlib-bin's own ``compute_face_descriptor`` on real aligned chips."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.conftest import REPO, shared_data
from visionkit.core.errors import UsageError, WeightsError
from visionkit.faces import dlib_resnet as dr

WEIGHTS_COUNT = 5_607_488  # 29 convolutions with biases (affine folded in) + the 256×128 fc_no_bias
ATT_CHIPS = (("s1", 3), ("s5", 3), ("s9", 7), ("s14", 2), ("s20", 5))  # s1–s20 only (s21–s30 are held out)


def _weights_file():
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import pip_file

    path = pip_file(get_spec("dlib_resnet_v1"))
    if path is None:
        pytest.skip("needs the pip package face-recognition-models (dlib_face_recognition_resnet_model_v1.dat)")
    return path


@pytest.fixture(scope="module")
def architecture():
    return dr.dlib_resnet_v1()


def test_architecture_follows_dnn_face_recognition_ex(architecture):
    assert architecture.count_params() == WEIGHTS_COUNT
    shapes = {name: tuple(architecture.get_layer(name).output.shape[1:]) for name in (
        "stem_conv", "stem_pool", "stage1_block3_out", "stage2_block1_add", "stage4_block1_conv2",
        "stage4_block1_add", "stage5_block1_conv2", "stage5_block1_add", "descriptor")}
    assert shapes == {"stem_conv": (72, 72, 32), "stem_pool": (35, 35, 32), "stage1_block3_out": (35, 35, 32),
                      "stage2_block1_add": (17, 17, 64), "stage4_block1_conv2": (3, 3, 256),
                      "stage4_block1_add": (4, 4, 256), "stage5_block1_conv2": (1, 1, 256),
                      "stage5_block1_add": (2, 2, 256), "descriptor": (128,)}
    assert all(architecture.get_layer(name) for name in dr.conv_layer_names()) and len(dr.conv_layer_names()) == 29
    kinds = dr.dlib_layer_kinds()
    assert len(kinds) == 132 and kinds.count("con") == 29 and kinds.count("add_prev") == 14
    assert kinds.count("skip") == 4 and kinds[:3] == ["loss_metric", "fc", "avg_pool"]


def test_add_prev_zero_extends_rows_columns_and_channels(rng):
    a_in, b_in = keras.Input((3, 3, 4)), keras.Input((4, 4, 2))
    model = keras.Model([a_in, b_in], dr.dlib_add_prev(a_in, b_in, "t"))
    a, b = rng.normal(size=(2, 3, 3, 4)).astype("f4"), rng.normal(size=(2, 4, 4, 2)).astype("f4")
    expected = np.zeros((2, 4, 4, 4), np.float32)
    expected[:, :3, :3, :] += a
    expected[:, :, :, :2] += b
    np.testing.assert_allclose(np.asarray(model([a, b])), expected, atol=1e-6)


def test_builder_checks_its_arguments():
    with pytest.raises(UsageError, match=r"input_shape=\(150, 150\)"):
        dr.dlib_resnet_v1(input_shape=(150, 150))
    with pytest.raises(UsageError, match="input_mean"):
        dr.dlib_resnet_v1(input_mean=(1.0, 2.0))
    with pytest.raises(UsageError, match="sides ≥ 103"):
        dr.dlib_resnet_v1(input_shape=(102, 150, 3))
    assert dr.stage_sizes(150) == [72, 35, 35, 17, 8, 4, 2] and dr.stage_sizes(102) == []
    small = dr.dlib_resnet_v1(input_shape=(103, 103, 3))
    assert small.get_layer("stage5_block1_out").output.shape[1:3] == (1, 1)
    out = np.asarray(small(np.random.default_rng(0).uniform(0, 255, (2, 103, 103, 3)).astype("f4")))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_the_real_file_cut_or_corrupted_is_a_weights_error():
    from visionkit.convert.dlib_dnn import parse_dnn

    data = _weights_file().read_bytes()
    kinds = dr.dlib_layer_kinds()
    for end in (0, 1, 2, 17, 29, 300, 333, 345, 360, 5000, len(data) // 3, len(data) - 4, len(data) - 1):
        with pytest.raises(WeightsError, match=r"model\.dat: .* at byte \d+"):
            parse_dnn(data[:end], kinds, "model.dat")
    with pytest.raises(WeightsError, match=r"fc_ params declares 256×128×1×1 floats \(131072 bytes\) but only 1\d+ bytes"):
        parse_dnn(data[:-1000], kinds, "model.dat")
    with pytest.raises(WeightsError, match="found 'con_7'"):
        parse_dnn(data.replace(b"con_4", b"con_7", 1), kinds, "model.dat")
    one_block_less = kinds[:3] + kinds[14:]  # without the outermost downsampling block (11 wrappers)
    with pytest.raises(WeightsError, match=r"model\.dat: .* at byte \d+"):
        parse_dnn(data, one_block_less, "model.dat")


def test_conversion_refuses_a_file_whose_layers_differ_from_the_network(tmp_path):
    data = _weights_file().read_bytes()
    start = data.index(b"max_pool_2") + len(b"max_pool_2")
    assert data[start:start + 12] == bytes.fromhex("010301030102010201000100")  # 3×3, stride 2, padding 0
    padded = tmp_path / "padded_pool.dat"
    padded.write_bytes(data[:start + 9] + b"\x01" + data[start + 10:])  # padding_y = 1
    with pytest.raises(WeightsError, match=r"padded_pool\.dat: the max_pool layer at byte \d+ does not match"):
        dr.convert_dlib_resnet(padded)


@pytest.fixture(scope="session")
def dlib_encoder(model_cache):
    """The registry conversion, once per session (cached as .keras in the session cache)."""
    import visionkit

    _weights_file()
    return visionkit.load_model("dlib_resnet_v1")


def test_load_model_converts_once_and_caches(dlib_encoder, model_cache):
    import visionkit

    converted = sorted((model_cache / "models").glob("dlib_resnet_v1-*.keras"))
    from visionkit.core.integrity import stamp_matches

    assert len(converted) == 1 and stamp_matches(converted[0])  # its sha256 recorded when it was written
    again = visionkit.load_model("dlib_resnet_v1")  # now read from the cache
    assert again.model is not dlib_encoder.model and again.model.get_layer("l2_normalize")
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 150, 150, 3)).astype("f4")
    np.testing.assert_allclose(np.asarray(again.model(pixels)), np.asarray(dlib_encoder.model(pixels)), atol=1e-6)


@pytest.fixture(scope="module")
def dlib_chips():
    """Aligned 150×150 chips cut by dlib itself (HOG face, 5-point predictor, get_face_chip(…, 150, 0.25))."""
    dlib = pytest.importorskip("dlib", reason="the equivalence test needs dlib-bin (pip install dlib-bin)")
    from visionkit.core.io import load_image

    models = _weights_file().parent
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    detector = dlib.get_frontal_face_detector()
    att = shared_data("att_faces")
    images = [load_image(REPO / "examples" / "astronaut.jpg")]
    images += [load_image(att / person / f"{number}.png") for person, number in ATT_CHIPS]
    chips = []
    for image in images:
        boxes, scores, _ = detector.run(image, 1 if min(image.shape[:2]) < 200 else 0, 0.0)
        assert boxes, "dlib's detector found no face"
        box = boxes[int(np.argmax(scores))]
        chips.append(dlib.get_face_chip(image, predictor(image, box), 150, 0.25))
    recognizer = dlib.face_recognition_model_v1(str(_weights_file()))
    return np.stack(chips), np.stack([np.asarray(recognizer.compute_face_descriptor(c)) for c in chips])


def test_keras_encoder_equals_dlib_on_real_chips(dlib_encoder, dlib_chips):
    chips, reference = dlib_chips
    model = dlib_encoder.model
    raw = keras.Model(model.input, model.get_layer("descriptor").output)
    descriptors = np.asarray(raw(chips.astype("f4")))
    assert np.abs(descriptors - reference).max(axis=1).max() < 1e-4  # measured ≈3e-7 (float32 rounding)
    unit = np.asarray(model(chips.astype("f4")))
    np.testing.assert_allclose(unit, reference / np.linalg.norm(reference, axis=1, keepdims=True), atol=1e-5)
    different = np.linalg.norm(reference[1:] - reference[:1], axis=1)
    assert different.min() > 0.6  # different people: the check would fail on a constant or wrong output


def test_chip_template_puts_mtcnn_faces_where_dlib_puts_them(dlib_encoder):
    """Chips aligned with MTCNN + CHIP_TEMPLATE_150 encode close to dlib's own chips (AT&T s11–s20, not in the fit)."""
    import cv2

    dlib = pytest.importorskip("dlib", reason="needs dlib-bin (pip install dlib-bin) as the reference")
    from visionkit.core.io import load_image
    from visionkit.faces.align import canonical_template, detect_faces

    predictor = dlib.shape_predictor(str(_weights_file().parent / "shape_predictor_5_face_landmarks.dat"))
    model = dlib_encoder.model
    raw = keras.Model(model.input, model.get_layer("descriptor").output)
    distances = {"fitted": [], "arcface": []}
    for person, number in (("s12", 4), ("s16", 8), ("s19", 1)):
        image = load_image(shared_data("att_faces") / person / f"{number}.png")
        face = detect_faces(image)[0][0]
        shape = predictor(image, dlib.rectangle(*(int(round(v)) for v in face.box)))
        chips = [dlib.get_face_chip(image, shape, 150, 0.25)]
        for template in (dr.CHIP_TEMPLATE_150, canonical_template((150, 150))):
            matrix, _ = cv2.estimateAffinePartial2D(np.float32(face.landmarks), template, method=cv2.RANSAC,
                                                    ransacReprojThreshold=1e4, refineIters=20)
            chips.append(cv2.warpAffine(image, matrix, (150, 150), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REPLICATE))
        reference, fitted, arcface = np.asarray(raw(np.stack(chips).astype("f4")))
        distances["fitted"].append(np.linalg.norm(fitted - reference))
        distances["arcface"].append(np.linalg.norm(arcface - reference))
    assert max(distances["fitted"]) < 0.3 < min(distances["arcface"]), distances  # measured 0.12–0.14 vs 0.54–0.62
