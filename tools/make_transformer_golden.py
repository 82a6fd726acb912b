#!/ usr / bin / python3
"""Writes the reference data of xgrad's transformer module tests
(tests/data/transformer_golden/modules/) with torch.

    /usr/bin/python3 tools/make_transformer_golden.py [OUT_DIR]

Needs Debian's python3-torch (1.13). Every case is one safetensors file (written by
tools/torch_state.py's save_file, no other package needed). Inputs and parameters are random
float32 numbers (seeded, so the files are reproducible) stored widened to float64, so the
same inputs serve xgrad's float64 and float32 tests; torch computes in float64. Gradients are
those of sum(output * grad_output) for a random grad_output. Keys:

    param.<name>        the module's parameters, under torch's state_dict names
    x / query, key, value   inputs;  attn_mask, key_padding_mask  bool masks (true: masked out)
    grad_output, output, weights (MultiheadAttention's returned attention weights)
    grad.<input>        gradient of an input;  grad.param.<name>  of a parameter

Cases (modules in training mode with dropout 0, so torch takes its composite path):
    mha_causal          MultiheadAttention(8, 2, batch_first=True), self-attention of x
                        [2, 5, 8] with a causal bool attn_mask, need_weights (averaged)
    mha_key_padding     MultiheadAttention(8, 2) sequence-first, query [4, 2, 8], key and
                        value [6, 2, 8], key_padding_mask [2, 6] (the last two keys of batch 1
                        padded), need_weights with average_attn_weights=False
    encoder_post        TransformerEncoderLayer(8, 2, 16, dropout=0, batch_first=True) (relu,
                        post-LayerNorm), x [2, 5, 8], src_key_padding_mask [2, 5]
    encoder_pre         the same with norm_first=True, activation gelu, and a causal mask
    encoder_stack       TransformerEncoder(TransformerEncoderLayer(8, 2, 16, dropout=0,
                        batch_first=True, norm_first=True), 2, norm=LayerNorm(8)), x [2, 5, 8]
and trained_encoder_layer.safetensors: the float32 state_dict ("state.<name>") of a
TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True, norm_first=True,
activation gelu) trained by torch for 20 Adam steps to copy its input, a float32 input "x"
[3, 7, 16] and torch's eval-mode output "output" with those weights.
"""

import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_state import save_file  # noqa: E402

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "transformer_golden",
    "modules")

gen = torch.Generator().manual_seed(20261207)


def rand(*shape):
    """Uniform in [-1, 1), rounded to float32, as float64."""
    return (torch.rand(*shape, generator=gen, dtype=torch.float32) * 2 - 1).double()


def randomise(module):
    """Every parameter from U(-0.5, 0.5) rounded to float32 (LayerNorm weights around 1), so
    that zero-initialised biases are tested too."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            v = rand(*p.shape) * 0.5
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
                v = v + 1
            p.copy_(v)


def run_case(name, module, inputs, call, extra=None):
    """inputs: dict of float64 leaves (requires_grad set here); call(module, inputs) returns
    (output, weights or None)."""
    module = module.double()
    randomise(module)
    module.train()
    for t in inputs.values():
        t.requires_grad_(True)
    out, weights = call(module, inputs)
    g = rand(*out.shape)
    (out * g).sum().backward()
    d = {}
    for k, p in module.named_parameters():
        d["param." + k] = p.detach().clone()
        d["grad.param." + k] = p.grad.detach().clone()
    for k, t in inputs.items():
        d[k] = t.detach().clone()
        d["grad." + k] = t.grad.detach().clone()
    d["grad_output"] = g
    d["output"] = out.detach()
    if weights is not None:
        d["weights"] = weights.detach()
    d.update(extra or {})
    save_file(d, os.path.join(OUT, name + ".safetensors"))
    print("wrote", name)


def causal(n):
    return torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)


def main():
    os.makedirs(OUT, exist_ok=True)
    mask = causal(5)
    run_case("mha_causal", nn.MultiheadAttention(8, 2, batch_first=True), {"x": rand(2, 5, 8)},
             lambda m, i: m(i["x"], i["x"], i["x"], attn_mask=mask, need_weights=True),
             {"attn_mask": mask})

    kpm = torch.zeros(2, 6, dtype=torch.bool)
    kpm[1, 4:] = True
    run_case("mha_key_padding", nn.MultiheadAttention(8, 2),
             {"query": rand(4, 2, 8), "key": rand(6, 2, 8), "value": rand(6, 2, 8)},
             lambda m, i: m(i["query"], i["key"], i["value"], key_padding_mask=kpm,
                            need_weights=True, average_attn_weights=False),
             {"key_padding_mask": kpm})

    kpm5 = torch.zeros(2, 5, dtype=torch.bool)
    kpm5[0, 3:] = True
    run_case("encoder_post",
             nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
             {"x": rand(2, 5, 8)},
             lambda m, i: (m(i["x"], src_key_padding_mask=kpm5), None),
             {"key_padding_mask": kpm5})
    run_case("encoder_pre",
             nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu",
                                        batch_first=True, norm_first=True),
             {"x": rand(2, 5, 8)},
             lambda m, i: (m(i["x"], src_mask=mask), None),
             {"attn_mask": mask})
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True)
    run_case("encoder_stack",
             nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8), enable_nested_tensor=False),
             {"x": rand(2, 5, 8)},
             lambda m, i: (m(i["x"]), None))

#A torch - trained layer : its state_dict as torch saves it.
    torch.manual_seed(7)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, activation="gelu",
                                       batch_first=True, norm_first=True)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    for _ in range(20):
        x = torch.randn(4, 7, 16)
        loss = ((layer(x) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    layer.eval()
    x = torch.randn(3, 7, 16)
    with torch.no_grad():
        out = layer(x)
    d = {"state." + k: v for k, v in layer.state_dict().items()}
    d["x"] = x
    d["output"] = out
    save_file(d, os.path.join(OUT, "trained_encoder_layer.safetensors"))
    print("wrote trained_encoder_layer")


if __name__ == "__main__":
    main()
