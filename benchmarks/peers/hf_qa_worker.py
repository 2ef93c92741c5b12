"""The transformers question-answering pipeline, for benchmarks/peers_reader.py.

transformers 5 removed ``pipeline("question-answering")``; its users run transformers 4.57.x, so this
runs in a separate Python that has it (``python -m venv V && V/bin/pip install torch==2.13.0
"transformers<5"``), never in odqa's environment, and imports nothing of odqa. The model is a reader
exported by ``odqa export-reader`` (AutoModelForQuestionAnswering).

Input: a JSON job {"model", "threads", "batch_size", "mode": "throughput"|"latency", "settings": {max_seq_len,
doc_stride, max_answer_len, max_question_len}, "questions": [{"id", "question", "contexts": [text, ...]}]}.
Output (stdout, one JSON object): {"answers": {id: text}, "seconds": total, "latencies": [seconds per
question] (latency mode), "transformers": version}.

Each question is read against all its contexts; the pipeline returns one best span per context and the
question's answer is the span with the highest score (the pipeline's own probability), as a pipeline user
would pick it. ``align_to_words=False``: the default widens every span to a whole pre-tokenizer "word",
which for e5-small's tokenizer (Metaspace without splitting) is the whole passage (EM 0).

  PEERS_PYTHON benchmarks/peers/hf_qa_worker.py JOB.json
"""
from __future__ import annotations

import json
import sys
import time


def best_spans(outputs, counts: list[int]) -> list[str]:
    """The highest-scoring span of each question, from the pipeline's one output per (question, context)."""
    if isinstance(outputs, dict):
        outputs = [outputs]
    answers, at = [], 0
    for n in counts:
        group = [o[0] if isinstance(o, list) else o for o in outputs[at:at + n]]
        at += n
        answers.append(max(group, key=lambda o: o["score"])["answer"] if group else "")
    return answers


def main() -> int:
    job = json.loads(open(sys.argv[1], encoding="utf-8").read())
    import torch
    import transformers
    from transformers import pipeline

    torch.set_num_threads(int(job.get("threads", 2)))
    qa = pipeline("question-answering", model=job["model"], tokenizer=job["model"], device=-1)
    settings = dict(job["settings"], align_to_words=False, top_k=1, handle_impossible_answer=False)
    batch_size = int(job.get("batch_size", 1))
    questions = job["questions"]

    def read(group: list[dict]) -> list[str]:
        flat_q = [q["question"] for q in group for _ in q["contexts"]]
        flat_c = [c for q in group for c in q["contexts"]]
        with torch.inference_mode():
            outputs = qa(question=flat_q, context=flat_c, batch_size=batch_size, **settings)
        return best_spans(outputs, [len(q["contexts"]) for q in group])

    read(questions[:1])  # warm-up: first-call costs are not reading
    answers, latencies = {}, []
    start = time.perf_counter()
    if job.get("mode") == "latency":
        for q in questions:
            began = time.perf_counter()
            answers[q["id"]] = read([q])[0]
            latencies.append(time.perf_counter() - began)
    else:
        for q, text in zip(questions, read(questions)):
            answers[q["id"]] = text
    seconds = time.perf_counter() - start
    print(json.dumps({"answers": answers, "seconds": seconds, "latencies": latencies,
                      "transformers": transformers.__version__}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
