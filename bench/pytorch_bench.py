#!/usr/bin/python3
"""The `bench` program's measurements, in PyTorch (Debian's python3-torch 1.13, eager mode, CPU).

    /usr/bin/python3 bench/pytorch_bench.py ops   [--threads N] [--reps R] [--clock wall|cpu] [--json F]
    /usr/bin/python3 bench/pytorch_bench.py train [--model DIR | --synthetic SIZE] [--threads N]
                                                  [--methods a,b] [--batch 16] [--seq-len 128]
                                                  [--warmup 3] [--steps 10] [--no-dropout]
                                                  [--breakdown] [--impl fast|reference] [--json F]
    /usr/bin/python3 bench/pytorch_bench.py epoch --batches F [--pad 128|batch] [--methods a,b] [--threads N]
                                                  (bench/pytorch_epoch.py: one epoch of `bench epoch`'s batches)

train: the same training step as `bench train` (train/trainer.cpp): zero_grad (set to None),
forward with dropout, loss.item(), backward, clip_grad_norm_(1.0), AdamW (betas 0.9/0.999, eps 1e-8,
weight decay 0) over the same trainable set, on a batch of B x T real tokens with random ids.
The model is the same safetensors checkpoint, loaded through tests/reference/unipelt_reference.py
(parameter names, shapes, presets and trainable sets come from there) in float32. The forward is the
reference's math written with PyTorch's fused eager kernels (F.linear = one addmm, F.layer_norm,
F.gelu, F.softmax, F.dropout), i.e. what an idiomatic PyTorch BERT runs; `--impl reference` runs the
reference's own forward instead (plain tensor expressions, no dropout).

Peak memory: PyTorch has no CPU allocator statistics, so one extra (untimed) step runs under the
profiler with profile_memory=True; the peak is the persistent tensors (parameters, optimizer state,
batch) plus the highest running sum of the allocations and frees recorded during that step.

ops: F.linear (trainable and frozen weight), softmax of scores + mask (two PyTorch ops; the C++ op
fuses the mask), F.layer_norm, F.gelu, with backward via y.backward(dy); same shapes and work counts
as `bench ops`. The sgemm peak is torch.mm of two 2048x2048 matrices (the same OpenBLAS library).
"""

import argparse
import contextlib
import ctypes
import io
import json
import math
import os
import platform
import statistics
import sys
import time
from collections import OrderedDict

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import unipelt_reference as ur  # noqa: E402
import pytorch_epoch  # noqa: E402  (the epoch subcommand)

PRESETS = list(ur.PRESETS)
SYNTHETIC = {"tiny": (128, 2, 2), "mini": (256, 4, 4), "small": (512, 4, 8), "medium": (512, 8, 8),
             "base": (768, 12, 12)}


# ---------------------------------------------------------------------------
# Environment description
# ---------------------------------------------------------------------------


def cpu_description():
    model, family, number, flags = "unknown CPU", "?", "?", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and model == "unknown CPU":
                    model = value
                elif key == "cpu family" and family == "?":
                    family = value
                elif key == "model" and number == "?":
                    number = value
                elif key == "flags" and not flags:
                    flags = " " + value + " "
    except OSError:
        pass
    isa = "AVX-512" if " avx512f " in flags else "AVX2" if " avx2 " in flags else "no AVX2"
    return f"{model} (family {family} model {number}, {isa}), {os.cpu_count()} online CPUs"


BLAS_THREADS = []  # (library, threads) as set by set_blas_threads


def set_blas_threads(n):
    """Give every loaded OpenBLAS `n` threads, as `bench --threads n` does (openblas_set_num_threads).

    torch.set_num_threads sets ATen's OpenMP pool only. Debian's torch calls sgemm through
    libblas.so.3, which is a complete OpenBLAS with its own thread pool (one per CPU by default): without
    this, a "1 thread" PyTorch run multiplies matrices on every core.
    """
    with open("/proc/self/maps") as maps:
        paths = sorted({line.split()[-1] for line in maps if "blas" in line and line.split()[-1].startswith("/")})
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_set_num_threads(ctypes.c_int(n))
            BLAS_THREADS.append((os.path.basename(path), lib.openblas_get_num_threads()))
        except (OSError, AttributeError):
            continue


