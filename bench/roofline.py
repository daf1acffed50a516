"""Compares op times with the memory-bandwidth floor of the device.

    python bench/roofline.py [--device cpu|cuda] [--repeat N]

The floor of an op is the bytes it must move divided by the copy bandwidth
measured here (a large tensor copy: bytes read + bytes written per second).
Bytes counted:
  GC forward+backward: read a and b in the forward and again in the backward,
      write grad a and grad b (the kernels always write both): 6 x image bytes.
  select_max_entropy: the two passes of the design (min/max, histogram) read x
      twice; the floor of an ideal single pass (read x once) is printed too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.report import heading  # noqa: E402
from xvertfast.infer.backends import resolve_device  # noqa: E402
from xvertfast.ops import gradient_correlation_loss, select_max_entropy  # noqa: E402


def timed(fn, device: str, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def copy_bandwidth(device: str, repeat: int) -> float:
    src = torch.empty(256 * 2**20, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    t = timed(lambda: dst.copy_(src), device, repeat)
    return 2 * src.numel() * 4 / t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu",
                        help="default: cuda where a GPU is, else cpu")
    parser.add_argument("--repeat", type=int, default=10,
                        help="timed runs after a warm-up, best taken; select_max_entropy: max(3, N // 3) (default: %(default)s)")
    args = parser.parse_args()
    try:
        resolve_device(args.device)
    except RuntimeError as e:
        parser.error(str(e))
    dev, rep = args.device, args.repeat

    print(f"{heading('roofline.py')}\n")
    bw = copy_bandwidth(dev, rep)
    print(f"device {dev}: copy bandwidth {bw / 1e9:.1f} GB/s")

    a = torch.rand(8, 1, 512, 512, device=dev, requires_grad=True)
    b = torch.rand(8, 1, 512, 512, device=dev)

    def gc_step():
        a.grad = None
        gradient_correlation_loss(a, b).backward()

    t = timed(gc_step, dev, rep)
    floor = 6 * a.numel() * 4 / bw
    print(f"GC fwd+bwd 8x512x512: {t * 1e3:.2f} ms, floor {floor * 1e3:.2f} ms, ratio {t / floor:.2f}")
    del a, b

    x = torch.randn(8, 128, 512, 512, device=dev)
    t = timed(lambda: select_max_entropy(x), dev, max(3, rep // 3))
    two = 2 * x.numel() * 4 / bw
    one = x.numel() * 4 / bw
    print(f"select_max_entropy 8x128x512x512: {t * 1e3:.1f} ms, two-pass floor {two * 1e3:.1f} ms "
          f"(ratio {t / two:.2f}), one-pass floor {one * 1e3:.1f} ms (ratio {t / one:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
