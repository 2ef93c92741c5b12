"""Questions without an answer: SQuAD 2.0 / KLUE-MRC data, the squad_v2 metric against the official
script's accounting, the no-answer threshold (choose, store, apply) in the reader, infer, evaluate and serve."""
from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from odqa.data import load_mrc_dataset, read_mrc_rows
from odqa.errors import ConfigError, DataError
from odqa.metrics.squad_v2 import compute_squad_v2
from odqa.pipeline import Answer
from odqa.reader.abstention import (
    THRESHOLD_FILE,
    apply_threshold,
    no_answer_scores_from_nbest,
    read_stored_threshold,
    resolve_threshold,
    write_threshold,
)
from tests.conftest import SAMPLE_DIR, squad_payload
from tests.test_pipeline import WINDOW, save_tiny_reader

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def squad_v2_payload() -> dict:
    """The tiny SQuAD file with its last question of each paragraph made unanswerable, SQuAD 2.0 style."""
    payload = squad_payload()
    for article in payload["data"]:
        qa = article["paragraphs"][0]["qas"][-1]
        qa["plausible_answers"], qa["answers"], qa["is_impossible"] = qa["answers"], [], True
        for other in article["paragraphs"][0]["qas"][:-1]:
            other["is_impossible"] = False
    return payload


def write(path: Path, payload) -> Path:
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return path


# ---------------------------------------------------------------- data
def test_squad_v2_rows_load_as_unanswerable_and_train(tmp_path):
    path = write(tmp_path / "v2.json", squad_v2_payload())
    dataset = load_mrc_dataset(path, require_answers=True)  # unanswerable rows are labelled, not missing answers
    impossible = [r for r in dataset if r["is_impossible"]]
    assert len(impossible) == 3 and all(not r["answers"]["text"] for r in impossible)
    assert sum(1 for r in dataset if r["answers"]["text"]) == 6

    from odqa.reader.processor import QAProcessor
    from tests.conftest import all_texts, wordpiece_tokenizer

    processor = QAProcessor(wordpiece_tokenizer(all_texts()), max_seq_length=64, doc_stride=24, max_query_length=16)
    no_answer = {r["id"] for r in dataset if r["is_impossible"]}
    features = processor.get_eval_features(dataset)  # the training labels, with the example id of each window
    labels = list(zip(features["example_id"], features["start_positions"], features["end_positions"]))
    # every window of an unanswerable question is labelled "no answer" (the CLS token, position 0)
    assert {eid for eid, _, _ in labels} >= no_answer
    assert all(s == e == 0 for eid, s, e in labels if eid in no_answer)
    assert any(s > 0 for eid, s, _ in labels if eid not in no_answer)


def test_klue_rows_guid_question_type_and_flat_empty_answers(tmp_path):
    rows = [
        {"guid": "klue-1", "title": "t", "context": "서울은 수도이다.", "question": "수도는?",
         "answers": {"text": ["서울"], "answer_start": [0]}, "is_impossible": False, "question_type": 1},
        {"guid": "klue-2", "title": "t", "context": "서울은 수도이다.", "question": "부산의 인구는?",
         "answers": {"text": [], "answer_start": []}, "is_impossible": True, "question_type": 3},
        {"guid": "flat-3", "title": "t", "context": "서울은 수도이다.", "question": "대전은?", "answers": []},
    ]
    dataset = load_mrc_dataset(write(tmp_path / "klue.json", rows), require_answers=True)
    assert dataset["id"] == ["klue-1", "klue-2", "flat-3"]
    assert dataset["is_impossible"] == [False, True, True]
    assert dataset["question_type"] == [1, 3, 0]
    # a row with no answers field at all is unlabelled (test data), not unanswerable
    unlabelled = [{"id": "u", "context": "서울은 수도이다.", "question": "수도는?"}]
    assert read_mrc_rows(write(tmp_path / "test.json", unlabelled))[0]["is_impossible"] is False
    with pytest.raises(DataError, match="not marked unanswerable"):
        load_mrc_dataset(tmp_path / "test.json", require_answers=True)