def torch_description():
    blas = os.environ.get("OPENBLAS_CORETYPE")
    blas_threads = ", ".join(f"{name} {n}" for name, n in BLAS_THREADS) or "none found"
    return (f"torch {torch.__version__} ({torch.get_num_threads()} threads; OpenBLAS threads: {blas_threads}; "
            f"python {platform.python_version()}" + (f", OPENBLAS_CORETYPE={blas}" if blas else "") + ")")


def summarize(samples):
    s = sorted(samples)
    return {"best": s[0], "median": statistics.median(s), "mean": sum(s) / len(s), "n": len(s)}


# ---------------------------------------------------------------------------
# ops
# ---------------------------------------------------------------------------


CLOCK = time.perf_counter  # --clock cpu: time.process_time (process CPU time, all threads)


def time_op(forward, inputs, reps, warmup):
    """Forward (recording autograd, as in training) and backward of one op, timed separately."""
    fwd, bwd = [], []
    dy = None
    for r in range(warmup + reps):
        for t in inputs:
            t.grad = None
        t0 = CLOCK()
        y = forward()
        t1 = CLOCK()
        if dy is None:
            g = torch.Generator().manual_seed(99)
            dy = torch.rand(y.shape, generator=g) * 2 - 1
        t2 = CLOCK()
        y.backward(dy)
        t3 = CLOCK()
        if r >= warmup:
            fwd.append(t1 - t0)
            bwd.append(t3 - t2)
    for t in inputs:
        t.grad = None
    return summarize(fwd), summarize(bwd)


def rand(shape, seed, requires_grad):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) * 2 - 1).requires_grad_(requires_grad)


def time_mm(m, n, k, trans_b, reps, warmup):
    a = rand((m, k), 1, False)
    b = rand((n, k) if trans_b else (k, n), 2, False)
    bt = b.t() if trans_b else b
    times = []
    with torch.no_grad():
        for r in range(warmup + reps):
            t0 = CLOCK()
            torch.mm(a, bt)
            t1 = CLOCK()
            if r >= warmup:
                times.append(t1 - t0)
    return summarize(times)


