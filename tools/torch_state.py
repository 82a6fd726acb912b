#!/usr/bin/python3
"""Moves model weights between PyTorch and xgrad as safetensors files, and writes the golden
files of xgrad's PyTorch round-trip tests (tests/data/torch_state/).

    /usr/bin/python3 tools/torch_state.py show FILE          names, dtypes and shapes in FILE
    /usr/bin/python3 tools/torch_state.py golden [OUT_DIR]   (re)writes the golden files

As a library (only python3-torch is needed: the safetensors format is read and written here by
hand, no `safetensors` package):

    import sys; sys.path.insert(0, "tools")
    from torch_state import save_file, load_file
    save_file(model.state_dict(), "model.safetensors")      # torch -> xgrad: io::load(model, ...)
    model.load_state_dict(load_file("xgrad.safetensors"))   # xgrad (io::save) -> torch

The safetensors layout: 8 bytes N (unsigned little-endian), N bytes of UTF-8 JSON
{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...} padded with spaces
to a multiple of 8, then the data section (each tensor row-major, little-endian). dtypes:
F32, F64, I64, BOOL (those xgrad reads).

Golden files (`golden`), for four models built the same way in xgrad and in torch:
    mlp    xgrad's nn::MLP({784, 256, 128, 10}): fc1, ReLU, fc2, ReLU, fc3
    cnn    xgrad's nn::CNN: conv1 (1->16, 3x3, pad 1), ReLU, 2x2 max pool, conv2 (16->32), ReLU,
           2x2 max pool, flatten, fc (1568->10); input [N, 784]
    lstm   nn::Sequential{LSTM(4, 8), Linear(8, 3)}: per-step logits [T, N, 3] of x [T, N, 4]
    bn     nn::Sequential{Linear(6, 8), BatchNorm1d(8), ReLU, Linear(8, 3)}, in eval mode
For each model M:
    torch_M.safetensors   the state_dict of a torch model trained for a few SGD steps
    xgrad_M.safetensors   the state_dict of the xgrad model trained for a few SGD steps, written
                          by build/examples/example_export_state (run it first; this script reads
                          these files and never writes them)
    M_logits.safetensors  "input" (a fixed input), "torch_logits" (torch's eval-mode output on it
                          with torch_M's weights), "xgrad_logits" (torch's eval-mode output with
                          xgrad_M's weights loaded into the torch model)
and hooks.safetensors: register_full_backward_hook's (grad_input, grad_output) on a float64
Sequential(Linear(4, 3), BatchNorm1d(3), Tanh, Linear(3, 2)) in training mode: its weights
("model.<name>"), the input "x", the output gradient "g" (backward of sum(y * g)), and for the
whole model ("seq"), the batch norm ("bn") and the last linear layer ("fc"): "<m>.grad_input",
"<m>.grad_output"; and "x.grad".
"""

import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "BOOL": torch.bool}
NAMES = {v: k for k, v in DTYPES.items()}


def save_file(tensors, path):
    """Writes a name -> tensor dict (a state_dict) to `path` in the safetensors format."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype not in NAMES:
            raise ValueError(f"{name}: dtype {t.dtype} is not one of {list(DTYPES)}")
        data = t.numpy().tobytes() if t.dtype != torch.bool else t.to(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def load_file(path):
    """Reads a safetensors file (written by xgrad's io::save) into a name -> tensor dict."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        raw = bytearray(data[begin:end])
        if dtype == torch.bool:
            t = torch.frombuffer(raw, dtype=torch.uint8).to(torch.bool) if raw else torch.empty(0, dtype=torch.bool)
        else:
            t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


# ---- the models, as xgrad builds them ------------------------------------------------------


class MLP(nn.Module):
    def __init__(self, sizes=(784, 256, 128, 10)):
        super().__init__()
        self.n = len(sizes) - 1
        for i in range(self.n):
            setattr(self, f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1]))

    def forward(self, x):
        for i in range(self.n):
            x = getattr(self, f"fc{i + 1}")(x)
            if i + 1 < self.n:
                x = F.relu(x)
        return x


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        h = x.reshape(x.shape[0], 1, 28, 28)
        h = F.max_pool2d(F.relu(self.conv1(h)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return self.fc(torch.flatten(h, 1))


class LSTMHead(nn.Module):
    """xgrad's Sequential{LSTM(4, 8), Linear(8, 3)}: children named "0" and "1"."""

    def __init__(self):
        super().__init__()
        self.add_module("0", nn.LSTM(4, 8))
        self.add_module("1", nn.Linear(8, 3))

    def forward(self, x):
        out, _ = getattr(self, "0")(x)
        return getattr(self, "1")(out)


def bn_model(dtype=torch.float32):
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).to(dtype)


# Per model: constructor, input of the golden file, a training batch (input, target) maker.
def mlp_batch(g):
    return torch.rand(16, 784, generator=g), torch.randint(0, 10, (16,), generator=g)


def lstm_batch(g):
    return torch.randn(5, 4, 4, generator=g), torch.randint(0, 3, (5, 4), generator=g)


def bn_batch(g):
    return torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)


