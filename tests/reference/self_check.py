#!/usr/bin/env python3
"""Self-checks of the PyTorch reference and of the committed fixtures.

    /usr/bin/python3 tests/reference/self_check.py [--quick]

Exits non-zero on the first failing group. Checks:
  1. safetensors_io round-trip (dtypes, metadata, 8-byte alignment).
  2. checkpoint name normalisation (BertModel names, gamma/beta, cls.* dropped).
  3. the BERT trunk against torch.nn.TransformerEncoderLayer (an independent
     implementation of the same post-LN block).
  4. every preset x pooling against a naive per-example, per-token loop
     implementation (explicit prefix feature-index formula, explicit masking).
  5. torch.autograd.gradcheck of loss/logits/gates w.r.t. all trainable
     parameters for several presets (float64).
  6. behaviours: LoRA with B=0 and adapter with up=0 leave logits unchanged;
     masked pooling is invariant to extra padding (and `all` is not).
  7. fixtures: committed expected files equal a recomputation, agree with
     central finite differences on sampled coordinates, hold exactly the
     trainable set, are reproduced byte-for-byte by make_fixtures.py, and the
     f32 reference stays within the manifest's f32 tolerance.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import OrderedDict

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_fixtures as mf  # noqa: E402
import safetensors_io  # noqa: E402
import unipelt_reference as ref  # noqa: E402

REPO = mf.REPO
FIX = os.path.join(REPO, mf.FIXTURES_REL)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def close(a, b, msg, atol=1e-12, rtol=1e-10):
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    check(a.shape == b.shape, f"{msg}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
    err = (a - b).abs().max().item() if a.numel() else 0.0
    check(torch.allclose(a, b, atol=atol, rtol=rtol), f"{msg}: max abs err {err:.3e}")


def tiny_setup(method, pool="masked", task="cls"):
    """(cfg, pcfg, params, batch, num_labels) for a preset on the committed fixtures."""
    cfg, weights = ref.load_model_dir(os.path.join(FIX, "tiny-bert"))
    n = mf.TASKS[task]
    raw, _ = safetensors_io.read(os.path.join(FIX, "pelt", f"{method}-{task}.safetensors"))
    init = {k: torch.from_numpy(v) for k, v in raw.items()}
    pcfg = ref.make_pelt_config(method, gate_pool=pool, **mf.SIZES)
    params = ref.build_params(cfg, pcfg, weights, init, n, 0, torch.float64)
    batch = ref.load_batch(os.path.join(FIX, f"batch-{task}.safetensors"))
    return cfg, pcfg, params, batch, n


# ---------------------------------------------------------------------------
# 1. safetensors
# ---------------------------------------------------------------------------


def check_safetensors():
    rng = np.random.default_rng(0)
    t = OrderedDict([
        ("a", rng.standard_normal((3, 5))),
        ("b", rng.standard_normal((7,)).astype(np.float32)),
        ("c", rng.integers(-9, 9, (2, 2, 2)).astype(np.int64)),
        ("d", rng.integers(-9, 9, (1,)).astype(np.int32)),
        ("scalar", np.array(2.5)),
        ("empty", np.zeros((0, 4), dtype=np.float32)),
    ])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.safetensors")
        safetensors_io.write(path, t, metadata={"k": "v"})
        raw = open(path, "rb").read()
        n = int.from_bytes(raw[:8], "little")
        check((8 + n) % 8 == 0, "header not padded to 8 bytes")
        back, meta = safetensors_io.read(path)
        check(meta == {"k": "v"}, "metadata round trip")
        check(list(back) == list(t), "tensor order round trip")
        for k in t:
            check(back[k].dtype == t[k].dtype and back[k].shape == t[k].shape, f"{k} dtype/shape")
            check(np.array_equal(back[k], t[k]), f"{k} values")


# ---------------------------------------------------------------------------
# 2. name normalisation
# ---------------------------------------------------------------------------


def check_normalisation():
    _, weights = ref.load_model_dir(os.path.join(FIX, "tiny-bert"))
    legacy = OrderedDict()
    for k, v in weights.items():
        k2 = k[len("bert."):]                    # BertModel names
        if k2.endswith("LayerNorm.weight"):
            k2 = k2[: -len("weight")] + "gamma"  # legacy TF-era names
        elif k2.endswith("LayerNorm.bias"):
            k2 = k2[: -len("bias")] + "beta"
        legacy[k2] = v.numpy()
    legacy["cls.predictions.bias"] = np.zeros(50)   # pre-training head: ignored
    legacy["embeddings.position_ids"] = np.arange(32, dtype=np.int64)[None]
    with tempfile.TemporaryDirectory() as d:
        os.symlink(os.path.join(FIX, "tiny-bert", "config.json"), os.path.join(d, "config.json"))
        safetensors_io.write(os.path.join(d, "model.safetensors"), legacy)
        _, w2 = ref.load_model_dir(d)
    check(list(w2) == list(weights), "normalised names differ")
    for k in weights:
        check(torch.equal(w2[k], weights[k]), f"{k} differs after normalisation")


# ---------------------------------------------------------------------------
# 3. BERT trunk vs torch.nn
# ---------------------------------------------------------------------------


def nn_bert_logits(cfg, p, batch):
    """BertForSequenceClassification from torch.nn building blocks."""
    H, nl = cfg.hidden_size, cfg.num_hidden_layers
    dt = torch.float64
    ids, tt, mask = batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]
    T = ids.shape[1]
    e = "bert.embeddings."
    emb = (torch.nn.functional.embedding(ids, p[e + "word_embeddings.weight"])
           + p[e + "position_embeddings.weight"][:T][None]
           + torch.nn.functional.embedding(tt, p[e + "token_type_embeddings.weight"]))
    h = torch.nn.functional.layer_norm(emb, (H,), p[e + "LayerNorm.weight"],
                                       p[e + "LayerNorm.bias"], cfg.layer_norm_eps)
    for i in range(nl):
        pre = f"bert.encoder.layer.{i}."
        layer = torch.nn.TransformerEncoderLayer(
            H, cfg.num_attention_heads, cfg.intermediate_size, dropout=0.0, activation="gelu",
            layer_norm_eps=cfg.layer_norm_eps, batch_first=True, norm_first=False, dtype=dt)
        layer.eval()
        sd = {
            "self_attn.in_proj_weight": torch.cat([p[pre + f"attention.self.{n}.weight"]
                                                   for n in ("query", "key", "value")]),
            "self_attn.in_proj_bias": torch.cat([p[pre + f"attention.self.{n}.bias"]
                                                 for n in ("query", "key", "value")]),
            "self_attn.out_proj.weight": p[pre + "attention.output.dense.weight"],
            "self_attn.out_proj.bias": p[pre + "attention.output.dense.bias"],
            "norm1.weight": p[pre + "attention.output.LayerNorm.weight"],
            "norm1.bias": p[pre + "attention.output.LayerNorm.bias"],
            "linear1.weight": p[pre + "intermediate.dense.weight"],
            "linear1.bias": p[pre + "intermediate.dense.bias"],
            "linear2.weight": p[pre + "output.dense.weight"],
            "linear2.bias": p[pre + "output.dense.bias"],
            "norm2.weight": p[pre + "output.LayerNorm.weight"],
            "norm2.bias": p[pre + "output.LayerNorm.bias"],
        }
        layer.load_state_dict(sd)
        h = layer(h, src_key_padding_mask=(mask == 0))  # -inf masking; exp(-1e4) == 0 in f64
    pooled = torch.tanh(torch.nn.functional.linear(h[:, 0], p["bert.pooler.dense.weight"],
                                                   p["bert.pooler.dense.bias"]))
    return torch.nn.functional.linear(pooled, p["classifier.weight"], p["classifier.bias"])


def check_trunk():
    with torch.no_grad():
        for task in ("cls", "reg"):
            cfg, pcfg, p, batch, _ = tiny_setup("finetune", task=task)
            ours = ref.forward(p, cfg, pcfg, batch)["logits"]
            theirs = nn_bert_logits(cfg, p, batch)
            close(ours, theirs, f"trunk vs torch.nn ({task})")


# ---------------------------------------------------------------------------
# 4. naive per-token implementation
# ---------------------------------------------------------------------------


def naive_forward(p, cfg, pcfg, batch):
    """Loop-level re-implementation: one example, one token, one head at a time.
    Masked keys are skipped (not added -10000); prefix rows are read with the
    documented feature-index formula."""
    H, nl, nh, dh = cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.head_dim
    eps = cfg.layer_norm_eps
    ids, tt = batch["input_ids"].tolist(), batch["token_type_ids"].tolist()
    mask, labels = batch["attention_mask"].tolist(), batch["labels"].tolist()
    B, T = len(ids), len(ids[0])

    def lin(name, x):
        return p[name + ".weight"] @ x + p[name + ".bias"]

    def ln(x, name):
        mu = sum(x.tolist()) / H
        var = sum((v - mu) ** 2 for v in x.tolist()) / H
        return (x - mu) / math.sqrt(var + eps) * p[name + ".weight"] + p[name + ".bias"]

    def gelu(x):
        return torch.tensor([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.tolist()],
                            dtype=torch.float64)

    def sigmoid(v):
        return 1.0 / (1.0 + math.exp(-v))

    # prefix MLP output rows, and accessor by (layer, kv, head, position)
    if pcfg.prefix:
        E = p["bert.encoder.prefix_enc_embed.weight"]
        O = [lin("bert.encoder.prefix_embed_MLP.2",
                 torch.tanh(lin("bert.encoder.prefix_embed_MLP.0", E[l])))
             for l in range(pcfg.prefix_len)]

        def pref(layer, kv, head, l):
            start = ((2 * layer + kv) * nh + head) * dh
            return O[l][start:start + dh]

    logits_all, gates = [], OrderedDict()
    for b in range(B):
        real = [t for t in range(T) if mask[b][t] == 1]
        pooled_pos = real if pcfg.gate_pool == "masked" else list(range(T))

        def gate(name, xs):
            w, c = p[name + ".weight"][0], p[name + ".bias"][0]
            return sum(sigmoid(float(w @ xs[t] + c)) for t in pooled_pos) / len(pooled_pos)

        e = "bert.embeddings."
        hs = [ln(p[e + "word_embeddings.weight"][ids[b][t]] + p[e + "position_embeddings.weight"][t]
                 + p[e + "token_type_embeddings.weight"][tt[b][t]], e + "LayerNorm")
              for t in range(T)]
        for i in range(nl):
            pre, sa = f"bert.encoder.layer.{i}.", f"bert.encoder.layer.{i}.attention.self."
            g = {}
            if pcfg.lora:
                if pcfg.gated:
                    g["lora_query"] = gate(sa + "query.lora_gate", hs)
                    g["lora_value"] = gate(sa + "value.lora_gate", hs)
                    sq, sv = g["lora_query"], g["lora_value"]
                else:
                    sq = sv = pcfg.lora_alpha / pcfg.lora_r
            if pcfg.prefix:
                g["prefix"] = gate(sa + "prefix_gate", hs) if pcfg.gated else 1.0
            qs, ks, vs = [], [], []
            for t in range(T):
                x = hs[t]
                q, k, v = lin(sa + "query", x), lin(sa + "key", x), lin(sa + "value", x)
                if pcfg.lora:
                    q = q + sq * (p[sa + "query.lora_B"] @ (p[sa + "query.lora_A"] @ x))
                    v = v + sv * (p[sa + "value.lora_B"] @ (p[sa + "value.lora_A"] @ x))
                qs.append(q), ks.append(k), vs.append(v)
            new = []
            for t in range(T):
                ctx = []
                for hd in range(nh):
                    sl = slice(hd * dh, (hd + 1) * dh)
                    keys, vals = [], []
                    if pcfg.prefix:
                        for l in range(pcfg.prefix_len):
                            keys.append(g["prefix"] * pref(i, 0, hd, l))
                            vals.append(g["prefix"] * pref(i, 1, hd, l))
                    for s in real:
                        keys.append(ks[s][sl]), vals.append(vs[s][sl])
                    sc = [float(qs[t][sl] @ kk) / math.sqrt(dh) for kk in keys]
                    mx = max(sc)
                    ex = [math.exp(z - mx) for z in sc]
                    tot = sum(ex)
                    ctx.append(sum((w / tot) * vv for w, vv in zip(ex, vals)))
                ctx = torch.cat(ctx)
                a = ln(lin(pre + "attention.output.dense", ctx) + hs[t], pre + "attention.output.LayerNorm")
                f = lin(pre + "output.dense", gelu(lin(pre + "intermediate.dense", a)))
                new.append((a, f))
            if pcfg.adapter:
                xa = [ln(f + a, pre + "output.LayerNorm") for a, f in new]
                if pcfg.gated:
                    g["adapter"] = gate(pre + "output.adapter.gate", xa)
                gA = g.get("adapter", 1.0)
                hs = [ln(gA * lin(pre + "output.adapter.up",
                                  torch.relu(lin(pre + "output.adapter.down", xa[t]))) + f + a,
                         pre + "output.LayerNorm") for t, (a, f) in enumerate(new)]
            else:
                hs = [ln(f + a, pre + "output.LayerNorm") for a, f in new]
            if pcfg.gated:
                for k, v in g.items():
                    gates.setdefault(f"layer.{i}.{k}", [0.0] * B)[b] = v
        pooled = torch.tanh(lin("bert.pooler.dense", hs[0]))
        logits_all.append(lin("classifier", pooled))
    logits = torch.stack(logits_all)
    if logits.shape[1] == 1:
        loss = sum((float(logits[b, 0]) - labels[b]) ** 2 for b in range(B)) / B
    else:
        loss = 0.0
        for b in range(B):
            zs = logits[b].tolist()
            loss -= zs[labels[b]] - math.log(sum(math.exp(z) for z in zs))
        loss /= B
    return logits, loss, {k: torch.tensor(v, dtype=torch.float64) for k, v in gates.items()}


def check_naive():
    with torch.no_grad():
        for method in ref.PRESETS:
            for pool in mf.POOLS:
                for task in mf.TASKS:
                    cfg, pcfg, p, batch, _ = tiny_setup(method, pool, task)
                    r = ref.forward(p, cfg, pcfg, batch)
                    logits, loss, gates = naive_forward(p, cfg, pcfg, batch)
                    tag = f"naive {method}-{pool}-{task}"
                    close(r["logits"], logits, tag + " logits")
                    close(r["loss"], loss, tag + " loss")
                    check(set(r["gates"]) == set(gates), tag + " gate keys")
                    for k in gates:
                        close(r["gates"][k], gates[k], f"{tag} gate {k}")


# ---------------------------------------------------------------------------
# 5. gradcheck
# ---------------------------------------------------------------------------


def run_gradcheck(method, pool, task):
    cfg, pcfg, params, batch, n = tiny_setup(method, pool, task)
    names = ref.trainable_names(cfg, pcfg, n)

    def fn(*tensors):
        p = OrderedDict(params)
        p.update(zip(names, tensors))
        r = ref.forward(p, cfg, pcfg, batch)
        return (r["loss"], r["logits"]) + tuple(r["gates"].values())

    inputs = tuple(params[k].clone().requires_grad_(True) for k in names)
    ok = torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
    check(ok, f"gradcheck {method}-{pool}-{task}")


def check_gradcheck(quick):
    cases = [("unipelt-apl", "masked", "cls"), ("unipelt-apl", "all", "reg"),
             ("prefix", "masked", "reg"), ("adapter", "all", "cls"), ("lora", "masked", "cls"),
             ("unipelt-nogate", "masked", "reg"), ("bitfit", "masked", "cls")]
    if not quick:
        cases += [("unipelt-ap", "all", "cls"), ("finetune", "masked", "cls")]
    for c in cases:
        run_gradcheck(*c)


# ---------------------------------------------------------------------------
# 6. behaviours
# ---------------------------------------------------------------------------


def check_behaviours():
    with torch.no_grad():
        for task in mf.TASKS:
            cfg, pcfg0, base, batch, _ = tiny_setup("finetune", task=task)
            base_logits = ref.forward(base, cfg, pcfg0, batch)["logits"]

            # LoRA with B = 0 is the identity (ungated and gated)
            cfg, pcfg, p, batch, _ = tiny_setup("lora", task=task)
            for k in p:
                if k.endswith("lora_B"):
                    p[k] = torch.zeros_like(p[k])
            close(ref.forward(p, cfg, pcfg, batch)["logits"], base_logits, "lora B=0")
            cfg, pcfg, p, batch, _ = tiny_setup("unipelt-apl", task=task)
            cfg, pcfg_ap, p_ap, _, _ = tiny_setup("unipelt-ap", task=task)
            for k in p:
                if k.endswith("lora_B"):
                    p[k] = torch.zeros_like(p[k])
            r, r_ap = ref.forward(p, cfg, pcfg, batch), ref.forward(p_ap, cfg, pcfg_ap, batch)
            close(r["logits"], r_ap["logits"], "apl with lora B=0 == ap")
            for k, v in r_ap["gates"].items():
                close(r["gates"][k], v, f"apl with lora B=0 gate {k}")

            # adapter with up = 0 (weight and bias) is the identity
            cfg, pcfg, p, batch, _ = tiny_setup("adapter", task=task)
            for k in p:
                if ".adapter.up." in k:
                    p[k] = torch.zeros_like(p[k])
            close(ref.forward(p, cfg, pcfg, batch)["logits"], base_logits, "adapter up=0")

            # a nonzero adapter / lora / prefix does change the output
            for m in ("adapter", "lora", "prefix"):
                cfg, pcfg, p, batch, _ = tiny_setup(m, task=task)
                d = (ref.forward(p, cfg, pcfg, batch)["logits"] - base_logits).abs().max()
                check(d > 1e-3, f"{m} has no effect on logits")

    # masked pooling is invariant to extra padding; `all` pooling is not
    for method in ref.PRESETS:
        for pool in mf.POOLS:
            cfg, pcfg, p, batch, n = tiny_setup(method, pool, "cls")
            padded = dict(batch)
            extra = 4
            for k in ("input_ids", "token_type_ids", "attention_mask"):
                padded[k] = torch.cat([batch[k], torch.zeros(batch[k].shape[0], extra,
                                                             dtype=batch[k].dtype)], dim=1)
            a = ref.compute_grads(p, cfg, pcfg, batch, n)
            b = ref.compute_grads(p, cfg, pcfg, padded, n)
            check(list(a) == list(b), "padding changed the output keys")
            diffs = {k: (a[k] - b[k]).abs().max().item() for k in a}
            if pool == "masked" or not pcfg.gated:
                for k, d in diffs.items():
                    check(d < 1e-12, f"padding invariance {method}-{pool}: {k} diff {d:.3e}")
            else:
                check(max(diffs.values()) > 1e-6, f"`all` pooling unexpectedly padding-invariant ({method})")


# ---------------------------------------------------------------------------
# 7. fixtures
# ---------------------------------------------------------------------------


def check_fixtures(quick):
    man = json.load(open(os.path.join(FIX, "cases.json")))
    tol32 = man["tolerance"]["f32"]
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(FIX) for f in fs)
    check(total < 2_000_000, f"fixtures total {total} bytes >= 2 MB")
    gen = torch.Generator().manual_seed(7)
    for c in man["cases"]:
        tag = c["name"]
        exp, meta = safetensors_io.read(os.path.join(REPO, c["expected"]))
        check(meta.get("method") == c["method"], tag + " metadata")
        task = "cls" if c["task"] == "classification" else "reg"
        cfg, pcfg, p, batch, n = tiny_setup(c["method"], c["gate_pool"], task)
        check(n == c["num_labels"], tag + " num_labels")
        names = ref.trainable_names(cfg, pcfg, n)
        check([k for k in exp if k.startswith("grad/")] == ["grad/" + k for k in names],
              tag + " grad set != trainable set")
        check(all(v.dtype == np.float64 for v in exp.values()), tag + " not F64")
        out = ref.compute_grads(p, cfg, pcfg, batch, n)
        check(list(out) == list(exp), tag + " key set")
        for k in exp:
            close(out[k], exp[k], f"{tag} {k}", atol=0, rtol=0)
            if k.startswith("grad/"):
                check(np.abs(exp[k]).max() > 0, f"{tag} {k} is all zero")
            if k.startswith("gate/"):
                check(((exp[k] > 0) & (exp[k] < 1)).all(), f"{tag} {k} outside (0,1)")

        # central finite differences on a few sampled coordinates
        samples = 2 if quick else 6
        for _ in range(samples):
            k = names[int(torch.randint(len(names), (1,), generator=gen))]
            idx = int(torch.randint(p[k].numel(), (1,), generator=gen))
            h = 1e-6
            vals = []
            for sgn in (1, -1):
                q = OrderedDict(p)
                q[k] = p[k].clone()
                q[k].view(-1)[idx] += sgn * h
                with torch.no_grad():
                    vals.append(ref.forward(q, cfg, pcfg, batch)["loss"].item())
            fd = (vals[0] - vals[1]) / (2 * h)
            an = exp["grad/" + k].reshape(-1)[idx]
            check(abs(fd - an) <= 1e-7 + 1e-5 * abs(an), f"{tag} FD {k}[{idx}] {fd} vs {an}")

        # f32 reference within the manifest tolerance of the f64 fixture
        p32 = OrderedDict((k, v.float()) for k, v in p.items())
        out32 = ref.compute_grads(p32, cfg, pcfg, batch, n)
        for k in exp:
            close(out32[k], exp[k], f"{tag} f32 {k}", atol=tol32["atol"], rtol=tol32["rtol"])

    r = subprocess.run([sys.executable, os.path.join(HERE, "make_fixtures.py"), "--check"],
                       capture_output=True, text=True)
    check(r.returncode == 0, "make_fixtures.py --check failed:\n" + r.stdout + r.stderr)

    # the CLI entry point writes the same file as the fixture
    c = man["cases"][-1]
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.safetensors")
        argv = ["grads", "--model", os.path.join(REPO, c["model"]),
                "--batch", os.path.join(REPO, c["batch"]), "--init", os.path.join(REPO, c["init"]),
                "--out", out] + c["flags"]
        r = subprocess.run([sys.executable, os.path.join(HERE, "unipelt_reference.py")] + argv,
                           capture_output=True, text=True)
        check(r.returncode == 0, "CLI failed: " + r.stderr)
        check(open(out, "rb").read() == open(os.path.join(REPO, c["expected"]), "rb").read(),
              "CLI output differs from fixture")


# ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer gradcheck / FD samples")
    args = ap.parse_args()
    torch.set_num_threads(1)
    groups = [
        ("safetensors round trip", check_safetensors),
        ("checkpoint name normalisation", check_normalisation),
        ("BERT trunk vs torch.nn.TransformerEncoderLayer", check_trunk),
        ("all presets vs naive loop implementation", check_naive),
        ("torch.autograd.gradcheck", lambda: check_gradcheck(args.quick)),
        ("behaviours (LoRA B=0, adapter up=0, padding invariance)", check_behaviours),
        ("committed fixtures", lambda: check_fixtures(args.quick)),
    ]
    failed = 0
    for name, fn in groups:
        try:
            fn()
            print(f"PASS  {name}")
        except AssertionError as e:
            failed += 1
            print(f"FAIL  {name}: {e}")
    print("all checks passed" if not failed else f"{failed} group(s) failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
