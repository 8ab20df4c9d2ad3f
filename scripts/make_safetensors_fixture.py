"""Safetensors interop fixtures for Tests/NNTests/SafetensorsTests.swift.

Regenerate (from the repository root, with Debian's python3-torch 1.13; no `safetensors` package needed):

    /usr/bin/python3 scripts/make_safetensors_fixture.py

The bytes are laid out exactly as the Rust `safetensors` library (0.4) writes them: tensors ordered by
dtype (descending position in its Dtype enum: I64, F64, F32, I32, BF16, F16, ...) then by name; compact
JSON header in that order, `__metadata__` first; header padded with spaces to a multiple of 8.
(Checked once against `safetensors.numpy.save` 0.4.5: identical bytes. The Rust library keeps
`__metadata__` in a hash map, so with several metadata keys only their order may differ; the Swift
writer sorts them.)

Writes, under Tests/NNTests/Golden/:
    interop_dtypes.safetensors   one tensor per readable dtype (F32, F64, F16, BF16, I64, I32), a 0-d
                                 int64 `num_batches_tracked`, an empty tensor, metadata {"format": "pt"}
    interop_f32_i64.safetensors  F32 and I64 only (what the Swift writer emits); the Swift test re-encodes
                                 it and expects the same bytes
The expected values are hard-coded in the Swift test; keep the two in sync.
"""

import json
import os
import struct

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "Tests", "NNTests", "Golden")

# Position in the Rust library's Dtype enum (larger first in files).
DTYPE_ORDER = {"F16": 7, "BF16": 8, "I32": 9, "F32": 11, "F64": 12, "I64": 13}
TORCH_DTYPE = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
               torch.int64: "I64", torch.int32: "I32"}


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()  # little-endian on x86-64 and arm64


def write(path, tensors, metadata=None):
    entries = sorted(tensors.items(), key=lambda kv: (-DTYPE_ORDER[TORCH_DTYPE[kv[1].dtype]], kv[0].encode()))
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = dict(sorted(metadata.items()))
    for name, t in entries:
        blob = tensor_bytes(t)
        header[name] = {"dtype": TORCH_DTYPE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    print(f"wrote {os.path.relpath(path, ROOT)}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


def main():
    os.makedirs(GOLDEN, exist_ok=True)
    dtypes = {
        "conv.weight": (torch.arange(6, dtype=torch.float32) * 0.5 - 1.25).reshape(2, 3),
        "bn.running_var": torch.tensor([0.1, 2.5, 1e-3], dtype=torch.float64),
        "bn.num_batches_tracked": torch.tensor(1234, dtype=torch.int64),
        "half": torch.tensor([1.0, -2.5, 65504.0, 6.103515625e-05], dtype=torch.float16),
        "brain": torch.tensor([1.0, -3.0, 0.15625], dtype=torch.bfloat16),
        "ids": torch.tensor([-7, 2147483647], dtype=torch.int32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
    }
    write(os.path.join(GOLDEN, "interop_dtypes.safetensors"), dtypes, {"format": "pt"})
    f32_i64 = {
        "layer1.0.bn1.num_batches_tracked": torch.tensor(17, dtype=torch.int64),
        "layer1.0.bn1.weight": torch.tensor([1.0, 0.5, -0.25], dtype=torch.float32),
        "fc.bias": torch.tensor([[3.0e-8, -1.5e9]], dtype=torch.float32),
        "step": torch.tensor([5, -6], dtype=torch.int64),
    }
    write(os.path.join(GOLDEN, "interop_f32_i64.safetensors"), f32_i64, {"format": "pt"})


if __name__ == "__main__":
    main()
