#!/usr/bin/env python3
"""Independent PyTorch reference of BertForSequenceClassification + UniPELT.

Written from scratch with plain torch tensor ops (no `transformers`, no
`torch.nn` modules) so that the C++ implementation (`unipelt grads`) can be
checked against it. Dropout is always off. Computation runs in float64 unless
`--dtype f32` is given.

The exact semantics implemented here (and that the C++ side must follow) are
listed in docs/reference.md. In short, for layer i with input h:

    self-attention   q = W_q h + b_q [+ s_q * (h A_q^T B_q^T)]       (LoRA)
                     k = W_k h + b_k,  v = W_v h + b_v [+ s_v * LoRA_v]
                     k, v <- [g_P * Pk_i ; k], [g_P * Pv_i ; v]        (prefix)
                     scores = q k^T / sqrt(d) + (1 - mask) * -10000.0
    attention out    a = LN_att(W_o ctx + b_o + h)
    FFN              f = W_2 gelu(W_1 a + b_1) + b_2
    adapter          x = LN_out(f + a); h_A = up(relu(down(x)))
                     out = LN_out(g_A * h_A + f + a)
    (no adapter)     out = LN_out(f + a)

Gates g = pool_t sigmoid(w . h_t + c): `masked` pooling averages over tokens
with attention_mask 1, `all` over all T positions.

CLI (mirrors `unipelt grads`):
    unipelt_reference.py [grads] --model DIR --method M --batch B.safetensors
        --out OUT.safetensors [--init PELT.safetensors] [--num-labels N]
        [--dtype f32|f64] [--seed S] [--adapter-size m] [--prefix-len L]
        [--prefix-mid D] [--lora-r r] [--lora-alpha a] [--gate-pool masked|all]
"""

import argparse
import json
import math
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

# Additive attention-mask value for padded key positions (HF BERT, pre-2022).
MASK_VALUE = -10000.0

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


@dataclass
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    initializer_range: float = 0.02
    num_labels: int = 0  # 0 = not given in config.json

    @property
    def head_dim(self):
        return self.hidden_size // self.num_attention_heads

    @staticmethod
    def from_json(path):
        with open(path) as f:
            d = json.load(f)
        num_labels = d.get("num_labels", 0)
        if not num_labels and isinstance(d.get("id2label"), dict):
            num_labels = len(d["id2label"])
        cfg = BertConfig(
            vocab_size=d["vocab_size"],
            hidden_size=d["hidden_size"],
            num_hidden_layers=d["num_hidden_layers"],
            num_attention_heads=d["num_attention_heads"],
            intermediate_size=d["intermediate_size"],
            max_position_embeddings=d.get("max_position_embeddings", 512),
            type_vocab_size=d.get("type_vocab_size", 2),
            layer_norm_eps=d.get("layer_norm_eps", 1e-12),
            hidden_act=d.get("hidden_act", "gelu"),
            initializer_range=d.get("initializer_range", 0.02),
            num_labels=num_labels,
        )
        if cfg.hidden_size % cfg.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")
        return cfg


@dataclass
class PeltConfig:
    adapter: bool = False
    prefix: bool = False
    lora: bool = False
    gated: bool = False
    base_trainable: str = "none"  # "all" (finetune) | "bias" (bitfit) | "none"
    adapter_size: int = 0         # 0 -> hidden/16
    prefix_len: int = 10
    prefix_mid: int = 512
    lora_r: int = 8
    lora_alpha: float = 16.0
    gate_pool: str = "masked"     # "masked" | "all"


# method preset -> (adapter, prefix, lora, gated, base_trainable)
PRESETS = OrderedDict([
    ("finetune",       (False, False, False, False, "all")),
    ("bitfit",         (False, False, False, False, "bias")),
    ("adapter",        (True,  False, False, False, "none")),
    ("prefix",         (False, True,  False, False, "none")),
    ("lora",           (False, False, True,  False, "none")),
    ("unipelt-ap",     (True,  True,  False, True,  "none")),
    ("unipelt-apl",    (True,  True,  True,  True,  "none")),
    ("unipelt-nogate", (True,  True,  True,  False, "none")),
])


