#!/usr/bin/env python3
"""Write the PyTorch checkpoint fixtures under tests/fixtures/torch/ (tests/test_torch_checkpoint.cpp).

    /usr/bin/python3 tests/reference/make_torch_fixtures.py

Needs PyTorch (Debian: `apt-get install python3-torch`; a development dependency only, the fixtures are
committed) and numpy. What it writes (tests/fixtures/torch/README.md has the table):

  * the tiny test BERT (tests/fixtures/tiny-bert) saved by torch.save in both container formats, in
    float32 and float16, plus the expected float16 values as safetensors;
  * a state_dict of views sharing one storage (transposed, sliced, tied, a column, a Parameter), with
    bfloat16, float64, int64, 0-d and empty tensors, in both formats, plus its expected values;
  * hostile files, each of which must be refused with the error in hostile.json.

The zip files and the hand-assembled files are byte-for-byte reproducible; the legacy files written by
torch.save are not (their storage keys are memory addresses), which changes nothing the tests check.
"""

import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(REPO, "tests", "fixtures", "torch")


def out(name):
    return os.path.join(OUT, name)


def save(obj, name, legacy=False):
    torch.save(obj, out(name), _use_new_zipfile_serialization=not legacy)


# ---- real checkpoints --------------------------------------------------------------------------

def tiny_bert(dtype):
    tensors, _ = safetensors_io.read(os.path.join(REPO, "tests", "fixtures", "tiny-bert", "model.safetensors"))
    sd = collections.OrderedDict((k, torch.from_numpy(v).to(dtype)) for k, v in sorted(tensors.items()))
    # nn.Module.state_dict() attaches each module's version as `_metadata`, which OrderedDict pickles
    # through BUILD: the files transformers writes carry it, so ours do too.
    modules = sorted({name.rsplit(".", 1)[0] for name in sd} | {""})
    sd._metadata = collections.OrderedDict((m, {"version": 1}) for m in modules)
    return sd


def shared_storage_state_dict():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5 - 3.0  # exact in every dtype used
    sd = collections.OrderedDict()
    sd["base"] = base
    sd["transposed"] = base.t()        # strides (1, 6)
    sd["slice"] = base[1:3, ::2]       # offset 6, strides (6, 2)
    sd["column"] = base[:, 2]          # offset 2, stride 6
    sd["tied"] = base                  # the same tensor again (a memo reference in the pickle)
    sd["param"] = torch.nn.Parameter(torch.tensor([1.5, -2.0, 0.25]))  # _rebuild_parameter
    sd["half"] = torch.tensor([[0.5, -1.0], [65504.0, 6.1035156e-05]], dtype=torch.float16)
    sd["bf16"] = torch.tensor([1.0, -2.5, 3.140625, 1e-30], dtype=torch.bfloat16)
    sd["double"] = torch.tensor([0.1, -1e300], dtype=torch.float64)
    sd["ids"] = torch.tensor([[0, 5], [-7, 2147483647]], dtype=torch.int64)
    sd["scalar"] = torch.tensor(7.25)
    sd["empty"] = torch.zeros(0, 3)
    return sd


def expected_values(sd):
    """Contiguous numpy copies; bfloat16 widened to float32 (exact), everything else as stored."""
    exp = collections.OrderedDict()
    for name, t in sd.items():
        t = t.detach()
        exp[name] = (t.float() if t.dtype == torch.bfloat16 else t).contiguous().numpy()
    return exp


# ---- hand-made files ---------------------------------------------------------------------------

class StorageRef:
    def __init__(self, key, storage_type, numel):
        self.key, self.storage_type, self.numel = key, storage_type, numel