def run_ops(args):
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    reps, warmup = args.reps, args.warmup
    print("pytorch_bench ops: float32, CPU")
    print(f"  cpu:      {cpu_description()}")
    print(f"  torch:    {torch_description()}")
    print(f"  timing:   {reps} repetitions after {warmup} warm-up; times are median / best, rates use the best; "
          f"clock: {'process CPU time' if args.clock == 'cpu' else 'wall'}")
    n = args.peak_size
    peak = time_mm(n, n, n, False, max(reps, 3), 1)
    peak_gflops = 2 * n ** 3 / peak["best"] / 1e9
    print(f"  peak:     torch.mm {n}^3: {peak_gflops:.1f} GFLOP/s (best of {peak['n']}; median "
          f"{2 * n ** 3 / peak['median'] / 1e9:.1f})\n")

    cases = []
    rows = 16 * 128
    for out in (768, 3072):
        for frozen in (False, True):
            x = rand((rows, 768), 1, True)
            w = rand((out, 768), 2, not frozen)
            b = rand((out,), 3, not frozen)
            gemm = 2.0 * rows * out * 768
            xb, yb, wb = 4.0 * rows * 768, 4.0 * rows * out, 4.0 * out * 768
            f, bw = time_op(lambda: F.linear(x, w, b), [x, w, b], reps, warmup)
            cases.append({"op": f"linear 768->{out}" + (" (frozen W,b)" if frozen else ""),
                          "shape": f"x[{rows},768] W[{out},768]", "fwd": f, "bwd": bw, "frozen": frozen,
                          "fwd_flops": gemm, "bwd_flops": gemm if frozen else 2 * gemm,
                          "fwd_bytes": xb + wb + yb,
                          "bwd_bytes": (yb + wb + xb) if frozen else 2 * (yb + xb + wb),
                          "raw": time_mm(rows, out, 768, True, reps, warmup)})
    B, H, T = 16, 12, 128
    x = rand((B, H, T, T), 4, True)
    mask = torch.zeros(B, T)
    for bi in range(B):
        if bi:
            mask[bi, T - bi * 4:] = -10000.0
    ne = float(B * H * T * T)
    f, bw = time_op(lambda: F.softmax(x + mask[:, None, None, :], dim=-1), [x], reps, warmup)
    cases.append({"op": "softmax + mask", "shape": "x[16,12,128,128] mask[16,128]", "fwd": f, "bwd": bw,
                  "fwd_flops": 5 * ne, "bwd_flops": 4 * ne, "fwd_bytes": 8 * ne + 4.0 * B * T, "bwd_bytes": 12 * ne})
    for trainable in (True, False):
        x = rand((16, 128, 768), 5, True)
        g = rand((768,), 6, trainable)
        be = rand((768,), 7, trainable)
        ne = 16.0 * 128 * 768
        f, bw = time_op(lambda: F.layer_norm(x, (768,), g, be, 1e-12), [x, g, be], reps, warmup)
        cases.append({"op": "layer_norm" + ("" if trainable else " (frozen g,b)"), "shape": "x[16,128,768]",
                      "fwd": f, "bwd": bw, "fwd_flops": 8 * ne, "bwd_flops": (16 if trainable else 13) * ne,
                      "fwd_bytes": 8 * ne, "bwd_bytes": 12 * ne})
    x = rand((16, 128, 3072), 8, True)
    ne = 16.0 * 128 * 3072
    f, bw = time_op(lambda: F.gelu(x), [x], reps, warmup)
    cases.append({"op": "gelu (erf)", "shape": "x[16,128,3072]", "fwd": f, "bwd": bw, "fwd_flops": 4 * ne,
                  "bwd_flops": 9 * ne, "fwd_bytes": 8 * ne, "bwd_bytes": 12 * ne})

    print(f"{'op':<29} {'shape':<30} {'fwd ms (med/best)':>17} {'GFLOP/s':>8} {'GB/s':>7} {'%peak':>6} "
          f"{'bwd ms (med/best)':>17} {'GFLOP/s':>8} {'GB/s':>7} {'%peak':>6}")
    for c in cases:
        fg = c["fwd_flops"] / c["fwd"]["best"] / 1e9
        bg = c["bwd_flops"] / c["bwd"]["best"] / 1e9
        pct = (lambda g: f"{100 * g / peak_gflops:5.0f}%") if "raw" in c else (lambda g: "     -")
        print(f"{c['op']:<29} {c['shape']:<30} {c['fwd']['median'] * 1e3:8.3f}/{c['fwd']['best'] * 1e3:8.3f} "
              f"{fg:8.1f} {c['fwd_bytes'] / c['fwd']['best'] / 1e9:7.1f} {pct(fg)} "
              f"{c['bwd']['median'] * 1e3:8.3f}/{c['bwd']['best'] * 1e3:8.3f} {bg:8.1f} "
              f"{c['bwd_bytes'] / c['bwd']['best'] / 1e9:7.1f} {pct(bg)}")
    print("\nraw torch.mm of each linear's forward shape (x·Wᵀ, no bias, no autograd):")
    for c in cases:
        if "raw" in c:
            r = c["raw"]["best"]
            print(f"  {c['op']:<29} {r * 1e3:8.3f} ms  {c['fwd_flops'] / r / 1e9:7.1f} GFLOP/s "
                  f"({100 * c['fwd_flops'] / r / 1e9 / peak_gflops:.0f}% of peak); op forward overhead "
                  f"{(c['fwd']['best'] - r) * 1e3:+.3f} ms")
    for a, b in zip(cases, cases[1:]):
        if "raw" in a and "raw" in b and not a["frozen"] and b["frozen"]:
            print(f"  frozen-weight saving, {a['op']}: backward {a['bwd']['best'] * 1e3:.3f} -> "
                  f"{b['bwd']['best'] * 1e3:.3f} ms ({100 * (1 - b['bwd']['best'] / a['bwd']['best']):.0f}% less)")
    print("\nwork counts: as `bench ops` (linear fwd 2MNK flop, bwd 4MNK, 2MNK with frozen W; softmax 5/4 flop per\n"
          "element; layer_norm 8/16 (13 frozen); gelu 4/9; GB/s counts each array read or written once).")
    if args.json:
        out = {"implementation": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
               "clock": args.clock, "cpu": cpu_description(), "sgemm_peak_gflops": peak_gflops, "sgemm_peak_size": n, "ops": []}
        for c in cases:
            o = {"op": c["op"], "shape": c["shape"], "fwd_ms_median": c["fwd"]["median"] * 1e3,
                 "fwd_ms_best": c["fwd"]["best"] * 1e3, "bwd_ms_median": c["bwd"]["median"] * 1e3,
                 "bwd_ms_best": c["bwd"]["best"] * 1e3,
                 "fwd_gflops": c["fwd_flops"] / c["fwd"]["best"] / 1e9,
                 "bwd_gflops": c["bwd_flops"] / c["bwd"]["best"] / 1e9,
                 "fwd_gbs": c["fwd_bytes"] / c["fwd"]["best"] / 1e9,
                 "bwd_gbs": c["bwd_bytes"] / c["bwd"]["best"] / 1e9}
            if "raw" in c:
                o["raw_sgemm_ms_best"] = c["raw"]["best"] * 1e3
            out["ops"].append(o)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"wrote {args.json}")


