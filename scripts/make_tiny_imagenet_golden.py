#!/usr/bin/python3
"""Golden values for the Tiny-ImageNet pipelines (Tests/DatasetsTests/TinyImageNetPipelineTests.swift):

- resize: torch.nn.functional.interpolate(mode='bilinear', align_corners=False, antialias=False) of a
  small fixed float image [3, 5, 7] (x[c, h, w] = (c*71 + h*37 + w*13) % 256) to several sizes, up and down;
- resize_uint8: torchvision.transforms.functional.resize of a uint8 image (same pattern, [3, 6, 6]) to 10x10
  and 3x4 with BILINEAR, antialias=False (rounded to uint8, the loader's path before normalisation);
- crops: RandomResizedCrop.get_params (scale (0.08, 1), ratio (3/4, 4/3)) on 64x64 for seeds 0..199, with the
  draws torch made (scale, aspect ratio after exp, top, left), so Swift can replay them; the replay is
  checked against torchvision's own get_params here. Plus fallback cases (every attempt rejected) on 64x64,
  20x64 and 64x20 images from the transcription below.

Run from the repository root: /usr/bin/python3 scripts/make_tiny_imagenet_golden.py
"""
import json
import math

import torch
import torch.nn.functional as F
import torchvision.transforms as T
import torchvision.transforms.functional as TF

OUT = "Tests/DatasetsTests/Golden/tiny_imagenet_pipeline.json"
SCALE, RATIO = (0.08, 1.0), (3.0 / 4.0, 4.0 / 3.0)


def pattern(C, H, W):
    return [[[(c * 71 + h * 37 + w * 13) % 256 for w in range(W)] for h in range(H)] for c in range(C)]


def replay(height, width, draws, attempts=10):
    """torchvision 0.14 RandomResizedCrop.get_params with its random numbers taken from `draws`."""
    area = height * width
    it = iter(draws)
    for _ in range(attempts):
        kind, s = next(it)
        assert kind == "scale"
        kind, r = next(it)
        assert kind == "ratio"
        target_area = area * s
        w = int(round(math.sqrt(target_area * r)))
        h = int(round(math.sqrt(target_area / r)))
        if 0 < w <= width and 0 < h <= height:
            kind, i = next(it)
            kind2, j = next(it)
            assert (kind, kind2) == ("below", "below")
            assert 0 <= i <= height - h and 0 <= j <= width - w
            return i, j, h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(RATIO):
        w = width
        h = int(round(w / min(RATIO)))
    elif in_ratio > max(RATIO):
        h = height
        w = int(round(h * max(RATIO)))
    else:
        w = width
        h = height
    return (height - h) // 2, (width - w) // 2, h, w


def torch_draws(seed, height, width, attempts=10):
    """The numbers get_params draws for this seed, in its order."""
    torch.manual_seed(seed)
    area = height * width
    log_ratio = torch.log(torch.tensor(RATIO))
    out = []
    for _ in range(attempts):
        s = torch.empty(1).uniform_(SCALE[0], SCALE[1]).item()
        r = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1])).item()
        out += [("scale", s), ("ratio", r)]
        w = int(round(math.sqrt(area * s * r)))
        h = int(round(math.sqrt(area * s / r)))
        if 0 < w <= width and 0 < h <= height:
            out.append(("below", torch.randint(0, height - h + 1, size=(1,)).item()))
            out.append(("below", torch.randint(0, width - w + 1, size=(1,)).item()))
            break
    return out


def main():
    g = {}
    x = torch.tensor(pattern(3, 5, 7), dtype=torch.float32)
    g["resize"] = {"input": x.flatten().tolist(), "shape": [3, 5, 7], "cases": []}
    for oh, ow in [(9, 11), (3, 4), (5, 7), (12, 5), (1, 1), (16, 16)]:
        y = F.interpolate(x[None], size=(oh, ow), mode="bilinear", align_corners=False, antialias=False)[0]
        g["resize"]["cases"].append({"size": [oh, ow], "output": y.flatten().tolist()})

    u = torch.tensor(pattern(3, 6, 6), dtype=torch.uint8)
    g["resize_uint8"] = {"input": u.flatten().tolist(), "shape": [3, 6, 6], "cases": []}
    for oh, ow in [(10, 10), (3, 4)]:
        y = TF.resize(u, [oh, ow], interpolation=T.InterpolationMode.BILINEAR, antialias=False)
        g["resize_uint8"]["cases"].append({"size": [oh, ow], "output": y.flatten().tolist()})

    crops = []
    img = torch.zeros(3, 64, 64)
    for seed in range(200):
        draws = torch_draws(seed, 64, 64)
        torch.manual_seed(seed)
        expected = T.RandomResizedCrop.get_params(img, list(SCALE), list(RATIO))
        assert tuple(expected) == replay(64, 64, draws), (seed, expected, replay(64, 64, draws))
        crops.append({"height": 64, "width": 64, "attempts": 10, "draws": draws, "box": list(expected)})
    reject = [("scale", 1.0), ("ratio", 4.0 / 3.0)] * 10
    for h, w in [(64, 64), (20, 64), (64, 20)]:
        crops.append({"height": h, "width": w, "attempts": 10, "draws": reject, "box": list(replay(h, w, reject))})
    g["crops"] = [{**c, "draws": [[k, v] for k, v in c["draws"]]} for c in crops]

    with open(OUT, "w") as f:
        json.dump(g, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
