"""Why `--quantize int8-dynamic` gives ~1.3-1.4x, not 2x: one reader forward (16 windows x 384 tokens), fp32
vs PyTorch dynamic int8 per quantized engine, and the fp32 operator profile (Linear layers are only part of the
time; attention, GELU and copies stay fp32). `--quantize int8` (static, OpenVINO) quantizes those too.

  flock /tmp/odqa-cpu.lock python benchmarks/inference_int8_profile.py [--reader DIR]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_common import find_reader, machine  # noqa: E402


def seconds_per_forward(model, inputs, repeats: int) -> float:
    import torch

    with torch.inference_mode():
        model(**inputs)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            model(**inputs)
    return (time.perf_counter() - start) / repeats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", help="reader folder (default: the one benchmarks/reader_learning.py saves)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    from odqa.reader.modeling import load_reader
    from odqa.runtime.quantization import quantize_reader

    model = load_reader(str(find_reader(args.reader))).eval()
    g = torch.Generator().manual_seed(0)
    inputs = {"input_ids": torch.randint(1000, 20000, (args.batch, args.seq), generator=g),
              "attention_mask": torch.ones(args.batch, args.seq, dtype=torch.long),
              "token_type_ids": torch.zeros(args.batch, args.seq, dtype=torch.long)}
    print(f"machine: {machine()}; {args.batch} windows x {args.seq} tokens, mean of {args.repeats} forwards")
    fp32 = seconds_per_forward(model, inputs, args.repeats)
    print(f"fp32: {fp32:.3f} s")
    default_engine = torch.backends.quantized.engine
    for engine in [e for e in ("x86", "fbgemm", "onednn") if e in torch.backends.quantized.supported_engines]:
        torch.backends.quantized.engine = engine
        int8 = seconds_per_forward(quantize_reader(model, "int8-dynamic"), inputs, args.repeats)
        print(f"int8-dynamic ({engine}{', default' if engine == default_engine else ''}): {int8:.3f} s = {fp32 / int8:.2f}x fp32")
    torch.backends.quantized.engine = default_engine
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(**inputs)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
