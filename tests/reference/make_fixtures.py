#!/usr/bin/env python3
"""Generate the committed parity fixtures under tests/fixtures/.

    /usr/bin/python3 tests/reference/make_fixtures.py           # (re)write fixtures
    /usr/bin/python3 tests/reference/make_fixtures.py --check   # verify committed files are reproduced

Everything is deterministic (fixed torch.Generator seeds, float64 throughout):

    tiny-bert/config.json, tiny-bert/model.safetensors   random tiny BERT (F64 weights)
    batch-cls.safetensors, batch-reg.safetensors          B=3, T=7 batch (padding in rows 1, 2)
    pelt/<preset>-<cls|reg>.safetensors                   --init: all PELT tensors + classifier
    expected/<preset>-<masked|all>-<cls|reg>.safetensors  reference `grads` output (F64)
    cases.json                                            manifest for the C++ test loop
"""

import argparse
import filecmp
import json
import os
import shutil
import sys
import tempfile
from collections import OrderedDict

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402
import unipelt_reference as ref  # noqa: E402

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
FIXTURES_REL = "tests/fixtures"

# Tiny model architecture.
CONFIG = OrderedDict([
    ("architectures", ["BertModel"]),
    ("model_type", "bert"),
    ("vocab_size", 50),
    ("hidden_size", 16),
    ("num_hidden_layers", 2),
    ("num_attention_heads", 2),
    ("intermediate_size", 32),
    ("max_position_embeddings", 32),
    ("type_vocab_size", 2),
    ("layer_norm_eps", 1e-12),
    ("hidden_act", "gelu"),
    ("hidden_dropout_prob", 0.1),
    ("attention_probs_dropout_prob", 0.1),
    ("initializer_range", 0.02),
    ("pad_token_id", 0),
])

# PELT sizes used by every case, and the matching CLI flags.
SIZES = dict(adapter_size=4, prefix_len=3, prefix_mid=8, lora_r=2, lora_alpha=4.0)
SIZE_FLAGS = ["--adapter-size", "4", "--prefix-len", "3", "--prefix-mid", "8",
              "--lora-r", "2", "--lora-alpha", "4"]

TASKS = OrderedDict([("cls", 3), ("reg", 1)])  # task kind -> num_labels
POOLS = ["masked", "all"]


def _randn(gen, shape, std, mean=0.0):
    return torch.randn(shape, generator=gen, dtype=torch.float64) * std + mean


def make_model_weights(cfg):
    """Random base weights, deliberately far from HF's 0.02 init so that
    attention patterns, GELU curvature and LayerNorm scales all matter."""
    gen = torch.Generator().manual_seed(1234)
    w = OrderedDict()
    for name, shape in ref.base_param_shapes(cfg, 1).items():
        if name.startswith("classifier."):
            continue  # a pretrained checkpoint has no classifier; it comes via --init
        if "embeddings" in name and name.endswith(".weight") and "LayerNorm" not in name:
            w[name] = _randn(gen, shape, 0.5)
        elif "LayerNorm.weight" in name:
            w[name] = _randn(gen, shape, 0.1, 1.0)
        elif name.endswith(".bias"):
            w[name] = _randn(gen, shape, 0.1)
        else:  # dense weights [out, in]
            w[name] = _randn(gen, shape, 0.25)
    return w


def make_batches():
    """B=3, T=7. Row 0 full, row 1 has 5 real tokens, row 2 has 3 (padding at the end)."""
    gen = torch.Generator().manual_seed(99)
    lengths = [7, 5, 3]
    B, T = len(lengths), 7
    ids = torch.zeros(B, T, dtype=torch.int64)
    mask = torch.zeros(B, T, dtype=torch.int64)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(3, CONFIG["vocab_size"], (n,), generator=gen)
        ids[b, 0], ids[b, n - 1] = 1, 2  # [CLS] ... [SEP]
        mask[b, :n] = 1
    tt = torch.tensor([[0, 0, 0, 0, 1, 1, 1],
                       [0, 0, 0, 1, 1, 0, 0],
                       [0, 0, 0, 0, 0, 0, 0]], dtype=torch.int64)
    common = OrderedDict([("input_ids", ids.numpy()), ("token_type_ids", tt.numpy()),
                          ("attention_mask", mask.numpy())])
    cls = OrderedDict(common, labels=np.array([0, 2, 1], dtype=np.int64))
    # regression labels chosen exactly representable in F32 (no rounding)
    reg = OrderedDict(common, labels=np.array([0.5, -1.25, 2.0], dtype=np.float32))
    return {"cls": cls, "reg": reg}


def make_master_pelt(cfg):
    """One set of every PELT tensor (union over all methods, gates included),
    small and nonzero everywhere (lora_B and adapter.up too, which are zero at
    a real init), plus a classifier per task. Presets take subsets of it so
    that e.g. `adapter` and `unipelt-ap` share the same adapter weights."""
    gen = torch.Generator().manual_seed(4321)
    full = ref.PeltConfig(adapter=True, prefix=True, lora=True, gated=True, **SIZES)
    t = OrderedDict()
    for name, shape in ref.pelt_param_shapes(cfg, full).items():
        if name.endswith("prefix_enc_embed.weight"):
            t[name] = _randn(gen, shape, 0.5)
        elif "gate" in name and name.endswith("bias"):
            t[name] = _randn(gen, shape, 0.5)  # nonzero gate biases
        elif name.endswith("bias"):
            t[name] = _randn(gen, shape, 0.1)
        else:
            t[name] = _randn(gen, shape, 0.2)
    cls = {}
    H = cfg.hidden_size
    for task, n in TASKS.items():
        cls[task] = OrderedDict([("classifier.weight", _randn(gen, (n, H), 0.3)),
                                 ("classifier.bias", _randn(gen, (n,), 0.1))])
    return t, cls


