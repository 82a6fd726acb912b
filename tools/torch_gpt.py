#!/usr/bin/python3
"""The torch twin of `xgrad-train --model gpt`: the same character-level GPT, data, optimizer
and evaluation, in torch (python3-torch 1.13), for comparing validation loss and speed.

    /usr/bin/python3 tools/torch_gpt.py [--data PATH] [--max-steps 2000] [--seed 42]
        [--threads 1] [--batch-size 32] [--lr 1e-3] [--json OUT.json] [--sample N]

What is the same as xgrad's (tools/train/gpt.hpp, include/xgrad/nn/gpt.hpp):
  - the corpus: every regular file under PATH (a folder, sorted by path; symbolic links
    followed, each file once; files holding a NUL byte skipped) or the file PATH, concatenated;
    the vocabulary is its distinct bytes in increasing order; the first 90 % is the training
    text, the rest the validation text;
  - the model: token + position embeddings, N torch.nn.TransformerEncoderLayer(C, H, 4C,
    dropout 0, gelu, batch_first, norm_first) with a causal mask, a final LayerNorm and a linear
    head, under the same parameter names (token_embedding, position_embedding, blocks.i.*, ln_f,
    head), so state_dicts move between the two unchanged; GPT-2's initialisation (N(0, 0.02²),
    residual projections N(0, (0.02/√(2N))²), zero biases);
  - training: batches of random blocks, AdamW(lr, betas (0.9, 0.99), weight decay 0.1 on every
    parameter), gradient norm clipped at 1.0;
  - evaluation: the mean cross-entropy over --eval-blocks blocks evenly spaced over the
    validation text (offset_i = i·(n − T − 1) // (count − 1)), every --eval-interval steps.
What differs: the random numbers (torch's generator draws the initial weights and the block
offsets), so runs are compared as means over seeds.
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_text(path):
    if not os.path.isdir(path):
        return open(path, "rb").read()
    files = []
    for root, _, names in os.walk(path, followlinks=True):
        for n in names:
            p = os.path.join(root, n)
            if os.path.isfile(p):
                files.append(p)
    files.sort(key=lambda p: os.path.relpath(p, path).split(os.sep))
    seen, out = set(), []
    for p in files:
        real = os.path.realpath(p)
        if real in seen:
            continue
        seen.add(real)
        b = open(p, "rb").read()
        if b"\0" in b:
            continue
        out.append(b)
    return b"".join(out)


class GPT(nn.Module):
    def __init__(self, vocab, block=64, n_layer=4, n_head=4, n_embd=128):
        super().__init__()
        self.block = block
        self.token_embedding = nn.Embedding(vocab, n_embd)
        self.position_embedding = nn.Embedding(block, n_embd)
        self.blocks = nn.ModuleList([
            nn.TransformerEncoderLayer(n_embd, n_head, 4 * n_embd, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab)
        std, proj = 0.02, 0.02 / math.sqrt(2 * n_layer)
        with torch.no_grad():
            nn.init.normal_(self.token_embedding.weight, 0, std)
            nn.init.normal_(self.position_embedding.weight, 0, std)
            for b in self.blocks:
                nn.init.normal_(b.self_attn.in_proj_weight, 0, std)
                nn.init.zeros_(b.self_attn.in_proj_bias)
                nn.init.normal_(b.self_attn.out_proj.weight, 0, proj)
                nn.init.zeros_(b.self_attn.out_proj.bias)
                nn.init.normal_(b.linear1.weight, 0, std)
                nn.init.zeros_(b.linear1.bias)
                nn.init.normal_(b.linear2.weight, 0, proj)
                nn.init.zeros_(b.linear2.bias)
            nn.init.normal_(self.head.weight, 0, std)
            nn.init.zeros_(self.head.bias)
        self.register_buffer("mask", torch.triu(torch.full((block, block), float("-inf")), 1),
                             persistent=False)

    def forward(self, idx):
        t = idx.shape[1]
        h = self.token_embedding(idx) + self.position_embedding(torch.arange(t))
        mask = self.mask[:t, :t]
        for b in self.blocks:
            h = b(h, src_mask=mask)
        return self.head(self.ln_f(h))


def eval_offsets(n, block, count):
    last = n - block - 1
    count = min(count, last + 1)
    return [0] if count == 1 else [i * last // (count - 1) for i in range(count)]


@torch.no_grad()
def evaluate(model, val, offsets, block):
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(offsets), 64):
        o = torch.tensor(offsets[i:i + 64])
        x = torch.stack([val[j:j + block] for j in o])
        y = torch.stack([val[j + 1:j + 1 + block] for j in o])
        logits = model(x)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                 reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/games/fortunes")
    ap.add_argument("--max-steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--block-size", type=int, default=64)
    ap.add_argument("--eval-interval", type=int, default=500)
    ap.add_argument("--eval-blocks", type=int, default=1024)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    text = read_text(a.data)
    vocab = sorted(set(text))
    ids = {b: i for i, b in enumerate(vocab)}
    data = torch.tensor([ids[b] for b in text], dtype=torch.long)
    n_train = int(len(data) * 0.9)
    train, val = data[:n_train], data[n_train:]
    T = a.block_size
    model = GPT(len(vocab), T, a.n_layer, a.n_head, a.n_embd)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.99), weight_decay=0.1)
    offsets = eval_offsets(len(val), T, a.eval_blocks)
    print(f"torch_gpt: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
          f"{len(train)} training and {len(val)} validation characters ({len(vocab)} distinct), "
          f"torch {torch.__version__}, {a.threads} thread(s)", flush=True)
    t0 = time.perf_counter()
    train_time, window, val_loss = 0.0, [], float("nan")
    for step in range(1, a.max_steps + 1):
        ts = time.perf_counter()
        o = torch.randint(0, len(train) - T - 1 + 1, (a.batch_size,))
        x = torch.stack([train[j:j + T] for j in o])
        y = torch.stack([train[j + 1:j + 1 + T] for j in o])
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        train_time += time.perf_counter() - ts
        window.append(loss.item())
        if step % a.eval_interval == 0 or step == a.max_steps:
            val_loss = evaluate(model, val, offsets, T)
            print(f"step {step}  train loss {sum(window) / len(window):.4f}  val loss "
                  f"{val_loss:.4f} nats/char ({val_loss / math.log(2):.4f} bits/char)", flush=True)
            window = []
    tokens_per_s = a.max_steps * a.batch_size * T / max(train_time, 1e-9)
    print(f"done: {a.max_steps} steps, wall time {time.perf_counter() - t0:.2f} s, "
          f"{tokens_per_s:.0f} tokens/s (training)")
    if a.sample > 0:
        model.eval()
        seq = torch.tensor([[ids.get(10, 0)]])
        with torch.no_grad():
            for _ in range(a.sample):
                logits = model(seq[:, -T:])[:, -1, :]
                nxt = torch.multinomial(F.softmax(logits, -1), 1)
                seq = torch.cat([seq, nxt], 1)
        print(bytes(vocab[i] for i in seq[0, 1:].tolist()).decode("utf-8", "replace"))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"val_loss": val_loss, "bits_per_char": val_loss / math.log(2),
                       "tokens_per_s": tokens_per_s, "steps": a.max_steps, "seed": a.seed,
                       "threads": a.threads}, f)


if __name__ == "__main__":
    main()
