#!/usr/bin/env python3
"""Cross-check `unipelt export --format peft` against peft itself.

    python3 tests/reference/check_peft.py [--unipelt build/unipelt] [--keep DIR] [--unipelt-only]

Needs torch, transformers and peft (not installed on the development machine; the GPU machine has
them). End to end, through the `unipelt` program only:

  1. a model directory: the tiny test BERT (tests/fixtures/tiny-bert, float64 weights) plus a
     50-token vocab.txt; a synthetic SST-2 (sentences of those tokens) under data/glue/SST-2/;
  2. `unipelt train --method lora` on it (K = 64, one epoch, r = 2, alpha = 4), then
     `unipelt export RUN --format peft --out ADAPTER`;
  3. our logits: `unipelt grads --init ADAPTER --dtype f64` on tests/fixtures/batch-cls.safetensors
     (labels made binary);
  4. peft's: PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(MODEL,
     num_labels=2, torch_dtype=float64), ADAPTER) in eval mode on the same batch.

Passes when every logit agrees to 1e-5 (in float64 they agree far closer). --unipelt-only runs
steps 1-3 (checks that the adapter directory is complete) and reports peft's part as not run.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
WORDS = ["good", "great", "nice", "fine", "bad", "awful", "poor", "dull"] + [f"w{i}" for i in range(37)]


def write_model_and_data(root):
    model = os.path.join(root, "model")
    shutil.copytree(os.path.join(REPO, "tests", "fixtures", "tiny-bert"), model)
    with open(os.path.join(model, "vocab.txt"), "w") as f:
        f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")  # 50 tokens
    task = os.path.join(root, "data", "glue", "SST-2")
    os.makedirs(task)
    rng = random.Random(7)
    for name, rows in (("train.tsv", 1100), ("dev.tsv", 60)):
        with open(os.path.join(task, name), "w") as f:
            f.write("sentence\tlabel\n")
            for _ in range(rows):
                label = rng.randrange(2)
                words = [rng.choice(WORDS[8:]) for _ in range(2)] + [rng.choice(WORDS[:4] if label else WORDS[4:8])]
                rng.shuffle(words)
                f.write(" ".join(words) + " \t" + str(label) + "\n")
    return model, os.path.join(root, "data")


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--unipelt", default=os.path.join(REPO, "build", "unipelt"))
    ap.add_argument("--keep", help="work in this directory and keep it (default: a temporary one)")
    ap.add_argument("--unipelt-only", action="store_true", help="skip the peft part (no peft installed)")
    args = ap.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix="check_peft.")
    os.makedirs(root, exist_ok=True)
    model, data = write_model_and_data(root)
    run_dir, adapter = os.path.join(root, "run"), os.path.join(root, "adapter")
    shutil.rmtree(run_dir, ignore_errors=True)
    run([args.unipelt, "train", "--task", "SST-2", "--method", "lora", "--model", model, "--data", data,
         "--out", run_dir, "--k", "64", "--epochs", "1", "--batch-size", "8", "--max-len", "16",
         "--lora-r", "2", "--lora-alpha", "4", "--lr", "0.01"])
    run([args.unipelt, "export", run_dir, "--format", "peft", "--out", adapter])

    batch, _ = safetensors_io.read(os.path.join(REPO, "tests", "fixtures", "batch-cls.safetensors"))
    batch["labels"] = batch["labels"] % 2  # two classes here
    batch_path = os.path.join(root, "batch.safetensors")
    safetensors_io.write(batch_path, batch)
    ours_path = os.path.join(root, "ours.safetensors")
    run([args.unipelt, "grads", "--model", model, "--batch", batch_path, "--init", adapter, "--out", ours_path,
         "--method", "lora", "--lora-r", "2", "--lora-alpha", "4", "--num-labels", "2", "--dtype", "f64"])
    ours = safetensors_io.read(ours_path)[0]["logits"]
    config = json.load(open(os.path.join(adapter, "adapter_config.json")))
    assert config["peft_type"] == "LORA" and config["r"] == 2, config
    print("unipelt logits:\n", ours)
    if args.unipelt_only:
        print("peft cross-check: not run (--unipelt-only)")
        return 0

    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(model, num_labels=2, torch_dtype=torch.float64)
    peft_model = PeftModel.from_pretrained(base, adapter).eval()
    with torch.no_grad():
        theirs = peft_model(input_ids=torch.from_numpy(batch["input_ids"]).long(),
                            token_type_ids=torch.from_numpy(batch["token_type_ids"]).long(),
                            attention_mask=torch.from_numpy(batch["attention_mask"]).long()).logits.numpy()
    print("peft logits:\n", theirs)
    worst = float(np.max(np.abs(theirs - ours)))
    print(f"max |peft - unipelt| = {worst:.3e} (tolerance 1e-5)")
    if worst > 1e-5:
        print("FAIL: peft does not reproduce unipelt's logits")
        return 1
    print("PASS: PeftModel.from_pretrained reproduces unipelt's logits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
