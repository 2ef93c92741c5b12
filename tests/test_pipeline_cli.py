"""`odqa infer` end to end on a tiny reader over data/sample: files, schemas, replay, evaluation, errors."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from odqa.cli import main
from tests.test_pipeline import SAMPLE_CORPUS, TINY_WINDOW, save_tiny_reader, write_question_subset


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, char_tokenizer_dir):
    root = tmp_path_factory.mktemp("infer")
    return {"root": root, "reader": save_tiny_reader(root, char_tokenizer_dir),
            "questions": write_question_subset(root / "questions.json")}


@pytest.fixture(scope="module")
def first_run(setup):
    """bm25 over all three sample files, index built into --index, evaluated."""
    out = setup["root"] / "run"
    argv = ["infer", "--retriever_type", "bm25", "--tokenizer", "bigram", "--corpus", *SAMPLE_CORPUS,
            "--index", str(setup["root"] / "idx"), "--model", str(setup["reader"]),
            "--dataset_path", str(setup["questions"]), "--top_k_retrieval", "3", "--do_eval", "--quiet",
            "--output_dir", str(out), *TINY_WINDOW]
    assert main(argv) == 0
    return out


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_output_files_and_their_schemas(setup, first_run):
    from odqa.retrieval import load_questions, load_retriever

    question_ids = [q["id"] for q in load_questions(setup["questions"])]
    predictions = _json(first_run / "predictions.json")
    assert list(predictions) == question_ids and all(isinstance(v, str) for v in predictions.values())

    corpus = load_retriever(setup["root"] / "idx").corpus  # the index was built and saved
    assert len(corpus) == 64  # 36 + 13 + 15 sample passages from the three files
    nbest = _json(first_run / "nbest_predictions.json")
    assert list(nbest) == question_ids
    for qid, answers in nbest.items():
        assert answers[0]["text"] == predictions[qid]
        for a in answers:
            assert {"text", "score", "reader_score", "probability", "passage_id", "title", "start", "end",
                    "retriever_score", "passage_rank"} <= set(a)
            assert corpus[a["passage_id"]].text[a["start"]:a["end"]] == a["text"]
            assert 1 <= a["passage_rank"] <= 3

    table = pd.read_csv(first_run / "retrieved.csv")
    assert list(table.columns) == ["id", "question", "passage_ids", "scores", "contexts"]
    assert list(table["id"]) == question_ids
    assert all(len(json.loads(ids)) == 3 for ids in table["passage_ids"])

    metrics = _json(first_run / "metrics.json")
    assert {"exact_match", "f1", "total", "retrieval", "questions_per_second", "seconds"} <= set(metrics)
    assert metrics["total"] == len(question_ids)
    assert {"recall@1", "recall@3"} <= set(metrics["retrieval"])
    assert 0 <= metrics["retrieval"]["recall@1"] <= metrics["retrieval"]["recall@3"] <= 100


def test_summary_is_printed(setup, tmp_path, capsys):
    argv = ["infer", "--index", str(setup["root"] / "idx"), "--model", str(setup["reader"]),
            "--dataset_path", str(setup["questions"]), "--top_k_retrieval", "2", "--do_eval", "--quiet",
            "--show_examples", "2", "--output_dir", str(tmp_path), *TINY_WINDOW]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "EM " in out and "F1 " in out and "recall@1" in out and "recall@2" in out
    assert out.count("Q: ") == 2 and "answer:" in out and "top passages:" in out


def test_scores_print_with_enough_digits_to_tell_passages_apart():
    from odqa.pipeline.outputs import format_score

    assert format_score(0.1234) == "0.1234" and format_score(0.1236) != format_score(0.1234)  # tf-idf cosines
    assert format_score(23.456) == "23.46" and format_score(-1.5) == "-1.5"  # bm25, reader logits


def test_evaluation_matches_odqa_evaluate(setup, first_run, capsys):
    capsys.readouterr()
    assert main(["evaluate", "--dataset", str(setup["questions"]), "--predictions",
                 str(first_run / "predictions.json")]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    metrics = _json(first_run / "metrics.json")
    assert (metrics["exact_match"], metrics["f1"], metrics["total"]) == \
        (evaluated["exact_match"], evaluated["f1"], evaluated["total"])


def test_recall_matches_eval_retrieval_of_the_same_index(setup, first_run, capsys, tmp_path):
    capsys.readouterr()
    assert main(["eval-retrieval", "--dataset", str(setup["questions"]), "--index", str(setup["root"] / "idx"),
                 "--top_k", "1", "3"]) == 0
    reference = json.loads(capsys.readouterr().out)
    retrieval = _json(first_run / "metrics.json")["retrieval"]
    assert retrieval["recall@1"] == pytest.approx(reference["recall@1"], abs=1e-3)
    assert retrieval["recall@3"] == pytest.approx(reference["recall@3"], abs=1e-3)


def test_csv_replay_gives_the_same_predictions(setup, first_run, tmp_path):
    out = tmp_path / "replay"
    argv = ["infer", "--retriever_type", "csv", "--csv", str(first_run / "retrieved.csv"),
            "--model", str(setup["reader"]), "--dataset_path", str(setup["questions"]), "--top_k_retrieval", "3",
            "--quiet", "--output_dir", str(out), *TINY_WINDOW]
    assert main(argv) == 0
    assert _json(out / "predictions.json") == _json(first_run / "predictions.json")
    replayed = _json(out / "nbest_predictions.json")
    original = _json(first_run / "nbest_predictions.json")
    for qid in original:
        assert [(a["passage_id"], a["start"], a["end"]) for a in replayed[qid]] == \
            [(a["passage_id"], a["start"], a["end"]) for a in original[qid]]
    assert (out / "retrieved.csv").read_text(encoding="utf-8") == (first_run / "retrieved.csv").read_text(encoding="utf-8")


def test_concat_mode_answers_come_from_retrieved_passages(setup, first_run, tmp_path):
    out = tmp_path / "concat"
    argv = ["infer", "--index", str(setup["root"] / "idx"), "--model", str(setup["reader"]), "--read_mode", "concat",
            "--dataset_path", str(setup["questions"]), "--top_k_retrieval", "3", "--quiet",
            "--output_dir", str(out), *TINY_WINDOW]
    assert main(argv) == 0
    from odqa.retrieval import load_retriever

    corpus = load_retriever(setup["root"] / "idx").corpus
    table = pd.read_csv(out / "retrieved.csv")
    retrieved = {qid: json.loads(ids) for qid, ids in zip(table["id"], table["passage_ids"])}
    nbest = _json(out / "nbest_predictions.json")
    assert not (out / "metrics.json").exists()  # no --do_eval
    for qid, answers in nbest.items():
        for a in answers:
            assert a["passage_id"] in retrieved[qid]
            assert corpus[a["passage_id"]].text[a["start"]:a["end"]] == a["text"]


def test_missing_index_model_and_corpus_are_clear_errors(setup, tmp_path, capsys):
    base = ["infer", "--dataset_path", str(setup["questions"]), "--output_dir", str(tmp_path / "o"), "--quiet"]
    assert main(base + ["--index", str(tmp_path / "no_index"), "--model", str(setup["reader"])]) == 2
    err = capsys.readouterr().err
    assert "no_index: index directory not found" in err and "--corpus" in err and "Traceback" not in err

    assert main(base + ["--corpus", str(tmp_path / "missing.jsonl"), "--model", str(setup["reader"])]) == 2
    assert "missing.jsonl: corpus file not found" in capsys.readouterr().err

    assert main(base + ["--index", str(setup["root"] / "idx"), "--model", str(tmp_path / "no_model")]) == 2
    err = capsys.readouterr().err
    assert "model folder not found" in err and "no_model" in err and "odqa train-mrc" in err

    assert main(base + ["--model", str(setup["reader"])]) == 2
    assert "give --index DIR" in capsys.readouterr().err


def test_eval_without_answers_fails_before_reading(setup, tmp_path, capsys):
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "x1", "question": "경복궁은 언제 지어졌나?"}, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    argv = ["infer", "--index", str(setup["root"] / "idx"), "--model", str(setup["reader"]), "--dataset_path",
            str(questions), "--output_dir", str(tmp_path / "o"), "--quiet", *TINY_WINDOW]
    assert main(argv) == 0  # questions without answers: predict only
    assert list(_json(tmp_path / "o" / "predictions.json")) == ["x1"]
    assert main(argv + ["--do_eval"]) == 2
    assert "q.jsonl" in capsys.readouterr().err


def test_int8_reading_calibrated_on_a_training_file(setup, first_run, tmp_path, capsys):
    base = ["infer", "--index", str(setup["root"] / "idx"), "--model", str(setup["reader"]), "--dataset_path",
            str(setup["questions"]), "--top_k_retrieval", "2", "--do_eval", "--quiet", *TINY_WINDOW]
    out = tmp_path / "int8"
    assert main(base + ["--output_dir", str(out), "--quantize", "int8", "--calibration_windows", "8",
                        "--calibration_dataset", SAMPLE_CORPUS[0]]) == 0
    metrics = _json(out / "metrics.json")
    assert metrics["quantize"] == "int8" and "calibrate" not in metrics["seconds"]  # calibrated before reading
    assert set(_json(out / "predictions.json")) == set(_json(first_run / "predictions.json"))
    capsys.readouterr()
    assert main(base + ["--output_dir", str(tmp_path / "x"), "--calibration_dataset", SAMPLE_CORPUS[0]]) == 2
    assert "--calibration_dataset only applies with --quantize int8" in capsys.readouterr().err


def test_a_klue_folder_and_max_samples_score_exactly_the_questions_asked(setup, first_run, tmp_path, capsys):
    """A save_to_disk DatasetDict (train + validation): infer predicts and scores its validation split only,
    --max_samples the first N of them; the original's flags (--tokenizer <spec>, --seed,
    --per_device_eval_batch_size) are accepted, the retrieval --tokenizer with a note."""
    from datasets import Dataset, DatasetDict

    from odqa.data import load_mrc_dataset

    rows = load_mrc_dataset(setup["questions"]).to_list()
    train = [{**r, "id": f"train-{r['id']}"} for r in rows]
    DatasetDict({"train": Dataset.from_list(train), "validation": Dataset.from_list(rows)}).save_to_disk(
        tmp_path / "data" / "train_dataset")
    out = tmp_path / "run"
    argv = ["infer", "--retriever_type", "bm25", "--tokenizer", "bigram", "--index", str(setup["root"] / "idx"),
            "--model", str(setup["reader"]), "--dataset_path", str(tmp_path / "data"), "--max_samples", "4",
            "--seed", "7", "--per_device_eval_batch_size", "8", "--do_eval", "--quiet", "--output_dir", str(out),
            *TINY_WINDOW]
    assert main(argv) == 0
    assert "--tokenizer bigram -> --retrieval_tokenizer bigram" in capsys.readouterr().err
    predictions = _json(out / "predictions.json")
    assert list(predictions) == [r["id"] for r in rows[:4]]
    assert _json(out / "metrics.json")["total"] == 4


def test_do_eval_parses_its_dataset_once(setup, first_run, tmp_path, monkeypatch):
    """Questions, gold answers and gold passages come from one parse of --dataset_path."""
    from pathlib import Path

    parsed = []  # every opening of the dataset file, whoever reads it
    original = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: (parsed.append(str(self)) if self == setup["questions"]
                                                              else None) or original(self, *a, **k))
    argv = ["infer", "--retriever_type", "bm25", "--index", str(setup["root"] / "idx"), "--model",
            str(setup["reader"]), "--dataset_path", str(setup["questions"]), "--top_k_retrieval", "2", "--do_eval",
            "--quiet", "--output_dir", str(tmp_path / "run"), *TINY_WINDOW]
    assert main(argv) == 0
    assert parsed == [str(setup["questions"])]
    metrics = _json(tmp_path / "run" / "metrics.json")
    assert metrics["total"] == len(_json(tmp_path / "run" / "predictions.json"))
    assert metrics["retrieval"]["questions_with_gold_passage"] == metrics["total"]
