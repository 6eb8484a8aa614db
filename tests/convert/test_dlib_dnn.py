"""The dlib DNN reader: round trip of a small synthetic network, and every malformed file is one WeightsError."""

from __future__ import annotations

import math

import numpy as np
import pytest

from visionkit.convert.dlib_dnn import check_architecture, parse_dnn, read_dnn
from visionkit.core.errors import WeightsError

# --- a writer of dlib's encodings (dlib/serialize.h), independent of the reader --------------------------------


def enc_int(value: int) -> bytes:
    magnitude = abs(value).to_bytes(max(1, (abs(value).bit_length() + 7) // 8), "little")
    return bytes([len(magnitude) | (0x80 if value < 0 else 0)]) + magnitude


def enc_float(value: float) -> bytes:
    mantissa, exponent = math.frexp(value)  # value = mantissa · 2**exponent, 0.5 ≤ |mantissa| < 1
    return enc_int(int(mantissa * (1 << 53))) + enc_int(exponent - 53)


def enc_str(text: str) -> bytes:
    return enc_int(len(text)) + text.encode("ascii")


def enc_bool(value: bool) -> bytes:
    return b"1" if value else b"0"


def enc_dims(shape) -> bytes:
    shape = tuple(shape) + (1,) * (4 - len(shape))
    return b"".join(enc_int(v) for v in shape)


def enc_tensor(array) -> bytes:
    array = np.asarray(array, dtype="<f4")
    return enc_int(2) + enc_dims(array.shape) + array.tobytes()


def enc_alias(shape) -> bytes:
    return enc_int(1) + enc_dims(shape)


EMPTY = np.zeros((0, 0, 0, 0))
STATE = enc_bool(True) + enc_bool(False) + enc_bool(False)
MULTIPLIERS = enc_float(1.0) + enc_float(1.0) + enc_float(1.0) + enc_float(0.0)


def con(filters: np.ndarray, biases: np.ndarray, stride=1, padding=1, version="con_4") -> bytes:
    n, k, nr, nc = filters.shape
    out = enc_str(version) + enc_tensor(np.concatenate([filters.ravel(), biases])) + enc_int(n) + enc_int(nr)
    out += enc_int(nc) + enc_int(stride) + enc_int(stride) + enc_int(padding) + enc_int(padding)
    out += enc_alias(filters.shape) + enc_alias((1, n)) + MULTIPLIERS
    return out + (enc_bool(True) if version in ("con_5", "con_6") else b"") + (enc_bool(False) if version == "con_6" else b"")


def affine(gamma: np.ndarray, beta: np.ndarray) -> bytes:
    shape = (1, gamma.size)
    return enc_str("affine_") + enc_tensor(np.concatenate([gamma, beta])) + enc_alias(shape) + enc_alias(shape) + enc_int(0)


def batch_norm(gamma, beta, means, variances, eps) -> bytes:
    shape = (1, gamma.size)
    out = enc_str("bn_con2") + enc_tensor(np.concatenate([gamma, beta])) + enc_alias(shape) + enc_alias(shape)
    out += enc_tensor(EMPTY) + enc_tensor(EMPTY) + enc_tensor(means.reshape(1, -1)) + enc_tensor(variances.reshape(1, -1))
    return out + enc_int(7) + enc_int(100) + MULTIPLIERS + enc_float(eps)


def fc(weights: np.ndarray) -> bytes:
    inputs, outputs = weights.shape
    out = enc_str("fc_2") + enc_int(outputs) + enc_int(inputs) + enc_tensor(weights) + enc_alias(weights.shape)
    return out + enc_alias((0, 0)) + enc_int(1) + MULTIPLIERS


def pool(kind: str, size, stride, padding=0) -> bytes:
    return enc_str(f"{kind}_2") + enc_int(size) + enc_int(size) + enc_int(stride) + enc_int(stride) + enc_int(padding) * 2


#: relu<add_prev1<affine<con<tag1<relu<affine<con<input>>>>>>>>, under avg_pool_everything, fc_no_bias and the loss.
KINDS = ["loss_metric", "fc", "avg_pool", "relu", "add_prev", "affine", "con", "tag", "relu", "affine", "con",
         "input_rgb_image_sized"]


def tiny_network(rng, inner_affine: bytes | None = None, tensor_override: bytes | None = None) -> tuple[bytes, dict]:
    values = {"con1": rng.normal(size=(4, 3, 3, 3)).astype("f4"), "b1": rng.normal(size=4).astype("f4"),
              "con2": rng.normal(size=(4, 4, 3, 3)).astype("f4"), "b2": rng.normal(size=4).astype("f4"),
              "g1": rng.normal(size=4).astype("f4"), "beta1": rng.normal(size=4).astype("f4"),
              "g2": rng.normal(size=4).astype("f4"), "beta2": rng.normal(size=4).astype("f4"),
              "fc": rng.normal(size=(4, 5)).astype("f4")}
    out = enc_int(1) + enc_str("loss_metric_2") + enc_float(0.04) + enc_float(0.6)
    out += b"".join(enc_int(2 if kind != "tag" else 1) for kind in KINDS[1:-2])
    out += enc_int(3) + enc_str("input_rgb_image_sized") + enc_float(122.782) + enc_float(117.001)
    out += enc_float(104.298) + enc_int(32) + enc_int(32)
    out += con(values["con1"], values["b1"], stride=2, padding=0) + STATE
    out += (tensor_override or enc_tensor(EMPTY)) + enc_tensor(EMPTY) * 2 + enc_int(1)
    out += (inner_affine or affine(values["g1"], values["beta1"])) + STATE + enc_tensor(EMPTY) * 3
    out += enc_str("relu_") + STATE + enc_tensor(EMPTY) * 3  # the tag above it writes nothing more
    out += con(values["con2"], values["b2"], version="con_6") + STATE + enc_tensor(EMPTY) * 3
    out += affine(values["g2"], values["beta2"]) + STATE + enc_tensor(EMPTY) * 3
    out += enc_str("add_prev_") + STATE + enc_tensor(EMPTY) * 3
    out += enc_str("relu_2") + enc_bool(False) + STATE + enc_tensor(EMPTY) * 3
    out += pool("avg_pool", 0, 1) + STATE + enc_tensor(EMPTY) * 3
    out += fc(values["fc"]) + STATE + enc_tensor(EMPTY) * 3
    return out, values


@pytest.fixture(scope="module")
def tiny():
    return tiny_network(np.random.default_rng(0))


#: Bytes copied from dlib_face_recognition_resnet_model_v1.dat: the loss (version 1, "loss_metric_2", margin 0.04
#: as mantissa 0xa3d70a and exponent -28, threshold 0.6) and the input layer's averages and size (150, 150).
REAL_LOSS = bytes.fromhex("0101010d") + b"loss_metric_2" + bytes.fromhex("030ad7a3811c039a99998118")
REAL_INPUT = bytes.fromhex("0115") + b"input_rgb_image_sized" + bytes.fromhex("036290f58111038300ea8111039398d081110196 0196")


def test_bytes_written_by_dlib_decode_to_its_values(tiny):
    data = tiny[0]
    head = enc_int(1) + enc_str("loss_metric_2") + enc_float(0.04) + enc_float(0.6)
    start = data.index(enc_str("input_rgb_image_sized"))
    end = data.index(enc_str("con_4"))
    net = parse_dnn(REAL_LOSS + data[len(head):start] + REAL_INPUT + data[end:], KINDS)
    assert net.loss.fields == {"margin": float(np.float32(0.04)), "distance_threshold": float(np.float32(0.6))}
    assert net.input.fields["mean"] == tuple(float(np.float32(v)) for v in (122.782, 117.001, 104.298))
    assert net.input.fields["size"] == (150, 150)
    assert enc_int(0) == b"\x01\x00" and enc_int(-300) == b"\x82\x2c\x01"


def test_tiny_network_round_trip(tiny):
    data, values = tiny
    net = parse_dnn(data, KINDS, "tiny.dat")
    assert net.kinds() == list(reversed(KINDS[1:-1]))
    assert net.loss.fields == pytest.approx({"margin": 0.04, "distance_threshold": 0.6})
    assert net.input.fields["mean"] == pytest.approx((122.782, 117.001, 104.298)) and net.input.fields["size"] == (32, 32)
    first, second = (layer for layer in net.layers if layer.kind == "con")
    np.testing.assert_array_equal(first.fields["filters"], values["con1"])
    np.testing.assert_array_equal(first.fields["biases"], values["b1"])
    assert first.fields["stride"] == (2, 2) and first.fields["padding"] == (0, 0) and first.version == "con_4"
    assert second.version == "con_6" and second.fields["stride"] == (1, 1) and not second.fields["relu"]
    gamma = [layer.fields["gamma"] for layer in net.layers if layer.kind == "affine"]
    np.testing.assert_array_equal(gamma[1], values["g2"])
    np.testing.assert_array_equal(net.layers[-1].fields["weights"], values["fc"])
    assert net.layers[-1].fields["biases"] is None and net.layers[-2].fields["everything"]


def test_batch_norm_in_an_affine_position_is_folded_as_dlib_does():
    rng = np.random.default_rng(1)
    gamma, beta, means = (rng.normal(size=4).astype("f4") for _ in range(3))
    variances = rng.uniform(0.5, 2.0, 4).astype("f4")
    data, _ = tiny_network(rng, inner_affine=batch_norm(gamma, beta, means, variances, 1e-5))
    layer = next(layer for layer in parse_dnn(data, KINDS).layers if layer.kind == "affine")
    scale = gamma / np.sqrt(variances + 1e-5)
    assert layer.version == "bn_con2"
    np.testing.assert_allclose(layer.fields["gamma"], scale, rtol=1e-6)
    np.testing.assert_allclose(layer.fields["beta"], beta - scale * means, rtol=1e-5, atol=1e-6)


def test_every_truncation_is_a_weights_error(tiny):
    data, _ = tiny
    for end in range(len(data)):
        with pytest.raises(WeightsError, match=r"tiny\.dat: .* at byte \d+"):
            parse_dnn(data[:end], KINDS, "tiny.dat")


def test_trailing_bytes_are_refused(tiny):
    with pytest.raises(WeightsError, match="3 bytes follow the end of the network"):
        parse_dnn(tiny[0] + b"\x01\x01\x01", KINDS, "tiny.dat")


def test_wrong_version_string_names_it_and_the_offset(tiny):
    data = tiny[0].replace(b"con_6", b"con_9")
    with pytest.raises(WeightsError, match=r"at byte \d+: expected a con layer .* found 'con_9'"):
        parse_dnn(data, KINDS, "tiny.dat")
    with pytest.raises(WeightsError, match="at byte 0: add_loss_layer has version 7, expected 1"):
        parse_dnn(b"\x01\x07" + tiny[0][2:], KINDS, "tiny.dat")


def test_a_huge_declared_tensor_is_refused_before_allocating(tiny):
    for dims in ((10**6, 10**6, 10**6, 10**6), (0, 10**12, 10**12, 1)):  # an empty tensor of absurd shape as well
        data, _ = tiny_network(np.random.default_rng(0), tensor_override=enc_int(2) + enc_dims(dims))
        with pytest.raises(WeightsError, match=rf"declares dimensions \({dims[0]}, {dims[1]}, .* the whole file"):
            parse_dnn(data, KINDS, "huge.dat")
    data = tiny[0]
    cut = data.index(enc_str("con_4")) + 40  # inside the first convolution's 4·3·3·3 + 4 parameters
    with pytest.raises(WeightsError, match=r"con_ params declares dimensions \(112, 1, 1, 1\), more floats than"):
        parse_dnn(data[:cut], KINDS, "cut.dat")
    negative = enc_int(2) + enc_int(-1) + enc_dims((1, 1, 1))
    with pytest.raises(WeightsError, match="negative dimensions"):
        parse_dnn(tiny_network(np.random.default_rng(0), tensor_override=negative)[0], KINDS, "neg.dat")


def test_old_ascii_floats_and_bad_bools_are_refused(tiny):
    data = tiny[0]
    ascii_float = data.replace(enc_str("loss_metric_2") + enc_float(0.04), enc_str("loss_metric_2") + b"0.04 ")
    with pytest.raises(WeightsError, match="old ASCII float"):
        parse_dnn(ascii_float, KINDS)
    bad_bool = data.replace(enc_str("relu_2") + b"0", enc_str("relu_2") + b"x")
    with pytest.raises(WeightsError, match=r"relu_ disabled is not a bool"):
        parse_dnn(bad_bool, KINDS)


def test_random_bytes_and_mutations_only_ever_raise_weights_error(tiny):
    rng = np.random.default_rng(2)
    for length in (0, 1, 2, 7, 64, 4096):
        for _ in range(20):
            with pytest.raises(WeightsError):
                parse_dnn(rng.integers(0, 256, length, dtype=np.uint8).tobytes(), KINDS)
    data = np.frombuffer(tiny[0], dtype=np.uint8)
    for _ in range(400):
        mutated = data.copy()
        spots = rng.integers(0, len(data), rng.integers(1, 4))
        mutated[spots] = rng.integers(0, 256, len(spots))
        try:
            parse_dnn(mutated.tobytes(), KINDS)
        except WeightsError:
            pass


def test_missing_file_and_bad_architectures(tmp_path):
    with pytest.raises(WeightsError, match="cannot read"):
        read_dnn(tmp_path / "absent.dat", KINDS)
    with pytest.raises(ValueError, match="unknown kinds"):
        check_architecture(["loss_metric", "conv2d", "con", "input_rgb_image_sized"])
    with pytest.raises(ValueError, match="computational layer"):
        check_architecture(["loss_metric", "con", "tag", "input_rgb_image_sized"])