MODELS = {
    "mlp": (MLP, lambda g: torch.rand(4, 784, generator=g), mlp_batch),
    "cnn": (CNN, lambda g: torch.rand(4, 784, generator=g), mlp_batch),
    "lstm": (LSTMHead, lambda g: torch.randn(5, 3, 4, generator=g), lstm_batch),
    "bn": (bn_model, lambda g: torch.randn(5, 6, generator=g), bn_batch),
}


def train(model, batch, steps=5, lr=0.1, seed=1):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        x, y = batch(g)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()


def write_model_goldens(out, name):
    make, make_input, batch = MODELS[name]
    torch.manual_seed(0)
    model = make()
    train(model, batch)
    model.eval()
    save_file(model.state_dict(), os.path.join(out, f"torch_{name}.safetensors"))
    x = make_input(torch.Generator().manual_seed(7))
    with torch.no_grad():
        torch_logits = model(x)
    xgrad_file = os.path.join(out, f"xgrad_{name}.safetensors")
    if not os.path.exists(xgrad_file):
        sys.exit(f"{xgrad_file} is missing: run build/examples/example_export_state {out} first")
    other = make()
    other.load_state_dict(load_file(xgrad_file))  # strict: the names are torch's
    other.eval()
    with torch.no_grad():
        xgrad_logits = other(x)
    save_file({"input": x, "torch_logits": torch_logits, "xgrad_logits": xgrad_logits},
              os.path.join(out, f"{name}_logits.safetensors"))
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, logits "
          f"{list(torch_logits.shape)}")


def write_hook_goldens(out):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Tanh(), nn.Linear(3, 2)).double()
    g = torch.Generator().manual_seed(11)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64).requires_grad_()
    go = torch.randn(5, 2, generator=g, dtype=torch.float64)
    seen = {}

    def record(key):
        def hook(module, grad_input, grad_output):
            seen[key + ".grad_input"] = grad_input[0].detach().clone()
            seen[key + ".grad_output"] = grad_output[0].detach().clone()
        return hook

    model.register_full_backward_hook(record("seq"))
    model[1].register_full_backward_hook(record("bn"))
    model[3].register_full_backward_hook(record("fc"))
    tensors = {"model." + k: v.clone() for k, v in model.state_dict().items()}
    (model(x) * go).sum().backward()
    tensors.update(seen)
    tensors.update({"x": x.detach(), "g": go, "x.grad": x.grad})
    save_file(tensors, os.path.join(out, "hooks.safetensors"))
    print("hooks:", sorted(seen))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "show":
        for name, t in sorted(load_file(sys.argv[2]).items()):
            print(f"{name}\t{NAMES[t.dtype]}\t{list(t.shape)}")
        return
    if len(sys.argv) >= 2 and sys.argv[1] == "golden":
        out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "torch_state")
        os.makedirs(out, exist_ok=True)
        torch.set_num_threads(1)
        for name in MODELS:
            write_model_goldens(out, name)
        write_hook_goldens(out)
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