def make_pelt_config(method, **sizes):
    if method not in PRESETS:
        raise ValueError(f"unknown method {method!r}; choose from {list(PRESETS)}")
    a, p, l, g, base = PRESETS[method]
    return PeltConfig(adapter=a, prefix=p, lora=l, gated=g, base_trainable=base, **sizes)


# ---------------------------------------------------------------------------
# Parameter names and shapes
# ---------------------------------------------------------------------------


def base_param_shapes(cfg, num_labels):
    """HF BertForSequenceClassification parameter names -> shapes, in model order."""
    H, I = cfg.hidden_size, cfg.intermediate_size
    s = OrderedDict()
    e = "bert.embeddings."
    s[e + "word_embeddings.weight"] = (cfg.vocab_size, H)
    s[e + "position_embeddings.weight"] = (cfg.max_position_embeddings, H)
    s[e + "token_type_embeddings.weight"] = (cfg.type_vocab_size, H)
    s[e + "LayerNorm.weight"] = (H,)
    s[e + "LayerNorm.bias"] = (H,)
    for i in range(cfg.num_hidden_layers):
        p = f"bert.encoder.layer.{i}."
        for n in ("query", "key", "value"):
            s[p + f"attention.self.{n}.weight"] = (H, H)
            s[p + f"attention.self.{n}.bias"] = (H,)
        s[p + "attention.output.dense.weight"] = (H, H)
        s[p + "attention.output.dense.bias"] = (H,)
        s[p + "attention.output.LayerNorm.weight"] = (H,)
        s[p + "attention.output.LayerNorm.bias"] = (H,)
        s[p + "intermediate.dense.weight"] = (I, H)
        s[p + "intermediate.dense.bias"] = (I,)
        s[p + "output.dense.weight"] = (H, I)
        s[p + "output.dense.bias"] = (H,)
        s[p + "output.LayerNorm.weight"] = (H,)
        s[p + "output.LayerNorm.bias"] = (H,)
    s["bert.pooler.dense.weight"] = (H, H)
    s["bert.pooler.dense.bias"] = (H,)
    s["classifier.weight"] = (num_labels, H)
    s["classifier.bias"] = (num_labels,)
    return s


