"""Reads PyTorch checkpoint files without torch and without executing code from the file.

``torch.save`` writes a pickle. Unpickling an arbitrary pickle can call any importable function
(``os.system`` included), so this module never uses :func:`pickle.load` on its own: it runs a
restricted :class:`pickle.Unpickler` whose ``find_class`` hands out only a fixed allow-list of
constructors (tensor rebuilders, typed storages, ``collections.OrderedDict``) and refuses every
other global with :class:`UnsafeCheckpointError`. Tensors come back as NumPy arrays; state dicts
as plain dicts / ``OrderedDict`` s.

Two on-disk formats are read:

- the zip format of ``torch.save`` (PyTorch >= 1.6, the default): a zip archive holding
  ``<archive>/data.pkl`` and one raw little-endian (see ``<archive>/byteorder``) file per storage
  under ``<archive>/data/<key>``;
- the legacy format (``_use_new_zipfile_serialization=False`` and files older than 1.6): a
  stream of pickles (magic number, protocol, system info, the object, storage keys) followed
  by the raw storages, each prefixed by its element count.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
import zipfile
from typing import Any, BinaryIO

import numpy as np

__all__ = ["CheckpointError", "UnsafeCheckpointError", "load_torch_checkpoint", "is_torch_checkpoint"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_MAX_ELEMENTS = 1 << 31  # per tensor: far above any video model's largest weight
_MAX_COMPRESSION = 64  # a compressed zip member may declare at most this many times the file's size


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read (corrupt, truncated, or an unsupported format)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint whose pickle asks for something other than tensors and plain containers."""


# Storage class name (as pickled by torch) -> NumPy dtype. bfloat16 is widened to float32 on read.
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("float64"),
    "FloatStorage": np.dtype("float32"),
    "HalfStorage": np.dtype("float16"),
    "BFloat16Storage": np.dtype("uint16"),
    "LongStorage": np.dtype("int64"),
    "IntStorage": np.dtype("int32"),
    "ShortStorage": np.dtype("int16"),
    "CharStorage": np.dtype("int8"),
    "ByteStorage": np.dtype("uint8"),
    "BoolStorage": np.dtype("bool"),
}


class _Frozen:
    """Base of the objects a checkpoint's pickle can reach: no instance dict, no attribute writes.

    The pickle BUILD opcode sets attributes on the object it is applied to; refusing that keeps a
    crafted file from altering anything it is handed.
    """

    __slots__ = ()

    def __setattr__(self, name, value):
        raise UnsafeCheckpointError("Refusing a checkpoint that tries to set attributes on a reader object.")

    def __reduce__(self):  # pragma: no cover - never pickled
        raise TypeError("not picklable")


class _StorageType(_Frozen):
    """Stands in for ``torch.FloatStorage`` etc.: only carries the element dtype."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", _STORAGE_DTYPES[name])

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"torch.{self.name}"


class _Callable(_Frozen):
    """An allow-listed constructor, handed out fresh to each pickle GLOBAL."""

    __slots__ = ("_fn",)

    def __init__(self, fn):
        object.__setattr__(self, "_fn", fn)

    def __call__(self, *args):
        return self._fn(*args)


class _Storage:
    """A flat storage: a 1-D NumPy array of the storage's dtype."""

    def __init__(self, array: np.ndarray, storage_type: _StorageType):
        self.array = array
        self.storage_type = storage_type


