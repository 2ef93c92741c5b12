"""`odqa ensemble`: voting rules, tie breaks, summed probabilities, weights, run loading and the CLI."""
from __future__ import annotations

import json

import pytest

from odqa.ensemble import ensemble_predictions, load_run
from odqa.errors import ConfigError, DataError


def nbest(*answers):
    return [{"text": t, "probability": p} for t, p in answers]


RUNS = [
    {"q1": nbest(("세종", 0.6), ("세종대왕", 0.3)), "q2": nbest(("1443년", 0.5), ("1446년", 0.4))},
    {"q1": nbest(("세종대왕", 0.5), ("세종", 0.4)), "q2": nbest(("1446년", 0.9), ("1443년", 0.05))},
    {"q1": nbest(("세종 ", 0.7), ("태종", 0.2)), "q2": nbest(("1443년", 0.45), ("1446년", 0.44))},
]


def test_majority_vote_with_whitespace_merged():
    predictions, ranked = ensemble_predictions(RUNS)
    assert predictions == {"q1": "세종", "q2": "1443년"}  # 2 votes to 1 each ("세종 " is "세종")
    assert ranked["q1"][0] == {"text": "세종", "votes": 2.0, "probability": pytest.approx(1.7), "runs": 3}


def test_summed_probability_can_overturn_the_vote():
    predictions, _ = ensemble_predictions(RUNS, method="probability")
    assert predictions["q2"] == "1446년"  # 0.4 + 0.9 + 0.44 beats 0.5 + 0.05 + 0.45, though it had one vote


def test_ties_broken_by_probability_shorter_or_longer():
    two = RUNS[:2]  # q1: one vote each for 세종 and 세종대왕
    assert ensemble_predictions(two, tie_break="shorter")[0]["q1"] == "세종"
    assert ensemble_predictions(two, tie_break="longer")[0]["q1"] == "세종대왕"
    assert ensemble_predictions(two, tie_break="probability")[0]["q1"] == "세종"  # 1.0 against 0.8
    assert ensemble_predictions(two, weights=[1, 2])[0]["q1"] == "세종대왕"  # the second run counts twice


def test_missing_questions_and_bad_options():
    predictions, _ = ensemble_predictions([{"a": nbest(("x", 1.0))}, {"b": nbest(("y", 1.0))}])
    assert predictions == {"a": "x", "b": "y"}
    with pytest.raises(ValueError, match="one weight per run"):
        ensemble_predictions(RUNS, weights=[1.0])
    with pytest.raises(ValueError, match="vote, probability"):
        ensemble_predictions(RUNS, method="mean")


def test_load_run_reads_folders_nbest_and_predictions_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "nbest_predictions.json").write_text(json.dumps(RUNS[0], ensure_ascii=False), encoding="utf-8")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "predictions.json").write_text(json.dumps({"q1": "세종"}, ensure_ascii=False), encoding="utf-8")
    assert load_run(tmp_path / "a") == RUNS[0]
    assert load_run(tmp_path / "b") == {"q1": [{"text": "세종", "probability": 1.0}]}
    (tmp_path / "bad.json").write_text(json.dumps({"q1": [{"answer": "x"}]}), encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.json.*'q1'.*'text'"):
        load_run(tmp_path / "bad.json")
    with pytest.raises(DataError, match="no nbest_predictions.json or predictions.json"):
        load_run(tmp_path)


def test_cli_writes_and_scores_every_run_and_the_ensemble(tmp_path, squad_file, capsys):
    from odqa.cli import main
    from odqa.data.loading import read_mrc_rows

    rows = read_mrc_rows(squad_file)
    gold = {r["id"]: r["answers"]["text"][0] for r in rows}
    runs = []
    for n, wrong in enumerate([set(list(gold)[:2]), set(list(gold)[2:4]), set(list(gold)[4:6])]):
        run = {q: nbest(("틀린 답" if q in wrong else text, 0.9)) for q, text in gold.items()}
        path = tmp_path / f"run{n}.json"
        path.write_text(json.dumps(run, ensure_ascii=False), encoding="utf-8")
        runs.append(str(path))
    out = tmp_path / "ens"
    assert main(["ensemble", "--runs", *runs, "--dataset", str(squad_file), "--output_dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    by_run = {s["run"]: s["exact_match"] for s in metrics["scores"]}
    assert by_run["ensemble"] == 100.0 and all(by_run[r] < 100.0 for r in runs)  # each run's mistakes outvoted
    assert json.loads((out / "predictions.json").read_text(encoding="utf-8")) == gold
    assert "ensemble: EM 100.00" in capsys.readouterr().out
    assert main(["ensemble", "--runs", runs[0], "--output_dir", str(out)]) == 2  # one run is no ensemble


def test_cli_one_run_is_a_clear_error(tmp_path):
    from odqa.ensemble.cli import EnsembleArguments, run_ensemble

    with pytest.raises(ConfigError, match="at least two runs"):
        run_ensemble(EnsembleArguments(runs=["x"], output_dir=str(tmp_path)))
