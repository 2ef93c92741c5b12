"""What shipping the reader's weights in fp16 or int8 costs (issue 26: ≤ 50 MB, EM cost ≤ 0.3).

``e5-small-korquad`` ships only the weights fine-tuning changed (all but the frozen word embeddings),
packed by ``odqa.models.korquad_reader.pack_tensors``: fp16, or int8 per output row with an fp16 scale.
This takes a reader trained with the same recipe on the EVEN articles (``benchmarks/korquad_reader.py
--train_on even``), packs and restores its weights each way exactly as the shipped file is built, and
scores each version on ALL questions of the ODD articles (gold passage, KorQuAD 1.0 rules): the EM cost of
each format on articles the reader never saw, next to the file size it would ship as.

  flock /tmp/odqa-cpu.lock python benchmarks/reader_packing.py --reader models/bench/korquad_even_v2
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import KORQUAD, machine, publish  # noqa: E402

FORMATS = ("float32", "float16", "int8")


def packed_state(changed: dict, dtype: str) -> tuple[dict, int]:
    """(the reader's changed weights after packing and restoring them as ``dtype``, the packed file's size in
    bytes); float32: the weights as trained (nothing to replace), and their size in fp32."""
    from safetensors.torch import save_file

    from odqa.models.korquad_reader import pack_tensors, restore_tensors

    packed = changed if dtype == "float32" else pack_tensors(changed, dtype)
    with tempfile.TemporaryDirectory() as tmp:
        save_file({k: v.contiguous() for k, v in packed.items()}, str(Path(tmp) / "w.safetensors"))
        size = (Path(tmp) / "w.safetensors").stat().st_size
    return ({} if dtype == "float32" else restore_tensors(packed, dtype)), size


def gold_predictions(reader_dir: Path, state: dict, eval_file: Path, ids: set[str]) -> dict[str, str]:
    """{question id: answer} for the questions ``ids`` of ``eval_file``, read with their gold passage
    (ExtractiveReader, as inference.py reads)."""
    from odqa.reader.answers import PassageToRead
    from odqa.reader.extractive import ExtractiveReader
    from odqa.reader.modeling import load_reader
    from odqa.reader.processor import QAProcessor, WindowConfig
    from odqa.reader.tokenizer import load_tokenizer

    model = load_reader(str(reader_dir))
    if state:
        loaded = model.load_state_dict(state, strict=False)
        if loaded.unexpected_keys:
            raise RuntimeError(f"packed tensors the reader does not have: {loaded.unexpected_keys[:3]}")
    tokenizer = load_tokenizer(str(reader_dir))
    window = WindowConfig()
    rows = QAProcessor(tokenizer, window).get_eval_examples(str(eval_file))
    rows = rows.select([i for i, qid in enumerate(rows["id"]) if qid in ids])
    reader = ExtractiveReader(model, tokenizer, window, batch_size=64, show_progress=True)
    answers = reader.read(list(rows["question"]), [[PassageToRead(str(i), c)] for i, c in enumerate(rows["context"])])
    return {qid: (a[0].text if a else "") for qid, a in zip(rows["id"], answers)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", required=True, help="a reader trained on the EVEN articles, word embeddings frozen")
    parser.add_argument("--max_questions", type=int, default=None, help="smoke runs only (default: all)")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    reader_dir = Path(args.reader)
    if not (reader_dir / "model.safetensors").is_file():
        sys.exit(f"{reader_dir}: not a reader folder (no model.safetensors); train one with "
                 "benchmarks/korquad_reader.py --train_on even.")
    if not KORQUAD.is_file():
        sys.exit(f"{KORQUAD}: the KorQuAD 1.0 dev half is not there (../shared/data/korquad).")

    from odqa.data.split import split_by_article
    from odqa.metrics import compute_metrics
    from odqa.utils.io import read_json

    _, eval_file = split_by_article(KORQUAD, Path(tempfile.mkdtemp(prefix="odqa_packing_")))
    references = {qa["id"]: [a["text"] for a in qa["answers"]]
                  for article in read_json(eval_file)["data"] for p in article["paragraphs"] for qa in p["qas"]}
    if args.max_questions:
        keep = set(list(references)[:args.max_questions])
        references = {q: golds for q, golds in references.items() if q in keep}
    from odqa.models.korquad_reader import changed_weights

    changed, _ = changed_weights(reader_dir)
    rows = {}
    for dtype in FORMATS:
        start = time.perf_counter()
        state, size = packed_state(changed, dtype)
        predictions = gold_predictions(reader_dir, state, eval_file, set(references))
        rows[dtype] = {"scores": compute_metrics(predictions, references), "bytes": size,
                       "predictions": predictions, "seconds": time.perf_counter() - start}
        print(f"{dtype}: {rows[dtype]['scores']}", flush=True)

    base = rows["float32"]
    lines = [
        "## Shipping the reader in fp16 or int8: the EM cost (`benchmarks/reader_packing.py`)", "",
        f"Command: `flock /tmp/odqa-cpu.lock python benchmarks/reader_packing.py --reader {args.reader}`  ",
        f"Machine: {machine()}.  ",
        f"Reader: `{reader_dir.name}` (the shipped recipe trained on the even articles of {KORQUAD.name}); its "
        "changed weights (all but the frozen word embeddings, plus the head) packed and restored as "
        "`odqa.models.korquad_reader` ships them, scored on all "
        f"{base['scores']['total']} questions of the odd articles, gold passage, KorQuAD 1.0 rules.", "",
        "| weights shipped as | file MB | EM | F1 | EM vs fp32 | answers equal to fp32 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for dtype, row in rows.items():
        same = sum(row["predictions"][q] == base["predictions"][q] for q in references) / len(references)
        lines.append(f"| {dtype} | {row['bytes'] / 1e6:.1f} | {row['scores']['exact_match']:.2f} | "
                     f"{row['scores']['f1']:.2f} | {row['scores']['exact_match'] - base['scores']['exact_match']:+.2f} | "
                     f"{100 * same:.1f}% |")
    text = "\n".join(lines)
    publish("reader_packing", text, args.no_write)
    if args.no_write:
        return 0
    out = Path(args.reader) / "reader_packing.json"
    out.write_text(json.dumps({d: {k: v for k, v in r.items() if k != "predictions"} for d, r in rows.items()},
                              indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
