"""`pytorch_bench.py epoch`: one training epoch in PyTorch, the same epoch `bench epoch` times.

    ./build/bench epoch --task SST-2 --k 1000 --methods lora --dump-batches epoch.json
    /usr/bin/python3 bench/pytorch_bench.py epoch --batches epoch.json --pad 128   [--methods a,b] [--threads N]
    /usr/bin/python3 bench/pytorch_bench.py epoch --batches epoch.json --pad batch

The batches are the ones our trainer makes (the epoch's shuffled order cut into batches of 16; token ids
from our tokenizer), read from `bench epoch --dump-batches`. Each is padded either to 128 tokens (what
the official UniPELT code does: pad_to_max_length) or to its own longest sequence (what Hugging Face's
DataCollatorWithPadding does, and what our trainer does). The step is pytorch_bench.py's: zero_grad,
forward with dropout (fast_forward), loss.item(), backward, clip_grad_norm_(1.0), AdamW. The first
`--warmup` batches run once untimed before the timed epoch (ours warms up on another epoch's batches;
the cost is the same).
"""

import json
import time

import torch


def padded_batch(examples, pad):
    """input_ids, token_type_ids, attention_mask, labels of one batch, padded to `pad` or its longest."""
    longest = max(len(e["input_ids"]) for e in examples)
    T = longest if pad == "batch" else max(int(pad), longest)
    B = len(examples)
    ids = torch.zeros(B, T, dtype=torch.long)
    types = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.float32)
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[i, :n] = torch.tensor(e["input_ids"])
        types[i, :n] = torch.tensor(e["token_type_ids"])
        mask[i, :n] = 1.0
    labels = torch.tensor([e["label"] for e in examples], dtype=torch.long)
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "labels": labels}


def time_epoch(pb, args, method, cfg, weights, dropouts, batches):
    pcfg, params, trainable, opt = pb.build_training(cfg, method, weights)
    hidden_p, attn_p, cls_p = dropouts

    def step(examples):
        batch = padded_batch(examples, args.pad)  # inside the timed loop, as our make_batch is
        opt.zero_grad(set_to_none=True)
        loss = pb.fast_forward(params, cfg, pcfg, batch, True, hidden_p, attn_p, cls_p)
        loss.item()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        return batch["input_ids"].numel()

    for examples in batches[:args.warmup]:
        step(examples)
    c0, t0 = time.process_time(), time.perf_counter()
    tokens = sum(step(examples) for examples in batches)
    return time.perf_counter() - t0, time.process_time() - c0, tokens


def run_epoch(pb, args):
    with open(args.batches) as f:
        dump = json.load(f)
    batches = dump["batches"]
    if dump.get("num_labels", 2) != 2:
        raise SystemExit(f"{args.batches}: only 2-label tasks are supported (got {dump.get('num_labels')})")
    methods = args.methods.split(",") if args.methods else pb.PRESETS
    for m in methods:
        if m not in pb.ur.PRESETS:
            raise SystemExit(f"unknown method {m!r}; choose from {pb.PRESETS}")
    cfg, weights, dropouts = pb.load_model(args)
    examples = sum(len(b) for b in batches)
    print(f"pytorch_bench epoch: {dump['task']}, cpu, float32, K = {dump['k']}: {len(batches)} batches of "
          f"{dump['batch_size']} from {args.batches}, padded {'per batch' if args.pad == 'batch' else 'to ' + args.pad}")
    print(f"  model:    {args.model}\n  cpu:      {pb.cpu_description()}\n  torch:    {pb.torch_description()}\n")
    print(f"{'preset':<15} {'wall s':>10} {'cpu s':>10} {'ex/s':>10} {'tokens':>10}")
    results = []
    for m in methods:
        wall, cpu, tokens = time_epoch(pb, args, m, cfg, weights, dropouts, batches)
        print(f"{m:<15} {wall:10.3f} {cpu:10.3f} {examples / wall:10.1f} {tokens:10d}", flush=True)
        results.append({"method": m, "wall_s": wall, "cpu_s": cpu, "examples": examples,
                        "examples_per_s": examples / wall, "padded_tokens": tokens})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"implementation": "pytorch", "command": "epoch", "pad": args.pad, "task": dump["task"],
                       "threads": torch.get_num_threads(), "k": dump["k"], "presets": results}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def add_parser(sub, default_threads):
    e = sub.add_parser("epoch", help="one training epoch of the batches `bench epoch --dump-batches` wrote")
    e.add_argument("--batches", required=True, help="JSON written by `bench epoch --dump-batches`")
    e.add_argument("--pad", default="batch", help="batch (pad each batch to its longest) or a length, e.g. 128")
    e.add_argument("--model", default="../shared/data/models/bert-mini-mlm")
    e.add_argument("--methods", default="", help="comma-separated presets (default: all eight)")
    e.add_argument("--threads", type=int, default=default_threads,
                   help="torch.set_num_threads and OpenBLAS threads (default: all CPUs)")
    e.add_argument("--warmup", type=int, default=3)
    e.add_argument("--json", default="")
    e.set_defaults(synthetic="")