# ---------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------


def gate(p, name, h, mask):
    """g[b] = masked mean over tokens of sigmoid(w . h[b,t] + c) -> [B] (the default `masked` pooling)."""
    s = torch.sigmoid(F.linear(h, p[name + ".weight"], p[name + ".bias"])).squeeze(-1)
    return (s * mask).sum(1) / mask.sum(1)


def fast_forward(p, cfg, pcfg, batch, training, hidden_p, attn_p, cls_p):
    """unipelt_reference.forward with PyTorch's fused eager kernels and BERT's dropouts (at the same
    places as nn/bert.cpp: embeddings, attention probabilities, both sublayer outputs, classifier)."""
    ids, tt = batch["input_ids"], batch["token_type_ids"]
    mask = batch["attention_mask"]
    B, T = ids.shape
    H, nh, dh = cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim
    eps = cfg.layer_norm_eps
    drop = (lambda x, q: F.dropout(x, q, True)) if training else (lambda x, q: x)

    e = "bert.embeddings."
    h = (F.embedding(ids, p[e + "word_embeddings.weight"])
         + p[e + "position_embeddings.weight"][:T][None]
         + F.embedding(tt, p[e + "token_type_embeddings.weight"]))
    h = drop(F.layer_norm(h, (H,), p[e + "LayerNorm.weight"], p[e + "LayerNorm.bias"], eps), hidden_p)

    key_mask = mask
    if pcfg.prefix:
        L = pcfg.prefix_len
        key_mask = torch.cat([torch.ones(B, L, dtype=mask.dtype), mask], dim=1)
        E = p["bert.encoder.prefix_enc_embed.weight"]
        mid = torch.tanh(F.linear(E, p["bert.encoder.prefix_embed_MLP.0.weight"], p["bert.encoder.prefix_embed_MLP.0.bias"]))
        pkv = F.linear(mid, p["bert.encoder.prefix_embed_MLP.2.weight"], p["bert.encoder.prefix_embed_MLP.2.bias"])
        pkv = pkv.view(L, cfg.num_hidden_layers, 2, nh, dh).permute(1, 2, 3, 0, 4)
    add_mask = ((1.0 - key_mask) * ur.MASK_VALUE)[:, None, None, :]
    lora_scale = pcfg.lora_alpha / pcfg.lora_r

    def heads(x):
        return x.view(B, -1, nh, dh).transpose(1, 2)

    def lin(name, x):
        return F.linear(x, p[name + ".weight"], p[name + ".bias"])

    for i in range(cfg.num_hidden_layers):
        pre = f"bert.encoder.layer.{i}."
        sa = pre + "attention.self."
        x = h
        q, k, v = lin(sa + "query", x), lin(sa + "key", x), lin(sa + "value", x)
        if pcfg.lora:
            dq = F.linear(F.linear(x, p[sa + "query.lora_A"]), p[sa + "query.lora_B"])
            dv = F.linear(F.linear(x, p[sa + "value.lora_A"]), p[sa + "value.lora_B"])
            if pcfg.gated:
                q = q + dq * gate(p, sa + "query.lora_gate", x, mask)[:, None, None]
                v = v + dv * gate(p, sa + "value.lora_gate", x, mask)[:, None, None]
            else:
                q = q + dq * lora_scale
                v = v + dv * lora_scale
        q, k, v = heads(q), heads(k), heads(v)
        if pcfg.prefix:
            pk, pv = pkv[i, 0][None], pkv[i, 1][None]
            if pcfg.gated:
                gp = gate(p, sa + "prefix_gate", x, mask)[:, None, None, None]
                pk, pv = pk * gp, pv * gp
            else:
                pk, pv = pk.expand(B, -1, -1, -1), pv.expand(B, -1, -1, -1)
            k = torch.cat([pk, k], dim=2)
            v = torch.cat([pv, v], dim=2)
        scores = torch.matmul(q / math.sqrt(dh), k.transpose(-1, -2)) + add_mask
        probs = drop(F.softmax(scores, dim=-1), attn_p)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, H)
        a = F.layer_norm(drop(lin(pre + "attention.output.dense", ctx), hidden_p) + x, (H,),
                         p[pre + "attention.output.LayerNorm.weight"], p[pre + "attention.output.LayerNorm.bias"], eps)
        f = drop(lin(pre + "output.dense", F.gelu(lin(pre + "intermediate.dense", a))), hidden_p)
        lnw, lnb = p[pre + "output.LayerNorm.weight"], p[pre + "output.LayerNorm.bias"]
        if pcfg.adapter:
            ad = pre + "output.adapter."
            res = f + a
            xa = F.layer_norm(res, (H,), lnw, lnb, eps)
            hA = lin(ad + "up", F.relu(lin(ad + "down", xa)))
            if pcfg.gated:
                hA = hA * gate(p, ad + "gate", xa, mask)[:, None, None]
            h = F.layer_norm(hA + res, (H,), lnw, lnb, eps)
        else:
            h = F.layer_norm(f + a, (H,), lnw, lnb, eps)

    pooled = torch.tanh(lin("bert.pooler.dense", h[:, 0]))
    logits = lin("classifier", drop(pooled, cls_p))
    return F.cross_entropy(logits, batch["labels"])