def _to_array(storage: _Storage, offset: int, size, stride) -> np.ndarray:
    flat = storage.array
    size = tuple(int(s) for s in size)
    stride = tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise CheckpointError(f"Corrupt tensor: size {size} and stride {stride} differ in length.")
    numel = math.prod(size)
    if numel > _MAX_ELEMENTS or any(n < 0 for n in size):
        raise CheckpointError(f"Corrupt tensor: implausible size {size}.")
    if numel > flat.size:  # a real tensor never has more elements than its storage (bounded by the file)
        raise CheckpointError(
            f"Corrupt tensor: size {size} declares {numel} elements, its storage holds {flat.size}.")
    if numel == 0:
        out = np.zeros(size, dtype=flat.dtype)
    else:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if offset < 0 or any(s < 0 for s in stride) or last >= flat.size:
            raise CheckpointError(
                f"Corrupt tensor: size {size}, stride {stride}, offset {offset} reach outside its storage "
                f"of {flat.size} elements."
            )
        item = flat.itemsize
        out = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=tuple(s * item for s in stride), writeable=False
        ).copy()
    if storage.storage_type.name == "BFloat16Storage":
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise UnsafeCheckpointError("Corrupt checkpoint: a tensor was rebuilt from something that is not a storage.")
    return _to_array(storage, int(storage_offset), size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    if not isinstance(data, np.ndarray):
        raise UnsafeCheckpointError("Corrupt checkpoint: a parameter was rebuilt from something that is not a tensor.")
    return data


class _StateDict(collections.OrderedDict):
    """``OrderedDict`` that accepts the ``_metadata`` attribute torch attaches to state dicts."""


def _new_state_dict(*args):
    return _StateDict(*args)


# (module, name) -> factory of the object handed to the pickle. Nothing else can be reached.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): lambda: _Callable(_new_state_dict),
    ("torch._utils", "_rebuild_tensor"): lambda: _Callable(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v2"): lambda: _Callable(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_parameter"): lambda: _Callable(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): lambda: _Callable(_rebuild_parameter),
}
for _name in _STORAGE_DTYPES:
    _ALLOWED[("torch", _name)] = (lambda n: lambda: _StorageType(n))(_name)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals and storage references."""

    def __init__(self, file: BinaryIO, load_storage, source: str, overrides: dict | None = None):
        super().__init__(file)
        self._load_storage = load_storage
        self._source = source
        self._overrides = overrides or {}

    def find_class(self, module: str, name: str):
        key = (module, name)
        if key in self._overrides:
            return _Callable(self._overrides[key])
        if key in _ALLOWED:
            return _ALLOWED[key]()
        raise UnsafeCheckpointError(
            f"Refusing to load {self._source}: its pickle references '{module}.{name}', which is not a tensor, "
            "storage or plain container. Only tensors, OrderedDicts and builtin containers are read "
            "(no code from the file is run); re-save the checkpoint as a plain state dict."
        )

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise UnsafeCheckpointError(f"Refusing to load {self._source}: unknown persistent id {pid!r}.")
        return self._load_storage(pid)


def _storage_type(value) -> _StorageType:
    if isinstance(value, _StorageType):
        return value
    raise UnsafeCheckpointError(f"Unsupported storage type {value!r} in checkpoint.")



def _storage_ref(path, pid) -> tuple:
    """(storage type, key, element count) of a pickled storage reference."""
    if len(pid) < 5:
        raise CheckpointError(f"{path}: malformed storage reference {pid!r}.")
    _, stype, key, _location, numel = pid[:5]
    return _storage_type(stype), str(key), numel

def is_torch_checkpoint(path: str) -> bool:
    """Whether ``path`` looks like a ``torch.save`` file (zip with ``data.pkl``, or a legacy pickle)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as zf:
                return any(n.endswith("data.pkl") for n in zf.namelist())
        except zipfile.BadZipFile:
            return False
    return head[:1] == b"\x80"  # pickle protocol >= 2


def _load_zip(path: str) -> Any:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise CheckpointError(f"{path} is not a readable PyTorch zip checkpoint ({err}).") from None
    with zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pkl:
            raise CheckpointError(f"{path} is a zip file but not a PyTorch checkpoint (no <archive>/data.pkl).")
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip() or "little"
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{path}: unknown byte order {byteorder!r}.")
        cache: dict[str, _Storage] = {}
        archive_size = os.path.getsize(path)

        def load_storage(pid):
            stype, key, numel = _storage_ref(path, pid)
            if key not in cache:
                member = f"{prefix}data/{key}"
                try:
                    info = zf.getinfo(member)
                except KeyError:
                    raise CheckpointError(f"{path}: storage {member!r} is missing (truncated file?).") from None
                # What a member declares is bounded by the file: torch stores storages uncompressed.
                limit = archive_size * (1 if info.compress_type == zipfile.ZIP_STORED else _MAX_COMPRESSION)
                if info.file_size > limit:
                    raise CheckpointError(
                        f"{path}: storage {member!r} declares {info.file_size} bytes, more than the "
                        f"{archive_size}-byte file can hold (corrupt or malicious checkpoint).")
                try:
                    raw = zf.read(member)
                except (zipfile.BadZipFile, OSError, EOFError) as err:
                    raise CheckpointError(f"{path}: storage {member!r} is unreadable ({err}).") from None
                dtype = stype.dtype.newbyteorder("<" if byteorder == "little" else ">")
                if len(raw) % dtype.itemsize:
                    raise CheckpointError(f"{path}: storage {member!r} has a partial element (truncated file?).")
                array = np.frombuffer(raw, dtype=dtype).astype(stype.dtype, copy=False)
                if int(numel) > array.size:
                    raise CheckpointError(
                        f"{path}: storage {member!r} holds {array.size} elements, {int(numel)} expected (truncated file?)."
                    )
                cache[key] = _Storage(array, stype)
            return cache[key]

        data = zf.read(pkl[0])
        return _unpickle(data, load_storage, path)


def _unpickle(data: bytes, load_storage, path: str) -> Any:
    try:
        return _RestrictedUnpickler(io.BytesIO(data), load_storage, path).load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError, IndexError, KeyError, struct.error) as err:
        raise CheckpointError(f"{path}: corrupt PyTorch checkpoint pickle ({type(err).__name__}: {err}).") from None