def adapter_size(cfg, pcfg):
    return pcfg.adapter_size if pcfg.adapter_size > 0 else max(1, cfg.hidden_size // 16)


def pelt_param_shapes(cfg, pcfg):
    """Names -> shapes of the PELT parameters enabled by pcfg, in model order."""
    H, nl = cfg.hidden_size, cfg.num_hidden_layers
    s = OrderedDict()
    if pcfg.prefix:
        L, D = pcfg.prefix_len, pcfg.prefix_mid
        s["bert.encoder.prefix_enc_embed.weight"] = (L, H)
        s["bert.encoder.prefix_embed_MLP.0.weight"] = (D, H)
        s["bert.encoder.prefix_embed_MLP.0.bias"] = (D,)
        s["bert.encoder.prefix_embed_MLP.2.weight"] = (nl * 2 * H, D)
        s["bert.encoder.prefix_embed_MLP.2.bias"] = (nl * 2 * H,)
    for i in range(nl):
        p = f"bert.encoder.layer.{i}."
        if pcfg.prefix and pcfg.gated:
            s[p + "attention.self.prefix_gate.weight"] = (1, H)
            s[p + "attention.self.prefix_gate.bias"] = (1,)
        if pcfg.lora:
            r = pcfg.lora_r
            for n in ("query", "value"):
                s[p + f"attention.self.{n}.lora_A"] = (r, H)
                s[p + f"attention.self.{n}.lora_B"] = (H, r)
                if pcfg.gated:
                    s[p + f"attention.self.{n}.lora_gate.weight"] = (1, H)
                    s[p + f"attention.self.{n}.lora_gate.bias"] = (1,)
        if pcfg.adapter:
            m = adapter_size(cfg, pcfg)
            s[p + "output.adapter.down.weight"] = (m, H)
            s[p + "output.adapter.down.bias"] = (m,)
            s[p + "output.adapter.up.weight"] = (H, m)
            s[p + "output.adapter.up.bias"] = (H,)
            if pcfg.gated:
                s[p + "output.adapter.gate.weight"] = (1, H)
                s[p + "output.adapter.gate.bias"] = (1,)
    return s


def trainable_names(cfg, pcfg, num_labels):
    """Ordered list of trainable parameter names for a preset.

    classifier.* always; finetune: every base parameter (pooler included);
    bitfit: every base parameter whose name ends in 'bias'; PELT parameters
    always trainable; everything else frozen."""
    names = []
    for n in base_param_shapes(cfg, num_labels):
        if n.startswith("classifier."):
            names.append(n)
        elif pcfg.base_trainable == "all":
            names.append(n)
        elif pcfg.base_trainable == "bias" and n.endswith("bias"):
            names.append(n)
    # classifier last in the base dict; keep PELT after base for readability
    cls = [n for n in names if n.startswith("classifier.")]
    names = [n for n in names if not n.startswith("classifier.")]
    names += list(pelt_param_shapes(cfg, pcfg)) + cls
    return names


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def normalise_name(key):
    """Map a checkpoint key to a BertForSequenceClassification name, or None to
    drop it. Mirrors HF loading: legacy gamma/beta -> weight/bias, BertModel
    keys get a 'bert.' prefix, pre-training heads (cls.*) are ignored."""
    if key.endswith(".gamma"):
        key = key[: -len(".gamma")] + ".weight"
    elif key.endswith(".beta"):
        key = key[: -len(".beta")] + ".bias"
    if key.startswith("cls."):
        return None
    if key.startswith("bert.") or key.startswith("classifier."):
        pass
    elif key.startswith(("embeddings.", "encoder.", "pooler.")):
        key = "bert." + key
    else:
        return None
    if key.endswith("position_ids"):  # buffer in some checkpoints
        return None
    return key


def load_model_dir(model_dir):
    cfg = BertConfig.from_json(os.path.join(model_dir, "config.json"))
    raw, _ = safetensors_io.read(os.path.join(model_dir, "model.safetensors"))
    weights = OrderedDict()
    for k, v in raw.items():
        n = normalise_name(k)
        if n is not None:
            weights[n] = torch.from_numpy(np.asarray(v, dtype=np.float64))
    return cfg, weights


def build_params(cfg, pcfg, weights, init, num_labels, seed, dtype):
    """Assemble the full parameter dict: base weights from the model dir, PELT
    tensors and classifier from --init when supplied, otherwise initialised
    from `seed` (that initialisation is NOT meant to match the C++ RNG)."""
    gen = torch.Generator().manual_seed(seed)
    std = cfg.initializer_range
    base = base_param_shapes(cfg, num_labels)
    pelt = pelt_param_shapes(cfg, pcfg)
    params = OrderedDict()
    for name, shape in list(base.items()) + list(pelt.items()):
        if name in init:
            t = init[name]
        elif name in weights and tuple(weights[name].shape) == tuple(shape):
            t = weights[name]
        elif name in pelt:
            t = _default_init(name, shape, std, gen)
        elif name.startswith(("bert.pooler.", "classifier.")):
            # HF also initialises a missing pooler / a new classifier head
            print(f"warning: {name} not in model, initialised from seed", file=sys.stderr)
            t = _default_init(name, shape, std, gen)
        elif name in weights:
            raise ValueError(f"{name}: shape {tuple(weights[name].shape)} but expected {tuple(shape)}")
        else:
            raise KeyError(f"model is missing required weight {name}")
        if tuple(t.shape) != tuple(shape):
            raise ValueError(f"{name}: shape {tuple(t.shape)} but expected {tuple(shape)}")
        params[name] = t.detach().to(dtype).clone()
    return params


def _default_init(name, shape, std, gen):
    z = lambda: torch.zeros(shape, dtype=torch.float64)  # noqa: E731
    n = lambda s: torch.randn(shape, generator=gen, dtype=torch.float64) * s  # noqa: E731
    if name.endswith("lora_B") or name.startswith("classifier.") and name.endswith("bias"):
        return z()
    if name.endswith("lora_A"):
        bound = 1.0 / math.sqrt(shape[1])
        return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    if ".adapter.up." in name:
        return z()
    if name.endswith("bias"):
        return z()
    if name.endswith("prefix_enc_embed.weight"):
        return n(1.0)
    return n(std)


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


def layer_norm(x, w, b, eps):
    """LayerNorm over the last dim with biased variance (as torch/HF)."""
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def activation(x, kind):
    if kind == "gelu":  # exact erf GELU
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if kind in ("gelu_new", "gelu_pytorch_tanh"):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if kind == "relu":
        return torch.relu(x)
    raise ValueError(f"unsupported hidden_act {kind!r}")


def linear(p, name, x):
    """y = x W^T + b with W [out, in] (torch/HF convention)."""
    return x @ p[name + ".weight"].t() + p[name + ".bias"]


def gate(p, name, h, mask, pool):
    """g[b] = pool_t sigmoid(w . h[b,t] + c); returns [B].

    masked: mean over positions with mask 1; all: mean over all T positions."""
    s = torch.sigmoid(h @ p[name + ".weight"].t() + p[name + ".bias"]).squeeze(-1)  # [B,T]
    if pool == "masked":
        return (s * mask).sum(1) / mask.sum(1)
    if pool == "all":
        return s.mean(1)
    raise ValueError(f"unknown gate pool {pool!r}")


def prefix_kv(p, cfg, pcfg):
    """Run the prefix MLP once: returns [n_layers, 2, heads, L, head_dim]
    (kv 0 = key, 1 = value). The MLP output feature index is
    ((2*layer + kv)*heads + head)*head_dim + d."""
    E = p["bert.encoder.prefix_enc_embed.weight"]                       # [L, H]
    mid = torch.tanh(linear(p, "bert.encoder.prefix_embed_MLP.0", E))     # [L, D]
    out = linear(p, "bert.encoder.prefix_embed_MLP.2", mid)               # [L, nl*2*H]
    L = E.shape[0]
    out = out.view(L, cfg.num_hidden_layers, 2, cfg.num_attention_heads, cfg.head_dim)
    return out.permute(1, 2, 3, 0, 4)


def lora_delta(p, name, x):
    """x A^T B^T for the LoRA pair attached to projection `name`."""
    return (x @ p[name + ".lora_A"].t()) @ p[name + ".lora_B"].t()


def forward(p, cfg, pcfg, batch):
    """Returns dict(logits [B,N], loss [] , gates {key: [B]})."""
    ids = batch["input_ids"]
    tt = batch["token_type_ids"]
    mask = batch["attention_mask"].to(p["classifier.weight"].dtype)  # [B,T] float
    B, T = ids.shape
    nh, dh = cfg.num_attention_heads, cfg.head_dim
    pool = pcfg.gate_pool
    gates = OrderedDict()

    # --- embeddings
    pos = torch.arange(T)
    e = "bert.embeddings."
    h = (p[e + "word_embeddings.weight"][ids] + p[e + "position_embeddings.weight"][pos][None]
         + p[e + "token_type_embeddings.weight"][tt])
    h = layer_norm(h, p[e + "LayerNorm.weight"], p[e + "LayerNorm.bias"], cfg.layer_norm_eps)

    # --- attention mask (additive), with L attendable prefix positions in front
    key_mask = mask
    if pcfg.prefix:
        L = pcfg.prefix_len
        key_mask = torch.cat([torch.ones(B, L, dtype=mask.dtype), mask], dim=1)  # [B,L+T]
        pkv = prefix_kv(p, cfg, pcfg)
    add_mask = (1.0 - key_mask)[:, None, None, :] * MASK_VALUE                   # [B,1,1,K]

    lora_scale = pcfg.lora_alpha / pcfg.lora_r if pcfg.lora else None

    def heads(x):  # [B,S,H] -> [B,nh,S,dh]
        return x.view(B, -1, nh, dh).transpose(1, 2)

    for i in range(cfg.num_hidden_layers):
        pre = f"bert.encoder.layer.{i}."
        sa = pre + "attention.self."
        x = h  # layer input: read by prefix and LoRA gates and LoRA

        # --- Q/K/V projections (+ LoRA on query and value)
        q = linear(p, sa + "query", x)
        k = linear(p, sa + "key", x)
        v = linear(p, sa + "value", x)
        if pcfg.lora:
            if pcfg.gated:
                gq = gate(p, sa + "query.lora_gate", x, mask, pool)
                gv = gate(p, sa + "value.lora_gate", x, mask, pool)
                gates[f"layer.{i}.lora_query"] = gq
                gates[f"layer.{i}.lora_value"] = gv
                sq, sv = gq[:, None, None], gv[:, None, None]
            else:
                sq = sv = lora_scale
            q = q + sq * lora_delta(p, sa + "query", x)
            v = v + sv * lora_delta(p, sa + "value", x)
        q, k, v = heads(q), heads(k), heads(v)

        # --- prefix: prepend (gated) per-layer key/value prefixes after projection
        if pcfg.prefix:
            pk = pkv[i, 0][None].expand(B, -1, -1, -1)  # [B,nh,L,dh]
            pv = pkv[i, 1][None].expand(B, -1, -1, -1)
            if pcfg.gated:
                gp = gate(p, sa + "prefix_gate", x, mask, pool)
                gates[f"layer.{i}.prefix"] = gp
                pk = pk * gp[:, None, None, None]
                pv = pv * gp[:, None, None, None]
            k = torch.cat([pk, k], dim=2)
            v = torch.cat([pv, v], dim=2)

        # --- scaled dot-product attention
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh) + add_mask
        probs = torch.softmax(scores, dim=-1)
        ctx = (probs @ v).transpose(1, 2).reshape(B, T, nh * dh)
        a = layer_norm(linear(p, pre + "attention.output.dense", ctx) + x,
                       p[pre + "attention.output.LayerNorm.weight"],
                       p[pre + "attention.output.LayerNorm.bias"], cfg.layer_norm_eps)

        # --- feed-forward (f is before the residual)
        f = linear(p, pre + "output.dense",
                   activation(linear(p, pre + "intermediate.dense", a), cfg.hidden_act))
        lnw, lnb = p[pre + "output.LayerNorm.weight"], p[pre + "output.LayerNorm.bias"]
        if pcfg.adapter:
            ad = pre + "output.adapter."
            xa = layer_norm(f + a, lnw, lnb, cfg.layer_norm_eps)
            hA = linear(p, ad + "up", torch.relu(linear(p, ad + "down", xa)))
            if pcfg.gated:
                gA = gate(p, ad + "gate", xa, mask, pool)
                gates[f"layer.{i}.adapter"] = gA
                hA = gA[:, None, None] * hA
            h = layer_norm(hA + f + a, lnw, lnb, cfg.layer_norm_eps)
        else:
            h = layer_norm(f + a, lnw, lnb, cfg.layer_norm_eps)

    # --- pooler + classifier
    pooled = torch.tanh(linear(p, "bert.pooler.dense", h[:, 0]))
    logits = linear(p, "classifier", pooled)
    labels = batch["labels"]
    if logits.shape[1] == 1:  # regression: MSE on squeezed logits
        loss = ((logits.squeeze(-1) - labels.to(logits.dtype)) ** 2).mean()
    else:  # mean cross-entropy
        logp = torch.log_softmax(logits, dim=-1)
        loss = -logp.gather(1, labels.long()[:, None]).squeeze(1).mean()
    return {"logits": logits, "loss": loss, "gates": gates}


