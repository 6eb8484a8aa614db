"""Read PyTorch ``.pth`` / ``.pt`` state dicts into numpy arrays, without torch and without running pickled code.

Two containers are understood:

* **zip** (``torch.save`` since torch 1.6): ``<prefix>/data.pkl`` holds the pickled object, each storage is a raw
  record ``<prefix>/data/<key>``, and an optional ``<prefix>/byteorder`` says ``little`` or ``big``;
* **legacy stream** (before torch 1.6): pickles back to back — magic number, protocol version (1001), system info,
  the object, the list of storage keys — followed, for each key, by an int64 element count and the raw bytes.

The object pickle is read by an :class:`pickle.Unpickler` whose ``find_class`` returns only numpy stand-ins for
torch's tensor-rebuild functions, ``collections.OrderedDict`` and storage-type markers. Any other global
(``os.system``, ``builtins.eval`` …) is refused with :class:`~visionkit.core.errors.WeightsError` before it can be called.
"""

import collections
import io
import pickle
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionkit.core.errors import WeightsError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
_BF16 = "bfloat16"
#: torch storage type name → numpy dtype code (bfloat16 is widened to float32).
STORAGE_DTYPES = {
    "FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2", "BFloat16Storage": _BF16,
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")


@dataclass(frozen=True)
class _StorageType:
    """What ``torch.FloatStorage`` & co. unpickle to: a name, not a callable."""

    name: str


@dataclass(frozen=True)
class _Storage:
    """A storage reference: root key, element dtype code, root element count, optional (offset, count) view."""

    key: str
    dtype: str
    numel: int
    view: tuple = None


class _Tensor:
    """A tensor waiting for its storage bytes (legacy files store them after the pickle)."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused):
    """Stand-in for ``torch._utils._rebuild_tensor(_v2)``; extra args (requires_grad, hooks, metadata) are ignored."""
    if not isinstance(storage, _Storage):
        raise WeightsError(f"tensor rebuild received {type(storage).__name__} instead of a storage")
    return _Tensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, *_unused):
    """Stand-in for ``torch._utils._rebuild_parameter(_with_state)``: a parameter is its tensor."""
    if not isinstance(data, _Tensor):
        raise WeightsError(f"parameter rebuild received {type(data).__name__} instead of a tensor")
    return data


_ALLOWED_GLOBALS = {
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "collections.OrderedDict": collections.OrderedDict,
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals and records the storages it meets."""

    def __init__(self, file, source, storages=None):
        super().__init__(file)
        self._source = source
        self._storages = storages  # None: persistent ids are an error (plain header pickles)

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        found = _ALLOWED_GLOBALS.get(f"{module}.{name}")
        if found is None:
            allowed = ", ".join(sorted(_ALLOWED_GLOBALS)) + ", torch.<Type>Storage"
            raise WeightsError(
                f"{self._source}: refused to unpickle global '{module}.{name}'; only tensor-rebuild globals are "
                f"allowed ({allowed}). The file is not a plain state dict or is malicious; nothing was executed."
            )
        return found

    def persistent_load(self, pid):
        if self._storages is None:
            raise WeightsError(f"{self._source}: unexpected storage reference {pid!r} outside the state dict")
        storage = _parse_storage_id(pid, self._source)
        known = self._storages.setdefault(storage.key, (storage.dtype, storage.numel))
        if known != (storage.dtype, storage.numel):
            raise WeightsError(f"{self._source}: storage {storage.key!r} is declared twice with different types")
        return storage


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_storage_id(pid, source):
    """``('storage', type, key, location, numel[, view_metadata])`` → :class:`_Storage`."""
    ok = isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
    if not ok or not isinstance(pid[1], _StorageType) or not _is_int(pid[4]) or pid[4] < 0:
        raise WeightsError(f"{source}: malformed storage reference {pid!r}")
    view = pid[5] if len(pid) == 6 else None
    if view is not None:
        if not (isinstance(view, tuple) and len(view) == 3 and _is_int(view[1]) and _is_int(view[2])):
            raise WeightsError(f"{source}: malformed storage view {view!r}")
        view = (view[1], view[2])
    return _Storage(str(pid[2]), STORAGE_DTYPES[pid[1].name], pid[4], view)


def _load(unpickler, source, what):
    """Run one unpickler, turning any parse failure of the untrusted bytes into WeightsError."""
    try:
        return unpickler.load()
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure here means a corrupt or truncated file
        detail = f"{type(exc).__name__}: {exc}"
        raise WeightsError(f"{source}: cannot read {what} ({detail}); corrupt or truncated file") from None


def _storage_array(raw, code, numel, little, key, source):
    """Raw bytes of one storage → 1-D native-order numpy array of ``numel`` elements."""
    order = "<" if little else ">"
    dtype = np.dtype(order + ("u2" if code == _BF16 else code))
    if len(raw) < numel * dtype.itemsize:
        raise WeightsError(
            f"{source}: storage {key!r} needs {numel * dtype.itemsize} bytes but has {len(raw)}; truncated file"
        )
    flat = np.frombuffer(raw, dtype=dtype, count=numel)
    if code == _BF16:
        return (flat.astype(np.uint32) << 16).view(np.float32)
    return flat.astype(dtype.newbyteorder("="), copy=False)


def _to_array(tensor, arrays, source):
    """Apply storage offset, size and stride (in elements) to the storage; returns a contiguous copy."""
    base = arrays[tensor.storage.key]
    if tensor.storage.view is not None:
        start, count = tensor.storage.view
        if start < 0 or count < 0 or start + count > base.size:
            raise WeightsError(f"{source}: storage view {tensor.storage.view} is outside its storage")
        base = base[start:start + count]
    offset, size, stride = tensor.offset, tensor.size, tensor.stride
    ints = _is_int(offset) and all(_is_int(v) for v in size + stride)
    if not ints or len(size) != len(stride) or offset < 0 or min(size + stride, default=0) < 0:
        raise WeightsError(f"{source}: malformed tensor (offset={offset!r}, size={size!r}, stride={stride!r})")
    if 0 in size:
        return np.zeros(size, base.dtype)
    end = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if end > base.size:
        raise WeightsError(f"{source}: tensor of size {size} reaches element {end} of a {base.size}-element storage")
    strides = tuple(s * base.itemsize for s in stride)
    return np.lib.stride_tricks.as_strided(base[offset:], shape=size, strides=strides, writeable=False).copy()


def _materialise(obj, arrays, source):
    """Replace every :class:`_Tensor` inside dicts, lists and tuples by its numpy array."""
    if isinstance(obj, _Tensor):
        return _to_array(obj, arrays, source)
    if isinstance(obj, dict):
        return {key: _materialise(value, arrays, source) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(value, arrays, source) for value in obj)
    return obj


def _read_zip(path, source):
    """Zip container → (object with _Tensor leaves, storage arrays)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            pickles = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise WeightsError(f"{source}: zip archive has {len(pickles)} data.pkl records, expected 1; "
                                   "not a torch.save() file")
            prefix = pickles[0][: -len("data.pkl")]
            little = _zip_byteorder(archive, prefix + "byteorder", names, source)
            storages = {}
            obj = _load(_SafeUnpickler(io.BytesIO(archive.read(pickles[0])), source, storages), source, "data.pkl")
            arrays = {}
            for key, (code, numel) in storages.items():
                record = f"{prefix}data/{key}"
                if record not in names:
                    raise WeightsError(f"{source}: storage record {record!r} is missing from the zip archive")
                arrays[key] = _storage_array(archive.read(record), code, numel, little, key, source)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise WeightsError(f"{source}: corrupt or truncated zip archive ({exc})") from None
    return obj, arrays


def _zip_byteorder(archive, record, names, source):
    if record not in names:
        return True
    order = archive.read(record).decode("ascii", "replace").strip()
    if order not in ("little", "big"):
        raise WeightsError(f"{source}: unknown byteorder {order!r} (expected 'little' or 'big')")
    return order == "little"


def _read_legacy(path, source):
    """Legacy pickle stream → (object with _Tensor leaves, storage arrays)."""
    with open(path, "rb") as stream:
        if _load(_SafeUnpickler(stream, source), source, "magic number") != LEGACY_MAGIC:
            raise WeightsError(f"{source}: pickle stream without the PyTorch magic number; not a torch.save() file")
        protocol = _load(_SafeUnpickler(stream, source), source, "protocol version")
        if protocol != LEGACY_PROTOCOL:
            raise WeightsError(f"{source}: legacy protocol {protocol!r} is not supported (expected {LEGACY_PROTOCOL})")
        info = _load(_SafeUnpickler(stream, source), source, "system info")
        little = bool(info.get("little_endian", True)) if isinstance(info, dict) else True
        storages = {}
        obj = _load(_SafeUnpickler(stream, source, storages), source, "state dict")
        keys = _load(_SafeUnpickler(stream, source), source, "storage keys")
        if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
            raise WeightsError(f"{source}: storage key list does not match the storages the state dict uses")
        arrays = {}
        for key in map(str, keys):
            code, numel = storages[key]
            arrays[key] = _read_legacy_storage(stream, code, numel, little, key, source)
    return obj, arrays


def _read_legacy_storage(stream, code, numel, little, key, source):
    head = stream.read(8)
    if len(head) < 8:
        raise WeightsError(f"{source}: file ends before storage {key!r}; truncated file")
    count = struct.unpack("<q" if little else ">q", head)[0]
    if count != numel:
        raise WeightsError(f"{source}: storage {key!r} holds {count} elements, the state dict expects {numel}")
    itemsize = 2 if code == _BF16 else np.dtype(code).itemsize
    return _storage_array(stream.read(count * itemsize), code, numel, little, key, source)


def _state_dict_from(obj, source):
    """Unwrap ``{'state_dict': …}``-style checkpoints and keep the array entries."""
    if isinstance(obj, dict):
        for key in _STATE_DICT_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise WeightsError(f"{source} holds a {type(obj).__name__}, not a state dict of tensors")
    tensors = {str(key): value for key, value in obj.items() if isinstance(value, np.ndarray)}
    if not tensors:
        raise WeightsError(f"{source} holds no tensors; expected a state dict (name → tensor)")
    return tensors


def read_state_dict(path):
    """Read a PyTorch state dict file (zip or legacy format) → ``{name: np.ndarray}``, never executing its code.

    Raises:
        WeightsError: missing file, neither format, truncated or corrupt data, or a pickle that asks for any
            global other than the tensor-rebuild ones (the message names the refused global).
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {source}")
    with open(path, "rb") as stream:
        head = stream.read(4)
    if head.startswith(b"PK"):
        obj, arrays = _read_zip(path, source)
    elif head[:1] == b"\x80":
        obj, arrays = _read_legacy(path, source)
    else:
        raise WeightsError(f"{source} is not a PyTorch weights file: expected a zip archive or a legacy pickle "
                           f"stream, the file starts with {head!r}")
    return _state_dict_from(_materialise(obj, arrays, source), source)
