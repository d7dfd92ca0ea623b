"""Writes the q8 test fixtures from the shipped f32 model, independently of the Rust code.

    python3 sampler/tests/data/make_q8_fixture.py [--val names.txt]

Reads `data/model-f32.safetensors` and writes, next to this script:

- `model-q8.safetensors`: the model quantised to the folded dtype `q8` of `model/FORMAT.md`
  (int8 embedding with one scale folded into layer 0, int8 weights with one scale per row,
  per row an int32 word holding the bias in accumulator units (high 24 bits) and the shift
  (low byte) and an int16 multiplier (the high half of TFLite's 32-bit one), one shared
  256-entry int8 tanh table for pre-activations on [-3.25, 3.25], Q16 int32 logits);
- `q8-expected.json`: the Q16 logits the integer network computes for a spread of contexts,
  and a checksum of the logits of every context, computed below with numpy int64 arithmetic
  (every int32 quantity checked to fit), never by the sampler.

The tests (`sampler/tests/q8.rs`) require the sampler to compute exactly these logits. The
quantisation recipe is the prototype's recommended one (validation loss 2.07581 against the
float model's 2.07565). With `--val`, prints the validation loss of the q8 model on the names
of that file (one per line, `namegen split` writes the split).

Needs numpy and safetensors (0.4 or later).
"""
import argparse
import json
import math
import os

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "..", "..", "data", "model-f32.safetensors")
# Pre-activations of the hidden layers are int8 codes of scale R / 127: tanh saturates (to
# +-127/127) from 3.114, and R = 3.25 gave the prototype's lowest training KL.
TANH_RANGE = 3.25
LOGIT_FRAC_BITS = 16
I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1
# The bias shares its int32 word with the shift's byte: 24 bits.
BIAS_MIN, BIAS_MAX = -(1 << 23), (1 << 23) - 1