# ---------------------------------------------------------------------------
# grads: forward + backward, OUT layout
# ---------------------------------------------------------------------------


def load_batch(path):
    t, _ = safetensors_io.read(path)
    batch = {}
    for k in ("input_ids", "token_type_ids", "attention_mask", "labels"):
        if k not in t:
            if k == "token_type_ids":
                t[k] = np.zeros_like(t["input_ids"])
            else:
                raise KeyError(f"{path}: missing {k}")
        batch[k] = torch.from_numpy(np.asarray(t[k]))
    for k in ("input_ids", "token_type_ids", "attention_mask"):
        batch[k] = batch[k].long()
    return batch


def compute_grads(params, cfg, pcfg, batch, num_labels):
    """Run forward+backward; returns an OrderedDict in the OUT layout."""
    names = trainable_names(cfg, pcfg, num_labels)
    p = OrderedDict((n, t.detach().clone().requires_grad_(n in names)) for n, t in params.items())
    res = forward(p, cfg, pcfg, batch)
    grads = torch.autograd.grad(res["loss"], [p[n] for n in names], allow_unused=True)
    out = OrderedDict()
    out["logits"] = res["logits"].detach()
    out["loss"] = res["loss"].detach().reshape(1)
    for k, g in res["gates"].items():
        out["gate/" + k] = g.detach()
    for n, g in zip(names, grads):
        out["grad/" + n] = torch.zeros_like(p[n]) if g is None else g
    return out