class FakeTensor:
    """Pickles as torch does a tensor: _rebuild_tensor_v2(storage, offset, size, stride, False, hooks)."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class StatePickler(pickle.Pickler):
    legacy = False

    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            pid = ("storage", obj.storage_type, obj.key, "cpu", obj.numel)
            return pid + (None,) if self.legacy else pid
        return None


def state_pickle(obj, protocol=2, legacy=False):
    buf = io.BytesIO()
    p = StatePickler(buf, protocol)
    p.legacy = legacy
    p.dump(obj)
    return buf.getvalue()


def write_zip(name, data_pkl, storages, prefix="archive", byteorder=None, version_name="version"):
    with zipfile.ZipFile(out(name), "w", compression=zipfile.ZIP_STORED) as z:
        def add(record, data):
            z.writestr(zipfile.ZipInfo(f"{prefix}/{record}", date_time=(1980, 1, 1, 0, 0, 0)), data)
        add("data.pkl", data_pkl)
        if byteorder is not None:
            add("byteorder", byteorder)
        for key, data in storages.items():
            add(f"data/{key}", data)
        add(version_name, b"3\n")


def write_legacy(name, main_pickle, storages, little_endian=True):
    """storages: key -> (numel, bytes), written in key order after the key list."""
    with open(out(name), "wb") as f:
        f.write(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2))
        f.write(pickle.dumps(1001, protocol=2))
        f.write(pickle.dumps(dict(protocol_version=1001, little_endian=little_endian,
                                  type_sizes=dict(short=2, int=4, long=4)), protocol=2))
        f.write(main_pickle)
        f.write(pickle.dumps(sorted(storages), protocol=2))
        for key in sorted(storages):
            numel, data = storages[key]
            f.write(struct.pack("<q", numel) + data)


def small_state(numel=6, size=(2, 3), stride=(3, 1)):
    ref = StorageRef("0", torch.FloatStorage, numel)
    return collections.OrderedDict(w=FakeTensor(ref, 0, size, stride))


F32_6 = np.arange(6, dtype="<f4").tobytes()


class SystemCall:
    def __reduce__(self):
        return (os.system, ("echo this fixture must never run",))


class Payload:
    def __reduce__(self):
        return (Payload, ())


class EvalCall:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def hostile():
    """Each file and the error a reader must give (a substring of it)."""
    cases = []

    def case(name, error, what):
        cases.append({"file": name, "error": error, "what": what})

    save({"w": torch.zeros(2), "payload": SystemCall()}, "hostile-system-global.bin")
    case("hostile-system-global.bin", "global 'posix.system' is not allowed", "GLOBAL posix.system + REDUCE")
    save({"w": torch.zeros(2), "payload": Payload()}, "hostile-class-reduce.bin")
    case("hostile-class-reduce.bin", "global '__main__.Payload' is not allowed", "__reduce__ of an arbitrary class")
    write_zip("hostile-stack-global-eval.bin", state_pickle({"x": EvalCall()}, protocol=4), {})
    case("hostile-stack-global-eval.bin", "global 'builtins.eval' is not allowed",
         "protocol 4 STACK_GLOBAL builtins.eval")
    write_zip("hostile-inst-opcode.bin", b"\x80\x02(X\x04\x00\x00\x00trueios\nsystem\n.", {})
    case("hostile-inst-opcode.bin", "opcode INST is not allowed", "protocol 0 INST opcode (calls a class)")
    save({"i": torch.zeros(2, dtype=torch.int32)}, "hostile-int32-storage.bin")
    case("hostile-int32-storage.bin", "global 'torch.IntStorage' is not allowed", "a storage type not in the list")
    with open(out("shared-strided-zip.bin"), "rb") as f:
        whole = f.read()
    with open(out("hostile-truncated-zip.bin"), "wb") as f:
        f.write(whole[: len(whole) // 2])
    case("hostile-truncated-zip.bin", "not a readable zip archive", "zip archive cut in half")
    write_zip("hostile-wrong-storage-size.bin", state_pickle(small_state()), {"0": F32_6[:-4]})
    case("hostile-wrong-storage-size.bin", "holds 20 bytes, expected 24", "storage record shorter than declared")
    write_zip("hostile-view-out-of-bounds.bin", state_pickle(small_state(numel=4, size=(3, 2), stride=(2, 1))),
              {"0": F32_6[:16]})
    case("hostile-view-out-of-bounds.bin", "runs past the 4 elements of storage '0'", "strided view past its storage")
    empty_far = collections.OrderedDict(w=FakeTensor(StorageRef("0", torch.FloatStorage, 4), 2**62, (0,), (1,)))
    write_zip("hostile-offset-past-storage.bin", state_pickle(empty_far), {"0": F32_6[:16]})
    case("hostile-offset-past-storage.bin", "runs past the 4 elements", "an empty view whose offset is past its storage")
    write_zip("hostile-big-endian-zip.bin", state_pickle(small_state()), {"0": F32_6}, byteorder=b"big")
    case("hostile-big-endian-zip.bin", "big-endian", "zip byteorder record 'big'")
    write_legacy("hostile-big-endian-legacy.bin", state_pickle(small_state(), legacy=True), {"0": (6, F32_6)},
                 little_endian=False)
    case("hostile-big-endian-legacy.bin", "big-endian", "legacy sys_info little_endian False")
    with open(out("shared-strided-legacy.bin"), "rb") as f:
        whole = f.read()
    with open(out("hostile-truncated-legacy.bin"), "wb") as f:
        f.write(whole[:-10])
    case("hostile-truncated-legacy.bin", "truncated", "legacy file cut inside its last storage")
    write_zip("hostile-deep-nesting.bin", b"\x80\x02" + b"]" * 100 + b"a" * 99 + b".", {})
    case("hostile-deep-nesting.bin", "nest deeper than 64", "lists nested 100 deep")
    write_zip("hostile-memo-missing.bin", b"\x80\x02h\x05.", {})
    case("hostile-memo-missing.bin", "memo entry 5 was never stored", "BINGET of a memo entry never stored")
    save({"model": shared_storage_state_dict()}, "hostile-nested-state-dict.bin")
    case("hostile-nested-state-dict.bin", "entry 'model' is a dict, not a tensor", "a training checkpoint, not a state_dict")
    with open(out("hostile-not-a-checkpoint.bin"), "wb") as f:
        f.write(b"version https://git-lfs.github.com/spec/v1\n")
    case("hostile-not-a-checkpoint.bin", "not a PyTorch checkpoint", "a Git LFS pointer instead of the file")
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    for dtype, tag in ((torch.float32, "f32"), (torch.float16, "f16")):
        sd = tiny_bert(dtype)
        save(sd, f"tiny-bert-{tag}-zip.bin")
        save(sd, f"tiny-bert-{tag}-legacy.bin", legacy=True)
    safetensors_io.write(out("tiny-bert-f16-expected.safetensors"), expected_values(tiny_bert(torch.float16)))

    sd = shared_storage_state_dict()
    save(sd, "shared-strided-zip.bin")
    save(sd, "shared-strided-legacy.bin", legacy=True)
    safetensors_io.write(out("shared-strided-expected.safetensors"), expected_values(sd))
    # The layout of newer torch: "archive/" folder, .data/version, a byteorder record; protocol 4 pickle.
    write_zip("torch2-layout.bin", state_pickle(small_state(), protocol=4), {"0": F32_6}, byteorder=b"little",
              version_name=".data/version")

    with open(out("hostile.json"), "w") as f:
        json.dump(hostile(), f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(out(n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
