"""Read PyTorch ``.pth`` / ``.pt`` state dicts into numpy arrays, without torch and without running pickled code.

Two containers are understood:

* **zip** (``torch.save`` since torch 1.6): ``<prefix>/data.pkl`` holds the pickled object, each storage is a raw
  record ``<prefix>/data/<key>``, and an optional ``<prefix>/byteorder`` says ``little`` or ``big``;
* **legacy stream** (before torch 1.6): pickles back to back — magic number, protocol version (1001), system info,
  the object, the list of storage keys — followed, for each key, by an int64 element count and the raw bytes.

The object pickle is read by an :class:`pickle.Unpickler` whose ``find_class`` returns only numpy stand-ins for
torch's tensor-rebuild functions, ``collections.OrderedDict`` and storage-type markers. Any other global
(``os.system``, ``builtins.eval`` …) is refused with :class:`~visionkit.core.errors.WeightsError` before it can be called.

Memory is capped by the file's size, so a small hostile file cannot make a large allocation:

* a zip member is read only up to the bytes its storage needs, and all members together may not unpack to more
  than :data:`MAX_ZIP_RATIO` times the archive's size (``torch.save`` stores members uncompressed: ratio ~1);
* a legacy storage may not declare more bytes than the file has left;
* a tensor may not have more elements than its storage (a stride-0 "expanded" view of one element would
  otherwise turn a few hundred bytes into any size), and all tensors together may not take more than
  :data:`MAX_EXPANSION` times the storage bytes (several views sharing one storage).

Every refusal, and a ``MemoryError`` should one still happen, is a ``WeightsError`` naming the file.
"""

import collections
import io
import os
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
#: Zip members together may unpack to at most this many times the archive's size (plus :data:`SLACK_BYTES`).
MAX_ZIP_RATIO = 16
#: All tensors together may take at most this many times the bytes of the storages they view (plus SLACK_BYTES).
MAX_EXPANSION = 4
SLACK_BYTES = 1 << 20


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


def _tensors_in(obj, name=""):
    """(name, tensor) for every :class:`_Tensor` inside dicts, lists and tuples."""
    if isinstance(obj, _Tensor):
        yield name, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _tensors_in(value, f"{name}.{key}" if name else str(key))
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from _tensors_in(value, f"{name}[{index}]")


def _check_expansion(obj, arrays, source):
    """Before any tensor is copied: no tensor has more elements than its storage (or storage view), and all
    tensors together take at most MAX_EXPANSION times the storages' bytes."""
    stored = sum(a.nbytes for a in arrays.values())
    wanted = 0
    for name, tensor in _tensors_in(obj):
        if not all(_is_int(v) and v >= 0 for v in tensor.size):
            continue  # malformed: _to_array names it
        base = arrays[tensor.storage.key]
        available = tensor.storage.view[1] if tensor.storage.view is not None else base.size
        elements = int(np.prod(tensor.size, dtype=object))
        if elements > max(available, 0):
            raise WeightsError(f"{source}: refused tensor {name!r} of size {tensor.size} ({elements:,} elements) over "
                               f"a storage of {available:,} (stride {tensor.stride}); a tensor may not have more "
                               "elements than its storage")
        wanted += elements * base.itemsize
    if wanted > MAX_EXPANSION * stored + SLACK_BYTES:
        raise WeightsError(f"{source}: refused: its tensors would take {wanted:,} bytes from {stored:,} bytes of "
                           f"storage (more than {MAX_EXPANSION}x); not a plain state dict")


def _materialise(obj, arrays, source):
    """Replace every :class:`_Tensor` inside dicts, lists and tuples by its numpy array."""
    if isinstance(obj, _Tensor):
        return _to_array(obj, arrays, source)
    if isinstance(obj, dict):
        return {key: _materialise(value, arrays, source) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(value, arrays, source) for value in obj)
    return obj


class _ZipBudget:
    """Reads zip members, at most ``limit`` bytes each, and at most MAX_ZIP_RATIO × the archive size in all."""

    def __init__(self, archive, archive_bytes, source):
        self.archive, self.source = archive, source
        self.left = MAX_ZIP_RATIO * archive_bytes + SLACK_BYTES

    def read(self, name, limit=None):
        info = self.archive.getinfo(name)
        wanted = info.file_size if limit is None else min(limit, info.file_size)
        if wanted > self.left:
            raise WeightsError(f"{self.source}: refused: zip member {name!r} unpacks to {info.file_size:,} bytes, "
                               f"more than {MAX_ZIP_RATIO}x the archive's size in all (a zip bomb?)")
        with self.archive.open(info) as member:
            data = member.read(wanted)
        self.left -= len(data)
        return data


def _read_zip(path, source):
    """Zip container → (object with _Tensor leaves, storage arrays)."""
    try:
        with zipfile.ZipFile(path) as archive:
            budget = _ZipBudget(archive, Path(path).stat().st_size, source)
            names = set(archive.namelist())
            pickles = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise WeightsError(f"{source}: zip archive has {len(pickles)} data.pkl records, expected 1; "
                                   "not a torch.save() file")
            prefix = pickles[0][: -len("data.pkl")]
            little = _zip_byteorder(budget, prefix + "byteorder", names, source)
            storages = {}
            obj = _load(_SafeUnpickler(io.BytesIO(budget.read(pickles[0])), source, storages), source, "data.pkl")
            arrays = {}
            for key, (code, numel) in storages.items():
                record = f"{prefix}data/{key}"
                if record not in names:
                    raise WeightsError(f"{source}: storage record {record!r} is missing from the zip archive")
                needed = numel * _itemsize(code)
                arrays[key] = _storage_array(budget.read(record, needed), code, numel, little, key, source)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise WeightsError(f"{source}: corrupt or truncated zip archive ({exc})") from None
    return obj, arrays


def _itemsize(code):
    return 2 if code == _BF16 else np.dtype(code).itemsize


def _zip_byteorder(budget, record, names, source):
    if record not in names:
        return True
    order = budget.read(record, 16).decode("ascii", "replace").strip()
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
    needed = count * _itemsize(code)
    left = os.fstat(stream.fileno()).st_size - stream.tell()
    if needed > left:
        raise WeightsError(f"{source}: storage {key!r} declares {count:,} elements ({needed:,} bytes) but the file has "
                           f"{left:,} bytes left; truncated or forged file")
    return _storage_array(stream.read(needed), code, numel, little, key, source)


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
    if not (head.startswith(b"PK") or head[:1] == b"\x80"):
        raise WeightsError(f"{source} is not a PyTorch weights file: expected a zip archive or a legacy pickle "
                           f"stream, the file starts with {head!r}")
    try:
        obj, arrays = _read_zip(path, source) if head.startswith(b"PK") else _read_legacy(path, source)
        _check_expansion(obj, arrays, source)
        return _state_dict_from(_materialise(obj, arrays, source), source)
    except MemoryError:
        raise WeightsError(f"{source}: reading it needs more memory than this machine has; "
                           "a state dict this large is not supported") from None