def case_flags(method, pool, num_labels):
    return (["--method", method, "--gate-pool", pool, "--num-labels", str(num_labels),
             "--dtype", "f64", "--seed", "0"] + SIZE_FLAGS)


def generate(root):
    """Write every fixture under `root` (the tests/fixtures directory)."""
    fx = lambda *p: os.path.join(root, *p)  # noqa: E731
    rel = lambda *p: "/".join((FIXTURES_REL,) + p)  # noqa: E731
    for d in ("tiny-bert", "pelt", "expected"):
        os.makedirs(fx(d), exist_ok=True)

    # --- model dir
    with open(fx("tiny-bert", "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    cfg = ref.BertConfig.from_json(fx("tiny-bert", "config.json"))
    weights = make_model_weights(cfg)
    safetensors_io.write(fx("tiny-bert", "model.safetensors"),
                         OrderedDict((k, v.numpy()) for k, v in weights.items()),
                         metadata={"format": "pt"})

    # --- batches
    for task, b in make_batches().items():
        safetensors_io.write(fx(f"batch-{task}.safetensors"), b)

    # --- init files and expected outputs
    master, classifiers = make_master_pelt(cfg)
    cases = []
    for method in ref.PRESETS:
        pcfg = ref.make_pelt_config(method, **SIZES)
        names = list(ref.pelt_param_shapes(cfg, pcfg))
        for task, n in TASKS.items():
            init = OrderedDict((k, master[k].numpy()) for k in names)
            init.update((k, v.numpy()) for k, v in classifiers[task].items())
            safetensors_io.write(fx("pelt", f"{method}-{task}.safetensors"), init,
                                 metadata={"method": method, "task": task})
            for pool in POOLS:
                name = f"{method}-{pool}-{task}"
                flags = case_flags(method, pool, n)
                files = ["--model", rel("tiny-bert"), "--batch", rel(f"batch-{task}.safetensors"),
                         "--init", rel("pelt", f"{method}-{task}.safetensors")]
                argv = ["--model", fx("tiny-bert"), "--batch", fx(f"batch-{task}.safetensors"),
                        "--init", fx("pelt", f"{method}-{task}.safetensors"),
                        "--out", fx("expected", name + ".safetensors")] + flags
                out = ref.run(ref.build_argparser().parse_args(argv))
                cases.append(OrderedDict([
                    ("name", name),
                    ("method", method),
                    ("gate_pool", pool),
                    ("task", "classification" if task == "cls" else "regression"),
                    ("num_labels", n),
                    ("model", rel("tiny-bert")),
                    ("batch", rel(f"batch-{task}.safetensors")),
                    ("init", rel("pelt", f"{method}-{task}.safetensors")),
                    ("expected", rel("expected", name + ".safetensors")),
                    ("flags", flags),
                    ("command", " ".join(["unipelt", "grads"] + files +
                                         ["--out", "OUT.safetensors"] + flags)),
                    ("gates", [k[len("gate/"):] for k in out if k.startswith("gate/")]),
                    ("trainable", [k[len("grad/"):] for k in out if k.startswith("grad/")]),
                    ("loss", float(out["loss"][0])),
                ]))

    manifest = OrderedDict([
        ("description", "UniPELT parity fixtures; generated by tests/reference/make_fixtures.py"),
        ("paths_relative_to", "repository root"),
        ("size_flags", SIZE_FLAGS),
        ("expected_dtype", "F64"),
        ("tolerance", OrderedDict([
            ("f64", {"rtol": 1e-9, "atol": 1e-12}),
            ("f32", {"rtol": 1e-3, "atol": 1e-5}),
        ])),
        ("compare", "every tensor in the expected file must be present in OUT with the same "
                    "shape and match within tolerance (|a-e| <= atol + rtol*|e|); OUT must hold "
                    "no other grad/* or gate/* tensors"),
        ("cases", cases),
    ])
    with open(fx("cases.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return cases


def check():
    """Regenerate into a temp dir and compare byte-for-byte with the committed files."""
    committed = os.path.join(REPO, FIXTURES_REL)
    tmp = tempfile.mkdtemp(prefix="unipelt-fixtures-")
    try:
        generate(tmp)
        bad = []
        for dirpath, _, files in os.walk(tmp):
            for fn in files:
                new = os.path.join(dirpath, fn)
                old = os.path.join(committed, os.path.relpath(new, tmp))
                if not os.path.exists(old) or not filecmp.cmp(new, old, shallow=False):
                    bad.append(os.path.relpath(new, tmp))
        if bad:
            print("fixtures differ from a fresh generation:", *sorted(bad), sep="\n  ")
            return 1
        print("fixtures reproduce byte-for-byte")
        return 0
    finally:
        shutil.rmtree(tmp)


def main():
    ap = argparse.ArgumentParser(description="generate UniPELT parity fixtures")
    ap.add_argument("--check", action="store_true", help="verify instead of writing")
    ap.add_argument("--out-dir", default=os.path.join(REPO, FIXTURES_REL))
    args = ap.parse_args()
    if args.check:
        sys.exit(check())
    cases = generate(args.out_dir)
    print(f"wrote {len(cases)} cases under {args.out_dir}")


if __name__ == "__main__":
    main()