def test_csv_flags_and_contradictions_name_file_and_id(tmp_path):
    csv = tmp_path / "rows.csv"
    csv.write_text("id,context,question,answers,is_impossible\n"
                   "a,서울은 수도이다.,수도는?,\"{\"\"text\"\": [\"\"서울\"\"], \"\"answer_start\"\": [0]}\",false\n"
                   "b,서울은 수도이다.,인구는?,,true\n", encoding="utf-8")
    dataset = load_mrc_dataset(csv, require_answers=True)
    assert dataset["is_impossible"] == [False, True]

    says_impossible_with_answer = [{"id": "x1", "context": "서울은 수도이다.", "question": "수도는?",
                                    "answers": {"text": ["서울"], "answer_start": [0]}, "is_impossible": True}]
    with pytest.raises(DataError, match=r"bad\.json.*is_impossible but carrying an answer.*'x1'"):
        load_mrc_dataset(write(tmp_path / "bad.json", says_impossible_with_answer))
    says_answerable_without = [{"id": "x2", "context": "서울은 수도이다.", "question": "수도는?",
                                "answers": {"text": [], "answer_start": []}, "is_impossible": False}]
    with pytest.raises(DataError, match=r"reverse\.json.*'x2'"):
        load_mrc_dataset(write(tmp_path / "reverse.json", says_answerable_without), require_answers=True)
    bad_flag = [{"id": "x3", "context": "c", "question": "q", "is_impossible": "maybe"}]
    with pytest.raises(DataError, match=r"flag\.json: row 'x3': 'is_impossible' must be true or false"):
        read_mrc_rows(write(tmp_path / "flag.json", bad_flag))