def load_model(args):
    if args.synthetic:
        hidden, layers, heads = SYNTHETIC[args.synthetic]
        cfg = ur.BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers,
                            num_attention_heads=heads, intermediate_size=4 * hidden)
        g = torch.Generator().manual_seed(1234)
        weights = OrderedDict()
        for name, shape in ur.base_param_shapes(cfg, 2).items():
            if name.endswith("LayerNorm.weight"):
                weights[name] = torch.ones(shape, dtype=torch.float64)
            elif name.endswith("bias"):
                weights[name] = torch.zeros(shape, dtype=torch.float64)
            else:
                weights[name] = torch.randn(shape, generator=g, dtype=torch.float64) * 0.02
        dropouts = (0.1, 0.1, 0.1)
        return cfg, weights, dropouts
    cfg, weights = ur.load_model_dir(args.model)
    with open(os.path.join(args.model, "config.json")) as f:
        raw = json.load(f)
    hidden_p = raw.get("hidden_dropout_prob", 0.1)
    cls_p = raw.get("classifier_dropout")
    return cfg, weights, (hidden_p, raw.get("attention_probs_dropout_prob", 0.1), hidden_p if cls_p is None else cls_p)


def make_batch(B, T, vocab):
    g = torch.Generator().manual_seed(2024)
    return {"input_ids": torch.randint(1000, vocab, (B, T), generator=g),
            "token_type_ids": torch.zeros(B, T, dtype=torch.long),
            "attention_mask": torch.ones(B, T, dtype=torch.float32),
            "labels": torch.randint(0, 2, (B,), generator=g)}


def tensor_bytes(ts):
    return sum(t.numel() * t.element_size() for t in ts)


def profile_peak_bytes(step_fn):
    """Highest running sum of CPU allocations minus frees during one call of step_fn."""
    from torch.autograd import profiler
    with profiler.profile(profile_memory=True, use_kineto=True) as prof:
        step_fn()
    events = [e for e in prof.kineto_results.events() if e.name() == "[memory]" and e.device_type() ==
              torch.autograd.DeviceType.CPU]
    events.sort(key=lambda e: e.start_us())
    running = peak = 0
    for e in events:
        running += e.nbytes()
        peak = max(peak, running)
    return peak


