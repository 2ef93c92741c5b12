"""Does static int8 pay on THIS CPU? One batch of real windows through the reader's encoder, four ways.

torch fp32 (what `--quantize none` runs), OpenVINO fp32 (the same graph, no quantization), OpenVINO int8
as `--quantize int8` builds it (``StaticInt8Reader``, calibrated on real windows), and int8 with the
word-embedding lookup left in fp32 (to rule out the 250k-row embedding table). int8 kernels need
AVX-512 VNNI / AVX-VNNI / AMX to be fast; the machine line names which of them the CPU has.

  flock /tmp/odqa-cpu.lock python benchmarks/int8_engines.py
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reader_learning import DEFAULT_READER_DIR, shown_path  # noqa: E402
from report import KORQUAD, machine, publish  # noqa: E402

from odqa.data.split import split_by_article  # noqa: E402


def seconds_per_call(fn, repeats: int) -> float:
    fn()  # warm-up (compilation, first-call allocations)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--reader_dir", default=str(DEFAULT_READER_DIR))
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--calibration_windows", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    if not (Path(args.reader_dir) / "config.json").is_file():
        sys.exit(f"{args.reader_dir}: no trained reader; run benchmarks/reader_learning.py first.")

    import torch
    from transformers import DataCollatorWithPadding

    from odqa.reader.modeling import load_reader
    from odqa.reader.processor import QAProcessor, WindowConfig, model_inputs
    from odqa.reader.tokenizer import load_tokenizer
    from odqa.runtime.quantization import (
        StaticInt8Reader,
        _encoder_module,
        calibration_sample,
    )

    train_file, eval_file = split_by_article(Path(args.dataset), Path(tempfile.mkdtemp(prefix="odqa_int8_")))
    tokenizer = load_tokenizer(args.reader_dir)
    processor = QAProcessor(tokenizer, WindowConfig())
    columns = ["input_ids", "attention_mask", "token_type_ids"]

    def windows(path: Path):
        features = model_inputs(processor.get_test_features(processor.get_eval_examples(str(path))))
        return {c: list(features[c]) for c in columns if c in features.column_names}

    calibration = calibration_sample(windows(train_file), args.calibration_windows)
    held_out = windows(eval_file)
    rows = [{c: held_out[c][i] for c in held_out} for i in range(args.batch_size)]  # the first held-out windows
    batch = {k: v for k, v in DataCollatorWithPadding(tokenizer)(rows).items() if k in columns}
    model = load_reader(args.reader_dir).eval()
    encoder = _encoder_module(model.backbone)

    def torch_fp32():
        with torch.inference_mode():
            encoder(**batch)

    int8 = StaticInt8Reader(model)
    int8.calibrate(calibration)
    ov, nncf = int8.encoder.openvino, int8.encoder.nncf
    names = int8.encoder.input_names
    feed = {n: batch[n].numpy() for n in names}
    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": torch.get_num_threads()}
    with torch.no_grad():
        graph = ov.convert_model(encoder, example_input={n: batch[n][:1] for n in names},
                                 input=[(n, [-1, -1], ov.Type.i64) for n in names])
    fp32_request = core.compile_model(graph, "CPU", config).create_infer_request()
    samples = [{n: torch.tensor([w[n]]).numpy() for n in names} for w in calibration]
    no_gather = nncf.quantize(graph, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(samples), ignored_scope=nncf.IgnoredScope(types=["Gather"]))
    no_gather_request = core.compile_model(no_gather, "CPU", config).create_infer_request()

    timings = [
        ("torch fp32 (`--quantize none`)", seconds_per_call(torch_fp32, args.repeats)),
        ("OpenVINO fp32", seconds_per_call(lambda: fp32_request.infer(feed), args.repeats)),
        ("OpenVINO int8 (`--quantize int8`)", seconds_per_call(lambda: int8(**batch), args.repeats)),
        ("OpenVINO int8, embedding lookup in fp32", seconds_per_call(lambda: no_gather_request.infer(feed),
                                                                     args.repeats)),
    ]
    tokens = int(batch["attention_mask"].sum())
    lines = [
        "## Static int8 vs fp32 on this CPU (`benchmarks/int8_engines.py`)", "",
        "Command: `flock /tmp/odqa-cpu.lock python benchmarks/int8_engines.py`  ",
        f"Machine: {machine()}.  ",
        f"Reader: `{shown_path(Path(args.reader_dir))}` (its encoder only; the span head is tiny). Input: the first "
        f"{args.batch_size} windows of held-out KorQuAD questions ({tokens} tokens, padded to "
        f"{batch['input_ids'].shape[1]}); int8 calibrated on {len(calibration)} training windows; mean of "
        f"{args.repeats} calls after a warm-up.", "",
        "| engine | seconds per batch | vs torch fp32 |", "|---|---:|---:|",
    ]
    lines += [f"| {label} | {sec:.2f} | {timings[0][1] / sec:.2f}x |" for label, sec in timings]
    text = "\n".join(lines)
    publish("int8_engines", text, args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