def test_check_data_counts_unanswerable_questions_apart(tmp_path, char_tokenizer_dir):
    path = write(tmp_path / "v2.json", squad_v2_payload())
    out = subprocess.run([sys.executable, "-m", "odqa", "check-data", "--dataset", str(path), "--model",
                          str(char_tokenizer_dir), "--max_seq_len", "64", "--doc_stride", "24",
                          "--max_query_len", "16"], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert (report["unanswerable_examples"], report["answerable_examples"]) == (3, 6)
    assert report["round_trip_exact_match"] == 100.0  # the round trip is over the 6 answerable ones


# ---------------------------------------------------------------- metric
def _official_squad_v2(dataset: dict, preds: dict, na_probs: dict | None, na_prob_thresh: float = 1.0) -> dict:
    """SQuAD 2.0's evaluate-v2.0.py, step by step as its public script does it (the oracle below)."""
    import collections
    import re
    import string

    def normalize_answer(s):
        def remove_articles(text):
            return re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", text)

        def white_space_fix(text):
            return " ".join(text.split())

        def remove_punc(text):
            exclude = set(string.punctuation)
            return "".join(ch for ch in text if ch not in exclude)

        return white_space_fix(remove_articles(remove_punc(s.lower())))

    def get_tokens(s):
        return normalize_answer(s).split() if s else []

    def compute_f1(a_gold, a_pred):
        gold_toks, pred_toks = get_tokens(a_gold), get_tokens(a_pred)
        common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
        num_same = sum(common.values())
        if len(gold_toks) == 0 or len(pred_toks) == 0:
            return int(gold_toks == pred_toks)
        if num_same == 0:
            return 0
        precision, recall = 1.0 * num_same / len(pred_toks), 1.0 * num_same / len(gold_toks)
        return (2 * precision * recall) / (precision + recall)

    qid_to_has_ans, exact_raw, f1_raw = {}, {}, {}
    for article in dataset["data"]:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                qid_to_has_ans[qa["id"]] = bool(qa["answers"])
                gold_answers = [a["text"] for a in qa["answers"] if normalize_answer(a["text"])] or [""]
                exact_raw[qa["id"]] = max(int(normalize_answer(a) == normalize_answer(preds[qa["id"]]))
                                          for a in gold_answers)
                f1_raw[qa["id"]] = max(compute_f1(a, preds[qa["id"]]) for a in gold_answers)
    probs = na_probs if na_probs is not None else {k: 0.0 for k in preds}

    def apply(scores):
        return {q: (float(not qid_to_has_ans[q]) if probs[q] > na_prob_thresh else s) for q, s in scores.items()}

    def make(exact, f1, qids=None):
        qids = qids or list(exact)
        return {"exact": 100.0 * sum(exact[k] for k in qids) / len(qids),
                "f1": 100.0 * sum(f1[k] for k in qids) / len(qids), "total": len(qids)}

    exact_t, f1_t = apply(exact_raw), apply(f1_raw)
    out = make(exact_t, f1_t)
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [k for k, v in qid_to_has_ans.items() if v == wanted]
        if qids:
            out.update({f"{prefix}_{k}": v for k, v in make(exact_t, f1_t, qids).items()})

    def find_best_thresh(scores):
        cur_score = best_score = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
        best_thresh = 0.0
        for qid in sorted(probs, key=lambda k: probs[k]):
            if qid not in scores:
                continue
            diff = scores[qid] if qid_to_has_ans[qid] else (-1 if preds[qid] else 0)
            cur_score += diff
            if cur_score > best_score:
                best_score, best_thresh = cur_score, probs[qid]
        return 100.0 * best_score / len(scores), best_thresh

    if na_probs is not None:
        out["best_exact"], out["best_exact_thresh"] = find_best_thresh(exact_raw)
        out["best_f1"], out["best_f1_thresh"] = find_best_thresh(f1_raw)
    return out


def _perturbed_v2(dataset: dict, seed: int) -> tuple[dict, dict]:
    """Mark every third question unanswerable; predictions: gold, a fragment, another answer, an abstention,
    an article-only string; no-answer scores at random (with ties)."""
    rng = random.Random(seed)
    qas = [qa for a in dataset["data"] for p in a["paragraphs"] for qa in p["qas"]]
    for i, qa in enumerate(qas):
        if i % 3 == 2:
            qa["answers"], qa["is_impossible"] = [], True
    texts = [qa["answers"][0]["text"] for qa in qas if qa["answers"]]
    preds, probs = {}, {}
    for i, qa in enumerate(qas):
        gold = qa["answers"][0]["text"] if qa["answers"] else rng.choice(texts)
        preds[qa["id"]] = [gold, gold[: max(1, len(gold) // 2)], rng.choice(texts), "", "the", f"the {gold}!"][rng.randrange(6)]
        probs[qa["id"]] = round(rng.uniform(-3, 3), 1)
    return preds, probs


def test_squad_v2_equals_the_official_scorer_to_the_last_digit(tmp_path):
    from odqa.metrics.cli import labelled_references_of

    dataset = json.loads((SAMPLE_DIR / "validation.json").read_text(encoding="utf-8"))
    preds, probs = _perturbed_v2(dataset, seed=0)
    rows = read_mrc_rows(write(tmp_path / "v2.json", dataset))
    references = labelled_references_of(rows)
    assert sum(1 for v in references.values() if not v) > 10 and len(references) == len(preds)
    # the official script always applies --na-prob-thresh (1.0 by default) when given na_probs
    for na_probs, thresh in ((None, None), (probs, 1.0), (probs, 0.5), (probs, -1.0)):
        official = _official_squad_v2(dataset, preds, na_probs, 1.0 if thresh is None else thresh)
        ours = compute_squad_v2(preds, references, na_probs, thresh, "squad_v2")
        for key, value in official.items():
            assert ours[key] == value, key  # exact float equality, not approx
        assert 0 < official["NoAns_exact"] < 100 and 0 < official["HasAns_exact"] < 100


def test_squad_v2_on_the_korquad_half_and_korquad_rules(korquad_half):
    dataset = json.loads(korquad_half.read_text(encoding="utf-8"))
    preds, probs = _perturbed_v2(dataset, seed=1)
    from odqa.metrics.cli import labelled_references_of

    rows = read_mrc_rows(korquad_half)
    impossible = {qa["id"] for a in dataset["data"] for p in a["paragraphs"] for qa in p["qas"] if not qa["answers"]}
    references = {k: ([] if k in impossible else v) for k, v in labelled_references_of(rows).items()}
    official = _official_squad_v2(dataset, preds, probs)
    ours = compute_squad_v2(preds, references, probs, 1.0, metric="squad_v2")  # the official default threshold
    assert {k: ours[k] for k in official} == official
    korean = compute_squad_v2(preds, references, probs, 1.0, metric="korquad_v2")
    # character F1 gives partial credit token F1 does not; "the" is an abstention only under SQuAD's rules
    # (English articles removed), so KorQuAD's count fewer right abstentions
    assert korean["HasAns_f1"] > ours["HasAns_f1"] and korean["NoAns_exact"] < ours["NoAns_exact"]
    the = [q for q, text in preds.items() if q in impossible and text == "the" and probs[q] <= 1.0]
    assert korean["NoAns_exact"] == pytest.approx(ours["NoAns_exact"] - 100.0 * len(the) / ours["NoAns_total"])


def test_best_threshold_and_answer_rate_by_hand():
    references = {"a": ["서울"], "b": [], "c": ["부산"], "d": []}
    preds = {"a": "서울", "b": "대전", "c": "광주", "d": "인천"}
    scores = {"a": -2.0, "b": 1.0, "c": 0.5, "d": 3.0}
    always = compute_squad_v2(preds, references, scores, metric="korquad_v2")
    assert always["exact"] == 25.0 and always["answer_rate"] == 100.0
    # answering only a (threshold -2): a right, b and d abstain right, c abstains wrong: 3/4
    assert (always["best_exact"], always["best_exact_thresh"]) == (75.0, -2.0)
    chosen = compute_squad_v2(preds, references, scores, -2.0, metric="korquad_v2")
    assert (chosen["exact"], chosen["HasAns_exact"], chosen["NoAns_exact"], chosen["answer_rate"]) == \
        (75.0, 50.0, 100.0, 25.0)
    with pytest.raises(ConfigError, match="no-answer score"):
        compute_squad_v2(preds, references, {"a": 0.0}, metric="korquad_v2")


def test_best_threshold_with_a_limit_on_the_has_answer_drop():
    from odqa.metrics.squad_v2 import choose_best_threshold

    references = {"a": ["서울"], "b": [], "c": ["부산"], "d": []}
    preds = {"a": "서울", "b": "대전", "c": "부산", "d": "인천"}
    scores = {"a": -2.0, "b": 1.0, "c": 2.0, "d": 1.5}
    # best overall EM answers a only (75, HasAns 50); within 10 points of always answering (HasAns 100) the
    # only threshold answers everything
    assert choose_best_threshold(preds, references, scores) == -2.0
    assert choose_best_threshold(preds, references, scores, max_has_answer_drop=50) == -2.0
    assert choose_best_threshold(preds, references, scores, max_has_answer_drop=10) == 2.0
    # a threshold answers every question of its score or none: e (right) ties with b and f (wrong), so
    # "a and e answered, b and f not" (5 of 7 right) is no threshold, whatever order the tie is visited in;
    # of the real ones with a and e answered, 2.0 is best (4 of 7 right; 1.0 gives 3 of 7)
    references.update(e=["대구"], f=[], g=["광주"])
    preds.update(e="대구", f="목포", g="광주")
    scores.update(e=1.0, f=1.0, g=2.0)
    for order in (["a", "e", "b", "f", "c", "g", "d"], ["a", "b", "f", "e", "c", "g", "d"]):
        ordered = {q: scores[q] for q in order}
        threshold = choose_best_threshold(preds, references, ordered, max_has_answer_drop=50)
        assert threshold == 2.0
        applied = compute_squad_v2(preds, references, ordered, threshold, metric="korquad_v2")
        assert applied["exact"] == pytest.approx(400 / 7) and applied["HasAns_exact"] == 100.0
    with pytest.raises(ConfigError, match="at least 0"):
        choose_best_threshold(preds, references, scores, max_has_answer_drop=-1)


# ---------------------------------------------------------------- the decision
def _answer(text: str, no_answer_score: float) -> Answer:
    return Answer(text=text, score=1.0, reader_score=1.0, probability=1.0, passage_id="p", title="", start=0,
                  end=len(text), retriever_score=0.0, passage_rank=1, no_answer_score=no_answer_score)


def test_threshold_marks_every_answer_of_an_abstaining_question():
    answers = apply_threshold([_answer("서울", 0.5), _answer("부산", -1.0)], 0.0)
    assert all(a.no_answer for a in answers) and [a.text for a in answers] == ["서울", "부산"]  # spans kept
    assert not any(a.no_answer for a in apply_threshold([_answer("서울", -0.5)], 0.0))
    assert not any(a.no_answer for a in apply_threshold([_answer("서울", 9.0)], None))  # no threshold: answer
    assert resolve_threshold("auto", 1.5) == 1.5 and resolve_threshold("off", 1.5) is None
    assert resolve_threshold("-0.25", None) == -0.25 and resolve_threshold("auto", None) is None
    with pytest.raises(ConfigError, match="--no_answer_threshold must be a number"):
        resolve_threshold("sometimes", None)


def test_postprocessing_scores_each_span_against_its_window(char_tokenizer_dir):
    import numpy as np
    from datasets import Dataset
    from transformers import AutoTokenizer

    from odqa.reader.processor import QAProcessor

    processor = QAProcessor(AutoTokenizer.from_pretrained(str(char_tokenizer_dir)), WINDOW)
    examples = Dataset.from_dict({"id": ["q"], "title": [""], "context": ["서울은 한국의 수도이다."],
                                  "question": ["수도는?"]})
    features = processor.get_test_features(examples)
    rng = np.random.default_rng(0)
    n = len(features["input_ids"][0])
    logits = (rng.normal(size=(1, n)).astype(np.float32), rng.normal(size=(1, n)).astype(np.float32))
    _, nbest = processor.post_processing_function(examples, features, logits)
    for entry in nbest["q"]:
        assert entry["no_answer_score"] == pytest.approx(
            entry["null_score"] - entry["start_logit"] - entry["end_logit"], abs=1e-5)
        assert entry["no_answer_score"] == pytest.approx(-entry["score"], abs=1e-5)  # scored against null
    assert no_answer_scores_from_nbest(nbest) == {"q": nbest["q"][0]["no_answer_score"]}
    assert no_answer_scores_from_nbest({"none": []}) == {"none": math.inf}


@pytest.fixture(scope="module")
def reader_dir(tmp_path_factory, char_tokenizer_dir):
    return save_tiny_reader(tmp_path_factory.mktemp("no_answer_reader"), char_tokenizer_dir)


@pytest.fixture(scope="module")
def v2_dataset(tmp_path_factory):
    return write(tmp_path_factory.mktemp("v2") / "dev.json", squad_v2_payload())


def _infer(reader_dir, dataset, out, *extra):
    return subprocess.run([sys.executable, "-m", "odqa", "infer", "--model", str(reader_dir), "--corpus",
                           str(dataset), "--dataset_path", str(dataset), "--output_dir", str(out), "--quiet",
                           "--max_seq_len", "64", "--doc_stride", "24", "--max_query_len", "16", "--top_k_retrieval",
                           "2", "--retrieval_tokenizer", "bigram", *extra], capture_output=True, text=True)


def test_choose_store_and_apply_a_threshold_end_to_end(reader_dir, v2_dataset, tmp_path):
    run = _infer(reader_dir, v2_dataset, tmp_path / "always", "--do_eval", "--metric", "korquad_v2")
    assert run.returncode == 0, run.stderr
    metrics = json.loads((tmp_path / "always" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["answer_rate"] == 100.0 and metrics["NoAns_exact"] == 0.0 and metrics["NoAns_total"] == 3
    nbest_file = tmp_path / "always" / "nbest_predictions.json"
    nbest = json.loads(nbest_file.read_text(encoding="utf-8"))
    assert all("no_answer_score" in e and e["no_answer"] is False for entries in nbest.values() for e in entries)

    chosen = subprocess.run([sys.executable, "-m", "odqa", "choose-threshold", "--dataset", str(v2_dataset),
                             "--nbest", str(nbest_file), "--reader", str(reader_dir)],
                            capture_output=True, text=True)
    assert chosen.returncode == 0, chosen.stderr
    record = json.loads(chosen.stdout)
    threshold = read_stored_threshold(reader_dir)
    assert threshold == record["no_answer_threshold"]
    # the stored threshold reproduces the best EM of the official search (whose threshold, when abstaining
    # everywhere is best, is 0.0 and does not)
    assert record["with_threshold"]["exact"] == metrics["best_exact"] >= record["always_answer"]["exact"]

    # infer picks the stored threshold up: predictions hold "" for abstentions, the figures are the best ones
    run = _infer(reader_dir, v2_dataset, tmp_path / "stored", "--do_eval", "--metric", "korquad_v2")
    assert run.returncode == 0, run.stderr
    stored = json.loads((tmp_path / "stored" / "metrics.json").read_text(encoding="utf-8"))
    assert stored["no_answer_threshold"] == threshold and stored["exact"] == metrics["best_exact"]
    predictions = json.loads((tmp_path / "stored" / "predictions.json").read_text(encoding="utf-8"))
    scores = no_answer_scores_from_nbest(json.loads((tmp_path / "stored" / "nbest_predictions.json")
                                                    .read_text(encoding="utf-8")))
    assert all((predictions[q] == "") == (scores[q] > threshold) for q in predictions)
    # odqa evaluate gives the same figures from the files
    scored = subprocess.run([sys.executable, "-m", "odqa", "evaluate", "--dataset", str(v2_dataset), "--predictions",
                             str(tmp_path / "always" / "predictions.json"), "--metric", "korquad_v2", "--nbest",
                             str(nbest_file), "--no_answer_threshold", str(threshold)],
                            capture_output=True, text=True, check=True)
    assert json.loads(scored.stdout)["exact"] == stored["exact"]
    # off: always answer again
    run = _infer(reader_dir, v2_dataset, tmp_path / "off", "--no_answer_threshold", "off")
    assert run.returncode == 0, run.stderr
    assert all(json.loads((tmp_path / "off" / "predictions.json").read_text(encoding="utf-8")).values())
    (Path(reader_dir) / THRESHOLD_FILE).unlink()


def test_train_mrc_eval_scores_unanswerable_questions(reader_dir, v2_dataset, tmp_path):
    """train-mrc --do_eval used to leave unanswerable questions out of EM; now SQuAD 2.0 accounting, equal to
    `odqa evaluate --metric korquad_v2` on the predictions and n-best it wrote."""
    out = tmp_path / "eval"
    run = subprocess.run([sys.executable, "train_mrc_v2.py", "--do_eval", "--model", str(reader_dir),
                          "--eval_dataset", str(v2_dataset), "--output_dir", str(out), "--max_seq_len", "64",
                          "--doc_stride", "24", "--max_query_len", "16", "--disable_tqdm", "true"],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 0, run.stderr
    metrics = json.loads((out / "run_info.json").read_text(encoding="utf-8"))["results"]["eval"]
    official = json.loads(subprocess.run(
        [sys.executable, "-m", "odqa", "evaluate", "--dataset", str(v2_dataset), "--predictions",
         str(out / "predictions.json"), "--metric", "korquad_v2", "--nbest", str(out / "nbest_predictions.json")],
        capture_output=True, text=True, check=True).stdout)
    assert metrics["eval_no_ans_total"] == official["NoAns_total"] == 3
    assert metrics["eval_has_ans_total"] == official["HasAns_total"] == 6
    assert metrics["eval_exact_match"] == pytest.approx(official["exact"])  # the 3 unanswerable count as missed
    assert metrics["eval_exact_match"] == pytest.approx(official["HasAns_exact"] * 6 / 9)
    assert metrics["eval_has_ans_exact_match"] == pytest.approx(official["HasAns_exact"])
    assert metrics["eval_best_exact_match"] == pytest.approx(official["best_exact"])
    # the reported threshold reproduces the best EM when applied (the official one need not)
    applied = json.loads(subprocess.run(
        [sys.executable, "-m", "odqa", "evaluate", "--dataset", str(v2_dataset), "--predictions",
         str(out / "predictions.json"), "--metric", "korquad_v2", "--nbest", str(out / "nbest_predictions.json"),
         "--no_answer_threshold", str(metrics["eval_best_threshold"])],
        capture_output=True, text=True, check=True).stdout)
    assert applied["exact"] == pytest.approx(metrics["eval_best_exact_match"])
    assert applied["NoAns_exact"] == pytest.approx(metrics["eval_best_no_ans_accuracy"])
    assert applied["answer_rate"] == pytest.approx(metrics["eval_best_answer_rate"])


def test_abstaining_pipeline_and_a_broken_threshold_file(reader_dir, tmp_path):
    from odqa.pipeline import ExtractiveReader, ODQAPipeline
    from odqa.retrieval import get_retriever, load_corpus

    reader = ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, batch_size=8, show_progress=False)
    assert reader.no_answer_threshold is None
    retriever = get_retriever("bm25", tokenizer="bigram").index(load_corpus(str(SAMPLE_DIR / "validation.json")))
    pipe = ODQAPipeline(retriever, reader)
    result = pipe.run([{"id": "q", "question": "경복궁이 처음 지어진 해는?"}], top_k=2)
    best = result.answers[0][0]
    assert result.predictions()["q"] == best.text != ""
    pipe.read_options.no_answer_threshold = best.no_answer_score - 1.0  # just below: abstain
    result = pipe.run([{"id": "q", "question": "경복궁이 처음 지어진 해는?"}], top_k=2)
    assert result.predictions()["q"] == "" and result.answers[0][0].no_answer and result.answers[0][0].text
    assert result.nbest()["q"][0]["no_answer"] is True

    write_threshold(reader_dir, 0.25, {"dataset": "dev.json"})
    assert ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW).no_answer_threshold == 0.25
    (Path(reader_dir) / THRESHOLD_FILE).write_text('{"no_answer_threshold": "high"}', encoding="utf-8")
    with pytest.raises(DataError, match=r"no_answer_threshold\.json.*finite number.*choose-threshold"):
        ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW)
    (Path(reader_dir) / THRESHOLD_FILE).unlink()


def test_serve_says_no_answer_and_still_offers_the_passages(reader_dir):
    pytest.importorskip("fastapi", reason="odqa serve needs FastAPI: pip install odqa[serve]")
    from fastapi.testclient import TestClient

    from odqa.pipeline import ExtractiveReader, ODQAPipeline
    from odqa.retrieval import get_retriever, load_corpus
    from odqa.serve.app import ServeOptions, create_app

    reader = ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, batch_size=8, show_progress=False)
    retriever = get_retriever("bm25", tokenizer="bigram").index(load_corpus(str(SAMPLE_DIR / "validation.json")))
    pipe = ODQAPipeline(retriever, reader)
    with TestClient(create_app(pipe, ServeOptions(top_k=2))) as client:
        answered = client.post("/answer", json={"question": "경복궁이 처음 지어진 해는?"}).json()["results"][0]
        assert answered["answers"] and answered["no_answer"] is False
        assert "no_answer_score" in answered["answers"][0]
        pipe.read_options.no_answer_threshold = answered["answers"][0]["no_answer_score"] - 1.0
        body = client.post("/answer", json={"question": "경복궁이 처음 지어진 해는?"}).json()["results"][0]
        assert body["answers"] == [] and body["no_answer"] is True and "no_answer_score" in body["no_answer_reason"]
        assert len(body["passages"]) == 2
        assert client.get("/health").json()["no_answer_threshold"] == pipe.read_options.no_answer_threshold


def test_ask_prints_an_abstention_with_the_guesses_after_it():
    from odqa.pipeline.ask import format_answers

    answers = apply_threshold([_answer("서울", 2.0), _answer("부산", 3.0)], 1.0)
    text = format_answers("수도는?", answers)
    assert "no answer" in text.splitlines()[1] and "서울" in text.splitlines()[2]
    assert "no answer" not in format_answers("수도는?", apply_threshold([_answer("서울", 0.5)], 1.0))


def test_infer_summary_says_no_answer_found_not_an_empty_string():
    from odqa.pipeline.outputs import format_summary
    from odqa.pipeline.pipeline import PipelineResult

    questions = [{"id": "a", "question": "수도는?"}, {"id": "b", "question": "강은?"}, {"id": "c", "question": "산은?"}]
    answers = [apply_threshold([_answer("서울", 2.0)], 1.0), apply_threshold([_answer("한강", 0.5)], 1.0), []]
    run_info = {"retriever": "bm25", "top_k_retrieval": 2, "read_mode": "per passage"}
    lines = format_summary(PipelineResult(questions, [[], [], []], answers), None, run_info).splitlines()
    answer_lines = [line for line in lines if line.strip().startswith("answer:")]
    assert answer_lines[0].startswith("   answer: no answer found") and "'서울'" in answer_lines[0]  # the guess
    assert answer_lines[1] == "   answer: '한강' (from p, score 1)"
    assert answer_lines[2].startswith("   answer: no answer found") and "''" not in answer_lines[2]
