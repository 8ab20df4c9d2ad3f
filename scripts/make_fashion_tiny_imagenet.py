#!/usr/bin/python3
"""Writes Fashion-MNIST as a `tiny-imagenet-200` tree of 64x64 RGB JPEGs, so the Tiny-ImageNet data path
(`sqakd data prepare tiny-imagenet --from OUT/tiny-imagenet-200`) runs on real images where no
Tiny-ImageNet exists (the tests, smoke suites).

Layout, as the cs231n release:
  wnids.txt                                  the 10 wnids n00000000..n00000009 (class k = Fashion label k),
                                             listed in reverse so that readers must sort them
  train/<wnid>/images/<wnid>_<i>.JPEG        the first --train-per-class images of the class (train file order)
  train/<wnid>/<wnid>_boxes.txt              one full-image box per image (ignored by readers, as the real one)
  val/images/val_<i>.JPEG + val/val_annotations.txt   (--val-layout annotations, the release's)
  val/<wnid>/val_<i>.JPEG                            (--val-layout per-wnid, the authors' DALI layout)
The val images are the first --val-per-class images of each class of the t10k file, numbered in t10k order.
Images: 28x28 grey resized to 64x64 with PIL's bilinear filter, replicated to RGB (with --grayscale-every K,
<wnid>_<i> and val_<i> with i % K == K-1 are stored as 1-channel grey JPEGs instead, as some real
Tiny-ImageNet images are), JPEG quality 90. The output is deterministic (same bytes for the same options and PIL).
Needs python3-pil and python3-numpy; reads Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
"""
import argparse
import gzip
import os
import shutil

import numpy as np
from PIL import Image

FASHION = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    n = int.from_bytes(data[4:8], "big")
    if magic == 2051:
        rows, cols = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)
    return np.frombuffer(data, np.uint8, offset=8)


def wnid(k):
    return "n%08d" % k


def picks(labels, per_class):
    """Indices of the first per_class images of each class, in file order."""
    seen = [0] * 10
    out = []
    for i, l in enumerate(labels):
        if seen[l] < per_class:
            seen[l] += 1
            out.append(i)
    if min(seen) < per_class:
        raise SystemExit("only %d images in the smallest class, asked for %d" % (min(seen), per_class))
    return out


def save(img28, path, grey):
    im = Image.fromarray(img28, mode="L").resize((64, 64), Image.BILINEAR)
    if not grey:
        im = im.convert("RGB")
    im.save(path, format="JPEG", quality=90)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder that receives tiny-imagenet-200/ (replaced if present)")
    p.add_argument("--train-per-class", type=int, default=100, help="train images per class (max 6000)")
    p.add_argument("--val-per-class", type=int, default=20, help="val images per class (max 1000)")
    p.add_argument("--val-layout", choices=["annotations", "per-wnid"], default="annotations")
    p.add_argument("--grayscale-every", type=int, default=0, help="store every K-th image as a grey JPEG (0: none)")
    p.add_argument("--source", default=FASHION, help="folder with the Fashion-MNIST .gz files")
    a = p.parse_args()

    root = os.path.join(a.out, "tiny-imagenet-200")
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    with open(os.path.join(root, "wnids.txt"), "w") as f:
        for k in reversed(range(10)):
            f.write(wnid(k) + "\n")

    def grey(i):
        return a.grayscale_every > 0 and i % a.grayscale_every == a.grayscale_every - 1

    x = read_idx(os.path.join(a.source, "train-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(a.source, "train-labels-idx1-ubyte.gz"))
    per = {k: 0 for k in range(10)}
    boxes = {k: [] for k in range(10)}
    for i in picks(y, a.train_per_class):
        k = int(y[i])
        d = os.path.join(root, "train", wnid(k), "images")
        os.makedirs(d, exist_ok=True)
        name = "%s_%d.JPEG" % (wnid(k), per[k])
        per[k] += 1
        save(x[i], os.path.join(d, name), grey(per[k] - 1))
        boxes[k].append("%s\t0\t0\t63\t63\n" % name)
    for k in range(10):
        with open(os.path.join(root, "train", wnid(k), "%s_boxes.txt" % wnid(k)), "w") as f:
            f.writelines(boxes[k])

    x = read_idx(os.path.join(a.source, "t10k-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(a.source, "t10k-labels-idx1-ubyte.gz"))
    lines = []
    for n, i in enumerate(picks(y, a.val_per_class)):
        k = int(y[i])
        name = "val_%d.JPEG" % n
        if a.val_layout == "annotations":
            d = os.path.join(root, "val", "images")
            lines.append("%s\t%s\t0\t0\t63\t63\n" % (name, wnid(k)))
        else:
            d = os.path.join(root, "val", wnid(k))
        os.makedirs(d, exist_ok=True)
        save(x[i], os.path.join(d, name), grey(n))
    if a.val_layout == "annotations":
        with open(os.path.join(root, "val", "val_annotations.txt"), "w") as f:
            f.writelines(lines)
    print("wrote %s: %d train and %d val images, 10 classes" % (root, 10 * a.train_per_class, 10 * a.val_per_class))


if __name__ == "__main__":
    main()
