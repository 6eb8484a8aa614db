"""The torch-free reader of PyTorch state dicts: round trips through hand-made files, refusal of foreign code."""

import collections
import contextlib
import io
import os
import pickle
import struct
import sys
import types
import zipfile
from unittest import mock

import numpy as np
import pytest

from visionkit.convert.torch_zip import LEGACY_MAGIC, LEGACY_PROTOCOL, read_state_dict
from visionkit.core.errors import WeightsError

_TYPE_NAMES = {"f4": "FloatStorage", "f8": "DoubleStorage", "f2": "HalfStorage", "i8": "LongStorage",
               "?": "BoolStorage", "bf16": "BFloat16Storage"}


class FakeStorage:
    """A storage to be written: its key, torch type name and raw data."""

    def __init__(self, key, data, code=None):
        self.key, self.data = key, np.asarray(data)
        self.code = code or self.data.dtype.str[1:].replace("b1", "?")


class FakeTensor:
    """Pickles like a torch tensor: REDUCE of torch._utils._rebuild_tensor_v2 on a persistent storage."""

    rebuild = None  # set inside fake_torch()

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return FakeTensor.rebuild, self.args


@contextlib.contextmanager
def fake_torch():
    """Stub ``torch`` modules so that pickle writes the same GLOBAL opcodes torch.save writes."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2, torch._utils = _rebuild_tensor_v2, utils
    for name in _TYPE_NAMES.values():
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    with mock.patch.dict(sys.modules, {"torch": torch, "torch._utils": utils}):
        FakeTensor.rebuild = _rebuild_tensor_v2
        yield torch


def _pickle(obj, storage_id):
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=2)
    pickler.persistent_id = storage_id
    pickler.dump(obj)
    return buffer.getvalue()


def _raw(storage, order):
    if storage.code == "bf16":
        return (storage.data.astype("<f4").view("<u4") >> 16).astype(order + "u2").tobytes()
    return storage.data.astype(order + storage.code).tobytes()


def save_zip(path, obj, storages, byteorder="little"):
    """Write ``obj`` the way torch.save (>= 1.6) does: archive/data.pkl + archive/data/<key>."""
    order = "<" if byteorder == "little" else ">"
    with fake_torch() as torch:
        def storage_id(o):
            if isinstance(o, FakeStorage):
                return ("storage", getattr(torch, _TYPE_NAMES[o.code]), o.key, "cpu", o.data.size)
            return None
        data = _pickle(obj, storage_id)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/byteorder", byteorder)
        for storage in storages:
            archive.writestr(f"archive/data/{storage.key}", _raw(storage, order))


def save_legacy(path, obj, storages):
    """Write ``obj`` the way torch.save (< 1.6) does: header pickles, object, keys, sized raw storages."""
    with fake_torch() as torch:
        def storage_id(o):
            if isinstance(o, FakeStorage):
                return ("storage", getattr(torch, _TYPE_NAMES[o.code]), o.key, "cpu", o.data.size, None)
            return None
        data = _pickle(obj, storage_id)
    info = {"protocol_version": LEGACY_PROTOCOL, "little_endian": True, "type_sizes": {"int": 4, "long": 4}}
    with open(path, "wb") as stream:
        for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, info):
            pickle.dump(header, stream, protocol=2)
        stream.write(data)
        pickle.dump([s.key for s in storages], stream, protocol=2)
        for storage in storages:
            stream.write(struct.pack("<q", storage.data.size) + _raw(storage, "<"))


def _example():
    """Tensors covering contiguous, transposed, offset, shared-storage and scalar cases, with expected arrays."""
    flat = FakeStorage("0", np.arange(24, dtype=np.float32))
    counter = FakeStorage("1", np.array([7], dtype=np.int64))
    obj = collections.OrderedDict([
        ("conv.weight", FakeTensor(flat, 0, (2, 3, 4), (12, 4, 1))),
        ("conv.transposed", FakeTensor(flat, 2, (3, 4), (1, 3))),
        ("conv.tail", FakeTensor(flat, 20, (4,), (1,))),
        ("bn.num_batches_tracked", FakeTensor(counter, 0, (), ())),
    ])
    expected = {
        "conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        "conv.transposed": np.array([[2 + i + 3 * j for j in range(4)] for i in range(3)], dtype=np.float32),
        "conv.tail": np.arange(20, 24, dtype=np.float32),
        "bn.num_batches_tracked": np.array(7, dtype=np.int64),
    }
    return obj, [flat, counter], expected


def _assert_same(got, expected):
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)


@pytest.mark.parametrize("save", [save_zip, save_legacy], ids=["zip", "legacy"])
def test_round_trip_with_strides_and_offsets(tmp_path, save):
    obj, storages, expected = _example()
    save(tmp_path / "w.pth", obj, storages)
    _assert_same(read_state_dict(tmp_path / "w.pth"), expected)


def test_big_endian_and_other_dtypes(tmp_path):
    storages = [FakeStorage("a", np.array([1.5, -2.25, 3.0])), FakeStorage("b", np.array([0.5, -1.0], np.float16)),
                FakeStorage("c", np.array([True, False])), FakeStorage("d", np.array([1.0, -2.5], np.float32), "bf16")]
    obj = {s.key: FakeTensor(s, 0, s.data.shape, (1,)) for s in storages}
    save_zip(tmp_path / "be.pt", {"state_dict": obj}, storages, byteorder="big")
    got = read_state_dict(tmp_path / "be.pt")
    _assert_same(got, {"a": storages[0].data, "b": storages[1].data, "c": storages[2].data,
                       "d": np.array([1.0, -2.5], np.float32)})


class Evil:
    """Pickles to GLOBAL <callable> + REDUCE: what a malicious checkpoint does."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


