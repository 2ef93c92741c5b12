"""Reading, side by side: odqa's reader vs the transformers question-answering pipeline (issue 28 §2).

Same trained reader weights (``--reader``, trained on the EVEN articles of the KorQuAD half; exported for
the pipeline with ``odqa export-reader``), same questions (the ODD articles), same passages, same
max_seq_len 384 / doc_stride 128 / max_answer_len 30 / max_question_len 64, CPU, 2 threads:

* **end to end**: each question against its bm25 top-k passages (odqa bm25 defaults over all passages of
  the half, retrieved once and given to every runner). odqa at each of ``--precisions`` (``ExtractiveReader``,
  as ``inference.py``/``odqa infer --quantize`` read: PyTorch fp32, OpenVINO int8 / fp32 / bf16; odqa's
  defaults, spans compared across passages with the retriever weight 0.2) and the pipeline (one best span per
  passage, the question's answer the highest ``score``, as a pipeline user picks it; ``align_to_words=False``);
* **gold passage**: each question against its own paragraph. odqa as ``train_mrc_v2.py --do_eval`` runs it
  (``train_reader`` with ``do_eval``: features, forward, post-processing) and the pipeline.

Speed: questions/s over the first ``--speed_questions`` questions (after one warm-up question), the
pipeline at each of ``--batch_sizes``; latency: one question at a time over the first
``--latency_questions`` (p50). Quality: EM/F1 (KorQuAD 1.0 rules) on ALL held-out questions, read in
cached chunks (``--work_dir``; a rerun reads only what is missing). The pipeline needs transformers 4.x
(5 removed it) in its own environment, never odqa's:

  python -m venv /work/hf4-venv && /work/hf4-venv/bin/pip install torch==2.13.0 "transformers<5"
  flock /tmp/odqa-cpu.lock python benchmarks/peers_reader.py --reader models/bench/korquad_even_v2 \\
      --hf_python /work/hf4-venv/bin/python
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_common import read_cached  # noqa: E402
from report import KORQUAD, machine, publish  # noqa: E402

WORKER = Path(__file__).resolve().parent / "peers" / "hf_qa_worker.py"
SETTINGS = {"max_seq_len": 384, "doc_stride": 128, "max_answer_len": 30, "max_question_len": 64}
THREADS = 2
RUNNER_NAMES = {"none": "odqa fp32", "int8": "odqa int8", "fp32-openvino": "odqa fp32, OpenVINO",
                "bf16": "odqa bf16, OpenVINO"}


def check_hf_python(python: str) -> str:
    done = subprocess.run([python, "-c", "import transformers, torch; print(transformers.__version__)"],
                          capture_output=True, text=True)
    version = done.stdout.strip()
    if done.returncode != 0 or not version.startswith("4."):
        sys.exit(f"{python}: needs transformers 4.x (the question-answering pipeline; 5 removed it), got "
                 f"{version or done.stderr.strip().splitlines()[-1:]}. Make one: python -m venv V && "
                 "V/bin/pip install torch==2.13.0 'transformers<5'; then pass --hf_python V/bin/python.")
    return version


def run_pipeline(python: str, model: Path, questions: list[dict], batch_size: int, mode: str) -> dict:
    """The pipeline over ``questions`` ({"id", "question", "contexts"}) in the other environment."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump({"model": str(model), "threads": THREADS, "batch_size": batch_size, "mode": mode,
                   "settings": SETTINGS, "questions": questions}, f, ensure_ascii=False)
    try:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        done = subprocess.run([python, str(WORKER), f.name], capture_output=True, text=True, env=env)
    finally:
        os.unlink(f.name)
    if done.returncode != 0:
        sys.exit(f"the pipeline worker failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def held_out_questions(payload: dict) -> list[dict]:
    """Every question of the odd articles, with its gold answers and paragraph."""
    return [{"id": qa["id"], "question": qa["question"], "golds": [a["text"] for a in qa["answers"]],
             "answers": qa["answers"], "context": p["context"], "title": article["title"]}
            for article in payload["data"][1::2] for p in article["paragraphs"] for qa in p["qas"]]


def retrieve_once(questions: list[dict], top_k: int, work: Path) -> dict[str, list[dict]]:
    """{question id: its top-k passages} from odqa bm25 over the whole half, cached: every runner reads these."""
    from odqa.retrieval import get_retriever, load_corpus
    from odqa.retrieval.table import retrieve_hits
    from odqa.utils.io import read_json, write_json

    path = work / f"retrieved_top{top_k}.json"
    if path.is_file():
        return read_json(path)
    retriever = get_retriever("bm25").index(load_corpus(str(KORQUAD)))
    hits = retrieve_hits(retriever, [{"id": q["id"], "question": q["question"]} for q in questions], top_k)
    found = {q["id"]: [{"id": h.passage.id, "text": h.passage.text, "title": h.passage.title, "score": h.score}
                       for h in group] for q, group in zip(questions, hits)}
    write_json(path, found)
    return found


def scores(predictions: dict[str, str], questions: list[dict]) -> dict:
    from odqa.metrics import compute_metrics

    return compute_metrics(predictions, {q["id"]: q["golds"] for q in questions})


class OdqaRunner:
    """odqa's ``ExtractiveReader`` over given passages (what inference.py does after retrieval)."""

    def __init__(self, reader_dir: Path, precision: str) -> None:
        from inference_common import load_reader

        from odqa.data.split import split_by_article

        even, _ = split_by_article(KORQUAD, Path(tempfile.mkdtemp(prefix="odqa_peers_split_")))
        self.reader = load_reader(reader_dir, precision, even)  # int8: calibrated on the training articles

    def answers(self, questions: list[dict], contexts: list[list[dict]]) -> list[str]:
        from odqa.pipeline import PassageToRead

        passages = [[PassageToRead(passage_id=c["id"], text=c["text"], title=c.get("title") or "",
                                   score=float(c.get("score") or 0.0), rank=rank)
                     for rank, c in enumerate(group, 1)] for group in contexts]
        found = self.reader.read([q["question"] for q in questions], passages)
        return [a[0].text if a else "" for a in found]


def do_eval_answers(reader_dir: Path, questions: list[dict], work: Path) -> tuple[dict[str, str], float]:
    """odqa's gold-passage path as ``train_mrc_v2.py --do_eval`` runs it: (predictions, seconds of the call)."""
    from odqa.reader.train import (
        ReaderArguments,
        ReaderDataArguments,
        ReaderTrainingArguments,
        train_reader,
    )
    from odqa.utils.io import read_json, write_json

    by_paragraph: dict[str, dict] = {}
    for q in questions:
        group = by_paragraph.setdefault(q["context"], {"title": q["title"], "context": q["context"], "qas": []})
        group["qas"].append({"id": q["id"], "question": q["question"], "answers": q["answers"]})
    data = [{"title": g["title"], "paragraphs": [{"context": g["context"], "qas": g["qas"]}]}
            for g in by_paragraph.values()]
    eval_file = write_json(work / f"do_eval_{len(questions)}.json", {"version": "peers", "data": data})
    out = work / f"do_eval_{len(questions)}_out"
    start = time.perf_counter()
    train_reader(ReaderArguments(model=str(reader_dir)), ReaderDataArguments(eval_dataset=str(eval_file)),
                 ReaderTrainingArguments(output_dir=str(out), do_eval=True, overwrite_output_dir=True,
                                         disable_tqdm=True, report_to="none"))
    return read_json(out / "predictions.json"), time.perf_counter() - start


def wants_quality(quality: str, path_name: str, precision: str) -> bool:
    """Whether ``--quality`` asks for EM/F1 of this path and precision."""
    if quality == "none" or (quality == "gold" and path_name != "gold passage"):
        return False
    return not (quality == "fp32" and precision in ("int8", "int8-dynamic"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", required=True,
                        help="a reader folder with the linear head: one trained on the EVEN articles (honest "
                             "held-out EM), or the shipped one (odqa_home()/models/e5-small-korquad: same weights "
                             "for both runners, but it has seen the odd articles, so EM is not held-out)")
    parser.add_argument("--hf_python", required=True, help="a Python with torch 2.13.0 and transformers 4.x")
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--speed_questions", type=int, default=40)
    parser.add_argument("--latency_questions", type=int, default=20)
    parser.add_argument("--batch_sizes", default="1,4,16", help="the pipeline's batch sizes to time")
    parser.add_argument("--precisions", default="none,int8,fp32-openvino,bf16",
                        help="odqa's --quantize values to run end to end (none: PyTorch fp32)")
    parser.add_argument("--quality", choices=("all", "fp32", "gold", "none"), default="all",
                        help="EM/F1 on every held-out question (cached chunks) of: all: every runner on both paths; "
                             "fp32: all but odqa int8 (slower than fp32 on an AVX2-only CPU: ~1 h more; OpenVINO fp32 "
                             "and bf16 included); gold: the gold-passage path only; none: speed only")
    parser.add_argument("--work_dir", default="outputs/peers_reader", help="exports, retrieval and chunk cache")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    reader_dir = Path(args.reader)
    if not (reader_dir / "config.json").is_file():
        sys.exit(f"{reader_dir}: not a reader folder; train one with benchmarks/korquad_reader.py --train_on even.")
    if not KORQUAD.is_file():
        sys.exit(f"{KORQUAD}: the KorQuAD 1.0 dev half is not there (../shared/data/korquad).")
    hf_version = check_hf_python(args.hf_python)

    import torch

    from odqa.reader.export import export_reader

    torch.set_num_threads(THREADS)
    work = Path(args.work_dir) / reader_dir.name
    work.mkdir(parents=True, exist_ok=True)
    exported = work / "hf"
    if not (exported / "config.json").is_file():
        export_reader(str(reader_dir), exported)
    questions = held_out_questions(json.loads(KORQUAD.read_text(encoding="utf-8")))
    retrieved = retrieve_once(questions, args.top_k, work)
    paths = {"end to end": lambda q: retrieved[q["id"]], "gold passage": lambda q: [{"id": q["id"], "text": q["context"]}]}

    rows: dict[tuple[str, str], dict] = {}
    speed, latency = questions[1:1 + args.speed_questions], questions[1:1 + args.latency_questions]
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    for path_name, contexts in paths.items():
        def as_jobs(group):
            return [{"id": q["id"], "question": q["question"], "contexts": [c["text"] for c in contexts(q)]}
                    for q in group]

        for size in batch_sizes:  # the pipeline: throughput at each batch size, latency at 1
            run = run_pipeline(args.hf_python, exported, as_jobs(speed), size, "throughput")
            row = rows.setdefault((path_name, f"transformers pipeline, batch {size}"), {})
            row["qps"] = len(speed) / run["seconds"]
        run = run_pipeline(args.hf_python, exported, as_jobs(latency), 1, "latency")
        rows[(path_name, "transformers pipeline, batch 1")]["p50"] = statistics.median(run["latencies"])
        best = max(batch_sizes, key=lambda b: rows[(path_name, f"transformers pipeline, batch {b}")]["qps"])
        rows[(path_name, f"transformers pipeline, batch {best}")]["best"] = True

        precisions = args.precisions.split(",") if path_name == "end to end" else ("none",)
        for precision in precisions:
            name = RUNNER_NAMES.get(precision, f"odqa {precision}")
            if path_name == "gold passage":
                # the call's fixed costs (loading the reader, Kiwi, setting up) are those of a one-question call:
                # questions/s is the marginal rate, as the pipeline's excludes its loading and warm-up
                name = "odqa fp32 (train_mrc_v2.py --do_eval)"
                _, one = do_eval_answers(reader_dir, speed[:1], work)
                _, seconds = do_eval_answers(reader_dir, speed, work)
                rows[(path_name, name)] = {"qps": (len(speed) - 1) / max(seconds - one, 1e-9), "precision": precision}
                continue
            runner = OdqaRunner(reader_dir, precision)
            runner.answers(questions[:1], [contexts(questions[0])])  # warm-up (int8 calibration, OpenVINO compile)
            start = time.perf_counter()
            runner.answers(speed, [contexts(q) for q in speed])
            row = rows[(path_name, name)] = {"qps": len(speed) / (time.perf_counter() - start), "precision": precision}
            times = []
            for q in latency:
                began = time.perf_counter()
                runner.answers([q], [contexts(q)])
                times.append(time.perf_counter() - began)
            row["p50"] = statistics.median(times)
            if wants_quality(args.quality, path_name, precision):
                key = f"{path_name.replace(' ', '_')}_{precision}"
                found = read_cached(key, questions, work, lambda chunk: dict(zip(
                    [q["id"] for q in chunk], runner.answers(chunk, [contexts(q) for q in chunk]))))
                row.update(scores(found, questions))
        if wants_quality(args.quality, path_name, "none"):
            key = f"{path_name.replace(' ', '_')}_pipeline"
            found = read_cached(key, questions, work, lambda chunk: run_pipeline(
                args.hf_python, exported, as_jobs(chunk), best, "throughput")["answers"])
            rows[(path_name, f"transformers pipeline, batch {best}")].update(scores(found, questions))
            if path_name == "gold passage":
                key = "gold_passage_do_eval"
                found = read_cached(key, questions, work, lambda chunk: do_eval_answers(reader_dir, chunk, work)[0],
                                    chunk_size=len(questions))
                rows[(path_name, "odqa fp32 (train_mrc_v2.py --do_eval)")].update(scores(found, questions))

    report(rows, args, hf_version, len(questions))
    return 0


def trained_on(reader_dir: Path) -> str:
    """What the reader was trained on, from the provenance record the shipped reader carries."""
    record = reader_dir / "provenance.json"
    if record.is_file() and json.loads(record.read_text(encoding="utf-8")).get("train_on") == "all":
        return ("the shipped reader, trained on ALL articles of the half: the same weights for every runner, but "
                "it has seen the odd articles, so EM/F1 compare the runners, not held-out quality")
    return "trained on the even articles"


def report(rows: dict, args, hf_version: str, n_questions: int) -> None:
    def f(x, spec=".2f"):
        return format(x, spec) if isinstance(x, (int, float)) else "–"

    lines = [
        "## Peers: odqa's reader vs the transformers question-answering pipeline (`benchmarks/peers_reader.py`)", "",
        f"Command: `flock /tmp/odqa-cpu.lock python benchmarks/peers_reader.py --reader {args.reader} --hf_python "
        f"<venv with transformers 4.x>/bin/python --top_k {args.top_k} --quality {args.quality}`  ",
        f"Machine: {machine()}; the pipeline: transformers {hf_version} in its own environment (5 removed it), same "
        f"torch, {THREADS} threads.  ",
        f"Reader: `{Path(args.reader).name}` ({trained_on(Path(args.reader))}), exported with `odqa export-reader` for "
        f"the pipeline (equal logits); {json.dumps(SETTINGS)}; pipeline `align_to_words=False`, best span per "
        "passage, the question's answer the highest score. Speed: the first "
        f"{args.speed_questions} held-out questions (latency: {args.latency_questions}, one at a time); EM/F1: all "
        f"{n_questions} held-out questions.", "",
        "| path | runner | questions/s | p50 latency, one question (s) | EM | F1 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (path_name, name), row in rows.items():
        label = f"{name} (its best batch)" if row.get("best") else name
        lines.append(f"| {path_name} | {label} | {f(row.get('qps'))} | {f(row.get('p50'))} | "
                     f"{f(row.get('exact_match'))} | {f(row.get('f1'))} |")
    for path_name in ("end to end", "gold passage"):
        ours = next((r for (p, n), r in rows.items() if p == path_name and r.get("precision") == "none"), None)
        theirs = next((r for (p, n), r in rows.items() if p == path_name and r.get("best")), None)
        if ours and theirs:
            lines.append("")
            lines.append(f"{path_name}: odqa fp32 / the pipeline at its best batch size = "
                         f"**{ours['qps'] / theirs['qps']:.2f}x** questions/s (goal ≥ 2x)"
                         + (f", EM {ours['exact_match'] - theirs['exact_match']:+.2f}" if "exact_match" in ours
                            and "exact_match" in theirs else "") + ".")
    publish("peers_reader", "\n".join(lines), args.no_write)


if __name__ == "__main__":
    raise SystemExit(main())