def round_half_away(v):
    v = np.asarray(v, dtype=np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def check_i32(x, what):
    x = np.asarray(x, dtype=np.int64)
    assert I32_MIN <= int(x.min()) and int(x.max()) <= I32_MAX, f"int32 overflow in {what}"
    return x


def quantize_multiplier(real):
    """TFLite's QuantizeMultiplier with 16 bits: real = m * 2^(shift - 15), m in [2^14, 2^15),
    rounded once from real; the requantisation's 32-bit multiplier is m * 2^16."""
    q, shift = math.frexp(float(real))
    m = int(math.floor(q * (1 << 15) + 0.5))
    if m == 1 << 15:
        m //= 2
        shift += 1
    assert -31 <= shift <= 30 and (1 << 14) <= m < (1 << 15), (real, m, shift)
    return m, shift


def bias_shift(bias, shift):
    """The stored int32 words: bias * 2^8 + (shift mod 2^8)."""
    bias, shift = np.asarray(bias, dtype=np.int64), np.asarray(shift, dtype=np.int64)
    assert BIAS_MIN <= int(bias.min()) and int(bias.max()) <= BIAS_MAX, "bias beyond 24 bits"
    return (bias * 256 + (shift & 0xFF)).astype(np.int32)


def row_integers(q, i):
    """Layer i's bias, 32-bit multiplier and shift, decoded from the stored tensors."""
    word = q[f"layers.{i}.bias_shift"].astype(np.int64)
    shift = (word & 0xFF) - ((word & 0x80) << 1)
    return word >> 8, q[f"layers.{i}.multiplier"].astype(np.int64) << 16, shift


def requantize(acc, m, shift):
    """TFLite MultiplyByQuantizedMultiplier (CMSIS-NN arm_nn_requantize), elementwise on int64
    arrays: SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT."""
    acc, m, shift = (np.asarray(a, dtype=np.int64) for a in (acc, m, shift))
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    a = check_i32(acc * (np.int64(1) << left), "acc << left")
    p = a * m  # |p| < 2^62
    nudge = np.where(p >= 0, 1 << 30, 1 - (1 << 30))
    s = p + nudge
    high = np.where(s >= 0, s >> 31, -((-s) >> 31))  # C division truncates toward zero
    high = check_i32(high, "high mul")
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


def quantize(tensors):
    """The q8 tensors (numpy arrays) of the float model."""
    emb = tensors["emb.weight"].astype(np.float64)
    n_layers = len([k for k in tensors if k.endswith(".weight") and k.startswith("layers.")])
    s_e = np.abs(emb).max() / 127
    out = {"emb.weight": round_half_away(emb / s_e).astype(np.int8)}
    k = np.arange(-128, 128)
    s_y = TANH_RANGE / 127
    table = np.clip(round_half_away(127 * np.tanh(k * s_y)), -127, 127)
    out["tanh.table"] = table.astype(np.int8)
    s_x = s_e
    for i in range(n_layers):
        w = tensors[f"layers.{i}.weight"].astype(np.float64)
        b = tensors[f"layers.{i}.bias"].astype(np.float64)
        s_w = np.abs(w).max(1) / 127
        s_w = np.where(s_w == 0, 1.0, s_w)
        s_acc = s_w * s_x
        target = 2.0 ** -LOGIT_FRAC_BITS if i == n_layers - 1 else s_y
        ms = [quantize_multiplier(s / target) for s in s_acc]
        out[f"layers.{i}.weight"] = round_half_away(w / s_w[:, None]).astype(np.int8)
        bias = round_half_away(b / s_acc).astype(np.int64)
        out[f"layers.{i}.bias_shift"] = bias_shift(bias, [s for _, s in ms])
        out[f"layers.{i}.multiplier"] = np.array([m for m, _ in ms], dtype=np.int16)
        s_x = 1 / 127
    return out, n_layers


def q16_logits(q, n_layers, contexts):
    """The integer network on `contexts` (N, block_size): int64 (N, V) Q16 logits."""
    x = q["emb.weight"].astype(np.int64)[contexts].reshape(len(contexts), -1)
    table = q["tanh.table"].astype(np.int64)
    for i in range(n_layers):
        w = q[f"layers.{i}.weight"].astype(np.int64)
        bias, m, shift = row_integers(q, i)
        acc = check_i32(x @ w.T + bias, f"layer {i} acc")
        z = requantize(acc, m[None, :], shift[None, :])
        if i == n_layers - 1:
            return check_i32(z, "logits")
        x = table[np.clip(z, -128, 127) + 128]


def all_contexts(vocab_size, block):
    grid = np.meshgrid(*[np.arange(vocab_size)] * block, indexing="ij")
    return np.stack(grid, -1).reshape(-1, block)


def val_loss(q, n_layers, vocab, block, path):
    stoi = {c: i for i, c in enumerate(vocab)}
    xs, ys = [], []
    for line in open(path, encoding="utf-8"):
        name = line.strip()
        if not name:
            continue
        context = [0] * block
        for ch in name + ".":
            xs.append(list(context))
            ys.append(stoi[ch])
            context = context[1:] + [stoi[ch]]
    logits = q16_logits(q, n_layers, np.array(xs)).astype(np.float64) * 2.0 ** -LOGIT_FRAC_BITS
    top = logits.max(1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(1)) + top[:, 0]
    return float(np.mean(lse - logits[np.arange(len(ys)), ys]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default=SOURCE)
    parser.add_argument("--val", help="names file: print the q8 model's loss on it")
    args = parser.parse_args()
    metadata = safe_open(args.source, "np").metadata()
    assert metadata["dtype"] == "f32"
    q, n_layers = quantize(load_file(args.source))
    vocab, block = metadata["vocab"], int(metadata["block_size"])
    metadata["dtype"] = "q8"
    metadata["provenance.writer"] = "sampler/tests/data/make_q8_fixture.py"
    save_file(q, os.path.join(HERE, "model-q8.safetensors"), metadata=metadata)

    contexts = all_contexts(len(vocab), block)
    logits = q16_logits(q, n_layers, contexts)
    # Every 97th context (203 of the 19,683) and the start, whose logits every name uses.
    picked = sorted(set(range(0, len(contexts), 97)) | {0})
    # A checksum of every context's logits, position-weighted so that any change shows:
    # sum over contexts c and symbols v of (c * V + v + 1) * logit, modulo the prime 2^61 - 1.
    weights = np.arange(1, logits.size + 1, dtype=object).reshape(logits.shape)
    checksum = int((weights * logits.astype(object)).sum() % ((1 << 61) - 1))
    expected = {
        "source": "data/model-f32.safetensors, quantised by make_q8_fixture.py",
        "logit_frac_bits": LOGIT_FRAC_BITS,
        "all_contexts_checksum": checksum,
        "contexts": [[int(c) for c in contexts[i]] for i in picked],
        "logits": [[int(v) for v in logits[i]] for i in picked],
    }
    with open(os.path.join(HERE, "q8-expected.json"), "w") as f:
        json.dump(expected, f, separators=(",", ":"))
        f.write("\n")
    for i in range(n_layers):
        w = q[f"layers.{i}.weight"].astype(np.int64)
        bias, _, sh = row_integers(q, i)
        bound = np.abs(w).sum(1) * 128 + np.abs(bias)
        print(f"layer {i}: worst |acc| {bound.max()}, largest |bias| {np.abs(bias).max()}, "
              f"shifts {sh.min()}..{sh.max()}")
    if args.val:
        print(f"validation loss {val_loss(q, n_layers, vocab, block, args.val):.6f}")


if __name__ == "__main__":
    main()
