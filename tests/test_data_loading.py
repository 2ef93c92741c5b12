"""MRC loaders: every layout, and the errors users get for bad input."""
import json
import unicodedata

import pytest

from odqa.data import load_mrc_dataset
from odqa.errors import DataError


def flat_rows(squad_file):
    ds = load_mrc_dataset(squad_file)
    return [dict(r) for r in ds]


def test_nested_squad(squad_file):
    ds = load_mrc_dataset(squad_file, require_answers=True)
    assert set(ds.column_names) == {"id", "title", "context", "question", "answers", "is_impossible", "question_type"}
    assert not any(ds["is_impossible"])
    for row in ds:
        start, text = row["answers"]["answer_start"][0], row["answers"]["text"][0]
        assert row["context"][start:start + len(text)] == text


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv"])
def test_flat_formats_round_trip(squad_file, tmp_path, suffix):
    rows = flat_rows(squad_file)
    path = tmp_path / f"flat{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"data": rows}, ensure_ascii=False), encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    else:
        import pandas as pd

        frame = pd.DataFrame(rows)
        frame["answers"] = frame["answers"].map(lambda a: json.dumps(a, ensure_ascii=False))
        frame.to_csv(path, index=False)
    assert [dict(r) for r in load_mrc_dataset(path)] == rows


def test_save_to_disk_datasetdict_with_unlabelled_test(squad_file, tmp_path):
    from datasets import Dataset, DatasetDict

    rows = flat_rows(squad_file)
    test_rows = [{k: v for k, v in r.items() if k != "answers"} for r in rows[:2]]
    DatasetDict({"train": Dataset.from_list(rows[2:]), "validation": Dataset.from_list(rows[:2]),
                 "test": Dataset.from_list(test_rows)}).save_to_disk(tmp_path / "klue")
    loaded = load_mrc_dataset(tmp_path / "klue", require_answers=True)
    assert set(loaded) == {"train", "validation", "test"}
    assert loaded["test"][0]["answers"] == {"text": [], "answer_start": []}
    assert len(loaded["train"]) == len(rows) - 2
    # the KLUE-MRC data folder (the competition code's --dataset_path) means its train_dataset/
    (tmp_path / "data").mkdir()
    (tmp_path / "klue").rename(tmp_path / "data" / "train_dataset")
    assert len(load_mrc_dataset(tmp_path / "data")["train"]) == len(rows) - 2


def write_rows(tmp_path, rows, name="bad.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


def base_row(**kw):
    row = {"id": "q1", "title": "t", "context": "세종은 훈민정음을 만들었다. 세종은 왕이다.", "question": "누가?",
           "answers": {"text": ["세종"], "answer_start": [0]}}
    row.update(kw)
    return row


def test_missing_column_names_file_and_fix(tmp_path):
    path = write_rows(tmp_path, [{"id": "q1", "question": "x"}])
    with pytest.raises(DataError, match=r"bad\.jsonl.*missing column.*context"):
        load_mrc_dataset(path)


def test_empty_question_names_row(tmp_path):
    path = write_rows(tmp_path, [base_row(), base_row(id="q2", question="  ")])
    with pytest.raises(DataError, match=r"empty 'question'.*'q2'"):
        load_mrc_dataset(path)


def test_misaligned_answer_start_reported_then_fixed(tmp_path):
    rows = [base_row(answers={"text": ["세종"], "answer_start": [3]}), base_row(id="q2")]
    path = write_rows(tmp_path, rows)
    with pytest.raises(DataError, match=r"1 answer\(s\) whose answer_start.*'q1'.*--fix_answer_start"):
        load_mrc_dataset(path)
    fixed = load_mrc_dataset(path, fix_answer_start=True)
    assert fixed[0]["answers"]["answer_start"] == [0]
    # nearest occurrence: the second 세종 is at 16; a start of 14 moves there, not to 0
    rows = [base_row(answers={"text": ["세종"], "answer_start": [14]})]
    assert load_mrc_dataset(write_rows(tmp_path, rows, "b.jsonl"), fix_answer_start=True)[0]["answers"][
        "answer_start"] == [16]


def test_answer_not_in_context(tmp_path):
    path = write_rows(tmp_path, [base_row(answers={"text": ["이순신"], "answer_start": [0]})])
    with pytest.raises(DataError, match="does not occur in the context"):
        load_mrc_dataset(path, fix_answer_start=True)


def test_nfd_text_normalized_and_offsets_moved(tmp_path):
    context = "가나다 " + unicodedata.normalize("NFD", "훈민정음") + "을 만든 세종"
    nfd_start = context.index("세종")  # offset in the decomposed string (jamo count)
    row = base_row(context=context, answers={"text": ["세종"], "answer_start": [nfd_start]})
    ds = load_mrc_dataset(write_rows(tmp_path, [row]))
    ctx = ds[0]["context"]
    start = ds[0]["answers"]["answer_start"][0]
    assert unicodedata.is_normalized("NFC", ctx)
    assert start != nfd_start and ctx[start:start + 2] == "세종"


def test_duplicate_ids_and_required_answers(tmp_path):
    with pytest.raises(DataError, match="duplicate id"):
        load_mrc_dataset(write_rows(tmp_path, [base_row(), base_row()]))
    unlabelled = base_row(id="q9", answers=None)
    assert load_mrc_dataset(write_rows(tmp_path, [unlabelled], "u.jsonl"))[0]["answers"]["text"] == []
    with pytest.raises(DataError, match="without any answer.*'q9'"):
        load_mrc_dataset(write_rows(tmp_path, [unlabelled], "u2.jsonl"), require_answers=True)


def test_file_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_mrc_dataset(tmp_path / "nope.json")
    bad = tmp_path / "broken.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.json: not valid JSON \(line 1"):
        load_mrc_dataset(bad)
    odd = tmp_path / "data.parquet"
    odd.write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match="unsupported file type"):
        load_mrc_dataset(odd)
