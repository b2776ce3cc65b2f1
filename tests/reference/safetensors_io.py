"""Minimal safetensors reader/writer built on numpy only (no `safetensors` package).

File layout (https://github.com/huggingface/safetensors):

    [8 bytes]  N = little-endian uint64, length of the JSON header in bytes
    [N bytes]  UTF-8 JSON object:
                 {"__metadata__": {"key": "string value", ...},        (optional)
                  "<tensor name>": {"dtype": "F32", "shape": [2, 3],
                                    "data_offsets": [begin, end]}, ...}
               padded at the end with spaces so that 8 + N is a multiple of 8
    [rest]     raw little-endian row-major tensor bytes; data_offsets are relative
               to the first byte after the header.

Supported dtypes: F64 F32 F16 BF16 (read only, widened to float32) I64 I32 I16 I8 U8 BOOL.
"""

import json
import struct
from collections import OrderedDict

import numpy as np

# safetensors dtype string -> numpy little-endian dtype
_TO_NUMPY = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def _dtype_name(arr):
    dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    for name, npdt in _TO_NUMPY.items():
        if npdt == dt:
            return name
    raise TypeError(f"unsupported numpy dtype for safetensors: {arr.dtype}")


def read(path):
    """Return (tensors, metadata): an OrderedDict name -> numpy array (in file
    order) and the `__metadata__` dict (empty if absent)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} exceeds file size")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    # keep the order in which tensors are laid out in the data section
    items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    tensors = OrderedDict()
    for name, info in items:
        begin, end = info["data_offsets"]
        shape = tuple(int(s) for s in info["shape"])
        dtype = info["dtype"]
        buf = data[begin:end]
        if dtype == "BF16":
            # bfloat16 = upper 16 bits of a float32
            u16 = np.frombuffer(buf, dtype="<u2").astype(np.uint32)
            arr = (u16 << 16).view(np.float32)
        elif dtype in _TO_NUMPY:
            arr = np.frombuffer(buf, dtype=_TO_NUMPY[dtype])
        else:
            raise TypeError(f"{path}: tensor {name}: unsupported dtype {dtype}")
        count = int(np.prod(shape)) if shape else 1
        if arr.size != count:
            raise ValueError(f"{path}: tensor {name}: {arr.size} elements, shape {shape}")
        tensors[name] = arr.reshape(shape).copy()
    return tensors, metadata


def write(path, tensors, metadata=None):
    """Write an ordered mapping name -> numpy array (or anything np.asarray
    accepts). Tensors are stored in the given order; metadata values must be
    strings (safetensors requires a str -> str map)."""
    header = OrderedDict()
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, value in tensors.items():
        arr = np.asarray(value)  # (np.ascontiguousarray would turn 0-d into 1-d)
        dname = _dtype_name(arr)
        arr = arr.astype(_TO_NUMPY[dname], copy=False)  # force little-endian
        b = arr.tobytes(order="C")  # row-major bytes even for non-contiguous views
        header[name] = {"dtype": dname, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - (8 + len(hbytes)) % 8) % 8)  # align data to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for b in blobs:
            f.write(b)