def resolve_num_labels(arg, cfg, init, weights):
    if arg:
        return arg
    for src in (init, weights):
        if "classifier.weight" in src:
            return int(src["classifier.weight"].shape[0])
    return cfg.num_labels or 2


def run(args):
    dtype = torch.float64 if args.dtype == "f64" else torch.float32
    cfg, weights = load_model_dir(args.model)
    init = OrderedDict()
    if args.init:
        raw, _ = safetensors_io.read(args.init)
        init = OrderedDict((k, torch.from_numpy(np.asarray(v, dtype=np.float64))) for k, v in raw.items())
    num_labels = resolve_num_labels(args.num_labels, cfg, init, weights)
    pcfg = make_pelt_config(args.method, adapter_size=args.adapter_size, prefix_len=args.prefix_len,
                            prefix_mid=args.prefix_mid, lora_r=args.lora_r,
                            lora_alpha=args.lora_alpha, gate_pool=args.gate_pool)
    known = set(base_param_shapes(cfg, num_labels)) | set(pelt_param_shapes(cfg, pcfg))
    unknown = [k for k in init if k not in known]
    if unknown:
        raise KeyError(f"--init holds tensors this method does not use: {unknown}")
    params = build_params(cfg, pcfg, weights, init, num_labels, args.seed, dtype)
    batch = load_batch(args.batch)
    out = compute_grads(params, cfg, pcfg, batch, num_labels)
    npdt = np.float64 if dtype == torch.float64 else np.float32
    safetensors_io.write(args.out, OrderedDict((k, v.numpy().astype(npdt)) for k, v in out.items()),
                         metadata={"generator": "tests/reference/unipelt_reference.py",
                                   "method": args.method, "gate_pool": args.gate_pool,
                                   "num_labels": str(num_labels)})
    return out


def build_argparser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="HF model dir (config.json + model.safetensors)")
    ap.add_argument("--method", required=True, choices=list(PRESETS))
    ap.add_argument("--batch", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", default=None, help="PELT + classifier tensors by name")
    ap.add_argument("--num-labels", type=int, default=0)
    ap.add_argument("--dtype", choices=["f32", "f64"], default="f64")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--adapter-size", type=int, default=0, help="default hidden/16")
    ap.add_argument("--prefix-len", type=int, default=10)
    ap.add_argument("--prefix-mid", type=int, default=512)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--lora-alpha", type=float, default=16.0)
    ap.add_argument("--gate-pool", choices=["masked", "all"], default="masked")
    return ap


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "grads":  # allow `unipelt_reference.py grads ...`
        argv = argv[1:]
    out = run(build_argparser().parse_args(argv))
    print(f"loss = {out['loss'].item():.17g}")


if __name__ == "__main__":
    main()