def _load_legacy(path: str) -> Any:
    with open(path, "rb") as fh:
        data = fh.read()
    stream = io.BytesIO(data)

    def plain(what: str):
        try:
            return _RestrictedUnpickler(stream, _no_storage, path).load()
        except CheckpointError:
            raise
        except Exception as err:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint ({what} unreadable: {err}).") from None

    magic = plain("magic number")
    if magic != _LEGACY_MAGIC:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (bad magic number).")
    protocol = plain("protocol version")
    if protocol != 1001:
        raise CheckpointError(f"{path}: unsupported legacy checkpoint protocol {protocol!r}.")
    sys_info = plain("system info")
    little = not isinstance(sys_info, dict) or sys_info.get("little_endian", True)

    pending: dict[str, tuple[_StorageType, int]] = {}
    storages: dict[str, _Storage] = {}

    def load_storage(pid):
        stype, key, numel = _storage_ref(path, pid)
        if key not in storages:
            # Filled in once the raw data (after the object pickle) has been read.
            storages[key] = _Storage(np.empty(0, stype.dtype), stype)
            pending[key] = (stype, int(numel))
        return storages[key]

    # Tensors are rebuilt after the storages (which follow the object pickle) are read.
    def lazy_tensor(storage, storage_offset, size, stride, *rest):
        if not isinstance(storage, _Storage):
            raise UnsafeCheckpointError(f"{path}: a tensor was rebuilt from something that is not a storage.")
        return _Deferred(storage, int(storage_offset), tuple(size), tuple(stride))

    overrides = {
        ("torch._utils", "_rebuild_tensor"): lazy_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): lazy_tensor,
        ("torch._utils", "_rebuild_parameter"): _lazy_param,
        ("torch._utils", "_rebuild_parameter_with_state"): _lazy_param,
    }
    try:
        obj = _RestrictedUnpickler(stream, load_storage, path, overrides).load()
        keys = _RestrictedUnpickler(stream, _no_storage, path).load()
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"{path}: corrupt legacy PyTorch checkpoint ({type(err).__name__}: {err}).") from None
    if not isinstance(keys, list):
        raise CheckpointError(f"{path}: corrupt legacy checkpoint (storage key list missing).")
    for key in keys:
        key = str(key)
        header = stream.read(8)
        if len(header) != 8:
            raise CheckpointError(f"{path}: truncated legacy checkpoint (storage {key} missing).")
        (numel,) = struct.unpack("<q" if little else ">q", header)
        stype = pending[key][0] if key in pending else None
        if stype is None:
            raise CheckpointError(f"{path}: corrupt legacy checkpoint (unreferenced storage {key}).")
        nbytes = numel * stype.dtype.itemsize
        raw = stream.read(nbytes)
        if len(raw) != nbytes:
            raise CheckpointError(f"{path}: truncated legacy checkpoint (storage {key} is short).")
        dtype = stype.dtype.newbyteorder("<" if little else ">")
        storages[key].array = np.frombuffer(raw, dtype=dtype).astype(stype.dtype, copy=False)
    missing = set(pending) - {str(k) for k in keys}
    if missing:
        raise CheckpointError(f"{path}: truncated legacy checkpoint (storages {sorted(missing)} missing).")
    return _resolve(obj)


class _Deferred:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def resolve(self) -> np.ndarray:
        return _to_array(self.storage, self.offset, self.size, self.stride)


def _lazy_param(data, *rest):
    return data


def _resolve(obj: Any) -> Any:
    if isinstance(obj, _Deferred):
        return obj.resolve()
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _resolve(v)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _resolve(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_resolve(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(v) for v in obj)
    return obj


def _no_storage(pid):
    raise UnsafeCheckpointError(f"Unexpected storage reference {pid!r} outside the checkpoint body.")


def _plain(obj: Any) -> Any:
    """Turns the internal OrderedDict subclass back into plain OrderedDicts."""
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _plain(v)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_plain(v) for v in obj)
    return obj


def load_torch_checkpoint(path: str | os.PathLike) -> Any:
    """Reads a ``torch.save`` file (zip or legacy format) without torch and without running its code.

    Args:
        path: a ``.pyth`` / ``.pth`` / ``.pt`` file.

    Returns:
        The saved object with every tensor as a NumPy array (bfloat16 widened to float32) and
        state dicts as ``collections.OrderedDict``.

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafeCheckpointError: the pickle references anything but tensors, storages and
            plain containers (for example ``os.system``); nothing from it is executed.
        CheckpointError: the file is not a PyTorch checkpoint, or is truncated / corrupt.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint {path!r} does not exist.")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK"):
        return _plain(_load_zip(path))
    if head[:1] == b"\x80":
        return _plain(_load_legacy(path))
    raise CheckpointError(
        f"{path} is not a PyTorch checkpoint (expected the zip format of torch.save or a legacy pickle)."
    )