@pytest.mark.parametrize("save", [save_zip, save_legacy], ids=["zip", "legacy"])
@pytest.mark.parametrize("kind", ["os.system", "builtins.eval"])
def test_malicious_global_is_refused_and_never_run(tmp_path, save, kind):
    marker = tmp_path / "pwned"
    if kind == "os.system":
        payload, refused = Evil(os.system, f"touch {marker}"), f"'{os.system.__module__}.system'"
    else:
        # protocol 2 writes builtins as __builtin__ (Python 2 name)
        payload, refused = Evil(eval, f"open({str(marker)!r}, 'w').close()"), "'(__builtin__|builtins).eval'"
    obj, storages, _ = _example()
    obj["evil"] = payload
    save(tmp_path / "evil.pth", obj, storages)
    with pytest.raises(WeightsError, match=refused):
        read_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()


def test_not_a_torch_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hello, not weights")
    with pytest.raises(WeightsError, match="not a PyTorch weights file"):
        read_state_dict(tmp_path / "notes.txt")
    with pytest.raises(WeightsError, match="not found"):
        read_state_dict(tmp_path / "absent.pth")


def test_zip_without_data_pkl(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as archive:
        archive.writestr("archive/other.txt", "x")
    with pytest.raises(WeightsError, match="data.pkl"):
        read_state_dict(tmp_path / "x.zip")


@pytest.mark.parametrize("save", [save_zip, save_legacy], ids=["zip", "legacy"])
@pytest.mark.parametrize("keep", [0.3, 0.95])
def test_truncated_file(tmp_path, save, keep):
    obj, storages, _ = _example()
    save(tmp_path / "w.pth", obj, storages)
    data = (tmp_path / "w.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(WeightsError):
        read_state_dict(tmp_path / "cut.pth")


def test_tensor_reaching_past_its_storage(tmp_path):
    storage = FakeStorage("0", np.arange(6, dtype=np.float32))
    save_zip(tmp_path / "w.pth", {"w": FakeTensor(storage, 2, (2, 3), (3, 1))}, [storage])
    with pytest.raises(WeightsError, match="reaches element 8"):
        read_state_dict(tmp_path / "w.pth")


# --- memory caps: a small hostile file cannot make a large allocation -------------------------------------------


def test_stride_zero_tensor_larger_than_its_storage_is_refused(tmp_path):
    storage = FakeStorage("0", np.array([1.0], dtype=np.float32))  # one element...
    save_zip(tmp_path / "w.pth", {"w": FakeTensor(storage, 0, (4096, 4096), (0, 0))}, [storage])  # ...viewed 16M times
    assert (tmp_path / "w.pth").stat().st_size < 1000
    with pytest.raises(WeightsError, match="more elements than its storage"):
        read_state_dict(tmp_path / "w.pth")


def test_many_views_of_one_storage_are_capped(tmp_path):
    storage = FakeStorage("0", np.zeros(1 << 16, dtype=np.float32))  # 256 KiB
    obj = {f"view{i}": FakeTensor(storage, 0, (1 << 16,), (1,)) for i in range(40)}  # 40 full views: 10 MiB
    save_zip(tmp_path / "w.pth", obj, [storage])
    with pytest.raises(WeightsError, match="more than 4x"):
        read_state_dict(tmp_path / "w.pth")
    few = {f"view{i}": FakeTensor(storage, 0, (1 << 16,), (1,)) for i in range(3)}  # tied weights are fine
    save_zip(tmp_path / "tied.pth", few, [storage])
    assert len(read_state_dict(tmp_path / "tied.pth")) == 3


def test_compressed_member_that_unpacks_far_beyond_the_archive_is_refused(tmp_path):
    numel = 1 << 24  # 64 MiB of float32 zeros deflate to about 64 KiB
    storage = FakeStorage("0", np.zeros(1, dtype=np.float32))
    with fake_torch() as torch:
        data = _pickle({"w": FakeTensor(storage, 0, (numel,), (1,))},
                       lambda o: ("storage", torch.FloatStorage, "0", "cpu", numel) if isinstance(o, FakeStorage) else None)
    with zipfile.ZipFile(tmp_path / "bomb.pth", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", data)
        with archive.open("archive/data/0", "w") as member:
            chunk = bytes(1 << 20)
            for _ in range(numel * 4 // len(chunk)):
                member.write(chunk)
    assert (tmp_path / "bomb.pth").stat().st_size < 200_000
    with pytest.raises(WeightsError, match="zip bomb"):
        read_state_dict(tmp_path / "bomb.pth")


def test_legacy_storage_declaring_more_than_the_file_holds_is_refused(tmp_path):
    storage = FakeStorage("0", np.arange(4, dtype=np.float32))
    save_legacy(tmp_path / "w.pth", {"w": FakeTensor(storage, 0, (4,), (1,))}, [storage])
    data = bytearray((tmp_path / "w.pth").read_bytes())
    huge = 1 << 40  # a trillion elements: reading them would be a MemoryError
    data = data.replace(struct.pack("<q", 4) + storage.data.tobytes(), struct.pack("<q", huge) + storage.data.tobytes())
    pickled = data.rfind(b"cpu")  # the storage reference in the pickle declares the same count
    assert pickled > 0
    (tmp_path / "forged.pth").write_bytes(bytes(data))
    with pytest.raises(WeightsError):
        read_state_dict(tmp_path / "forged.pth")


def test_huge_declared_legacy_storage_is_a_weights_error_not_a_memory_error(tmp_path):
    numel = 1 << 40
    storage = FakeStorage("0", np.zeros(1, dtype=np.float32))
    with fake_torch() as torch:
        data = _pickle({"w": FakeTensor(storage, 0, (numel,), (1,))},
                       lambda o: ("storage", torch.FloatStorage, "0", "cpu", numel, None) if isinstance(o, FakeStorage) else None)
    info = {"protocol_version": LEGACY_PROTOCOL, "little_endian": True, "type_sizes": {"int": 4, "long": 4}}
    with open(tmp_path / "huge.pth", "wb") as stream:
        for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, info):
            pickle.dump(header, stream, protocol=2)
        stream.write(data)
        pickle.dump(["0"], stream, protocol=2)
        stream.write(struct.pack("<q", numel) + bytes(16))
    with pytest.raises(WeightsError, match="declares 1,099,511,627,776 elements"):
        read_state_dict(tmp_path / "huge.pth")