def build_training(cfg, method, weights):
    """The preset's parameters (float32, 2 labels), its trainable tensors and their AdamW (the trainer's
    betas, eps and weight decay): pcfg, params, trainable, opt."""
    pcfg = ur.make_pelt_config(method)
    with contextlib.redirect_stderr(io.StringIO()):  # "classifier not in model, initialised" (as ours does)
        params = ur.build_params(cfg, pcfg, weights, {}, 2, 42, torch.float32)
    names = set(ur.trainable_names(cfg, pcfg, 2))
    for n, t in params.items():
        t.requires_grad_(n in names)
    trainable = [t for n, t in params.items() if n in names]
    opt = torch.optim.AdamW(trainable, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    return pcfg, params, trainable, opt


def run_preset(args, method, cfg, weights, dropouts):
    pcfg, params, trainable, opt = build_training(cfg, method, weights)
    batch = make_batch(args.batch, args.seq_len, cfg.vocab_size)
    training = not args.no_dropout
    hidden_p, attn_p, cls_p = dropouts

    def forward():
        if args.impl == "reference":
            return ur.forward(params, cfg, pcfg, batch)["loss"]
        return fast_forward(params, cfg, pcfg, batch, training, hidden_p, attn_p, cls_p)

    times = {"step": [], "cpu": [], "fwd": [], "bwd": [], "clip": [], "adamw": []}
    losses = []

    def step(record):
        opt.zero_grad(set_to_none=True)
        c0 = time.process_time()
        t0 = time.perf_counter()
        loss = forward()
        value = loss.item()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        c1 = time.process_time()
        losses.append(value)
        if record:
            for key, dt in (("step", t4 - t0), ("cpu", c1 - c0), ("fwd", t1 - t0), ("bwd", t2 - t1), ("clip", t3 - t2),
                            ("adamw", t4 - t3)):
                times[key].append(dt)

    for s in range(args.warmup + args.steps):
        step(s >= args.warmup)
    opt.zero_grad(set_to_none=True)
    persistent = tensor_bytes(params.values()) + tensor_bytes(
        [v for st in opt.state.values() for v in st.values() if torch.is_tensor(v)]) + tensor_bytes(
        [batch["input_ids"], batch["token_type_ids"], batch["attention_mask"], batch["labels"]])
    step_peak = profile_peak_bytes(lambda: step(False))
    opt_floats = sum(2 * t.numel() for t in trainable)
    return {"method": method, "step": summarize(times["step"]), "cpu": summarize(times["cpu"]),
            "phases": {k: statistics.median(v) for k, v in times.items() if k not in ("step", "cpu")},
            "peak_bytes": persistent + step_peak, "step_bytes": step_peak,
            "trainable": sum(t.numel() for t in trainable), "optimizer_floats": opt_floats,
            "loss_first": losses[0], "loss_last": losses[-1]}


def run_train(args):
    if not args.synthetic and not os.path.exists(os.path.join(args.model, "config.json")):
        print(f"pytorch_bench train: skipped: no model at {args.model} (pass --model DIR or --synthetic SIZE)")
        return 0
    methods = args.methods.split(",") if args.methods else PRESETS
    for m in methods:
        if m not in ur.PRESETS:
            raise SystemExit(f"unknown method {m!r}; choose from {PRESETS}")
    cfg, weights, dropouts = load_model(args)
    print(f"pytorch_bench train: cpu, float32, batch {args.batch} x {args.seq_len} tokens (all real, random ids), "
          f"dropout {'off' if args.no_dropout or args.impl == 'reference' else 'on (model config)'}, "
          f"forward {args.impl}")
    print(f"  model:    {('random-weight BERT-' + args.synthetic) if args.synthetic else args.model}")
    print(f"  cpu:      {cpu_description()}")
    print(f"  torch:    {torch_description()}")
    print(f"  step:     zero_grad, forward, loss.item(), backward, clip_grad_norm_(1.0), AdamW; {args.warmup} warm-up "
          f"+ {args.steps} timed steps; ex/s from the median\n")
    print(f"{'preset':<15} {'ms/step':>9} {'best ms':>9} {'cpu ms':>9} {'ex/s':>9} {'peak MiB':>10} {'step MiB':>10} "
          f"{'trainable':>12} {'optim MiB':>12}")
    mib = lambda b: b / 2 ** 20  # noqa: E731
    results = []
    for m in methods:
        r = run_preset(args, m, cfg, weights, dropouts)
        print(f"{m:<15} {r['step']['median'] * 1e3:9.1f} {r['step']['best'] * 1e3:9.1f} "
              f"{r['cpu']['median'] * 1e3:9.1f} "
              f"{args.batch / r['step']['median']:9.1f} {mib(r['peak_bytes']):10.1f} {mib(r['step_bytes']):10.1f} "
              f"{r['trainable']:12d} {mib(4 * r['optimizer_floats']):12.2f}", flush=True)
        results.append(r)
    print("\nms/step: median wall time; best ms: fastest step; cpu ms: median process CPU time per step (all\n"
          "threads, spin-waiting included). ex/s = batch / median wall time.")
    print("peak MiB: parameters + optimizer state + batch + the highest running allocation total of one profiled\n"
          "step; step MiB: that running total alone. optim MiB: AdamW exp_avg and exp_avg_sq (float32).")
    if args.breakdown:
        print("\nbreakdown (median ms): forward / backward / clip / AdamW")
        for r in results:
            ph = r["phases"]
            print(f"{r['method']:<15} fwd {ph['fwd'] * 1e3:8.1f}  bwd {ph['bwd'] * 1e3:8.1f}  clip "
                  f"{ph['clip'] * 1e3:6.2f}  adamw {ph['adamw'] * 1e3:6.2f}")
    if args.json:
        out = {"implementation": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpu": cpu_description(), "model": ("synthetic-" + args.synthetic) if args.synthetic else args.model,
               "batch": args.batch, "seq_len": args.seq_len, "dropout": not args.no_dropout, "impl": args.impl,
               "presets": []}
        for r in results:
            out["presets"].append({
                "method": r["method"], "ms_per_step_median": r["step"]["median"] * 1e3,
                "ms_per_step_best": r["step"]["best"] * 1e3, "cpu_ms_per_step_median": r["cpu"]["median"] * 1e3,
                "cpu_ms_per_step_best": r["cpu"]["best"] * 1e3, "examples_per_s": args.batch / r["step"]["median"],
                "peak_bytes": r["peak_bytes"], "step_bytes": r["step_bytes"],
                "trainable_parameters": r["trainable"], "optimizer_state_floats": r["optimizer_floats"],
                "loss_first": r["loss_first"], "loss_last": r["loss_last"],
                "forward_ms": r["phases"]["fwd"] * 1e3, "backward_ms": r["phases"]["bwd"] * 1e3,
                "clip_ms": r["phases"]["clip"] * 1e3, "adamw_ms": r["phases"]["adamw"] * 1e3})
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    o = sub.add_parser("ops", help="forward+backward timings of linear / softmax / layer norm / GELU")
    o.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads and OpenBLAS threads (default: all CPUs)")
    o.add_argument("--reps", type=int, default=20)
    o.add_argument("--warmup", type=int, default=3)
    o.add_argument("--peak-size", type=int, default=2048)
    o.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: process CPU time (all threads), steadier on a busy machine with --threads 1")
    o.add_argument("--json", default="")
    t = sub.add_parser("train", help="training throughput per PELT preset")
    t.add_argument("--model", default="../shared/data/models/bert-mini-mlm")
    t.add_argument("--synthetic", choices=list(SYNTHETIC), default="")
    t.add_argument("--methods", default="", help="comma-separated presets (default: all eight)")
    t.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads and OpenBLAS threads (default: all CPUs)")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--seq-len", type=int, default=128)
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--steps", type=int, default=10)
    t.add_argument("--no-dropout", action="store_true")
    t.add_argument("--breakdown", action="store_true", help="also print forward / backward / clip / AdamW times")
    t.add_argument("--impl", choices=["fast", "reference"], default="fast",
                   help="fast: fused F.* kernels with dropout (default); reference: unipelt_reference.forward")
    t.add_argument("--json", default="")
    pytorch_epoch.add_parser(sub, os.cpu_count())
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    set_blas_threads(args.threads)
    if args.command == "epoch":
        return pytorch_epoch.run_epoch(sys.modules[__name__], args)
    return run_ops(args) if args.command == "ops" else run_train(args)


if __name__ == "__main__":
    sys.exit(main() or 0)
