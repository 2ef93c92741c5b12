"""KorQuAD 1.0 / SQuAD 1.1 metrics on hand-checked cases."""
import json
import subprocess
import sys

import pytest

from odqa.errors import ConfigError
from odqa.metrics import compute_metrics, korquad, squad


def test_korquad_normalization_rules():
    assert korquad.normalize_answer("《한국사》 (제2판)") == "한국사 제2판"
    assert korquad.normalize_answer("‘봄’") == "봄"
    assert korquad.normalize_answer("  ABC-d  e.  ") == "abcd e"
    assert korquad.normalize_answer("〈a〉<b>") == "a b"


def test_korquad_char_f1_by_hand():
    # pred chars 1,9,8,9,년,2,월 (7); gold adds 1,5,일 (10); all 7 pred chars are shared
    f1 = korquad.f1_score("1989년 2월", "1989년 2월 15일")
    precision, recall = 7 / 7, 7 / 10
    assert f1 == pytest.approx(2 * precision * recall / (precision + recall), abs=0)
    # spaces do not count: "혐의 로" and "혐의로" are the same characters
    assert korquad.f1_score("혐의 로", "혐의로") == 1.0
    assert korquad.f1_score("서울", "부산") == 0
    assert korquad.exact_match_score("(세종)", "세종")


def test_squad_token_f1_by_hand():
    assert squad.f1_score("the cat sat", "a cat sat down") == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))
    assert squad.exact_match_score("The Cat!", "cat")
    # token F1 gives 0 to a Korean answer off by one particle; KorQuAD's char F1 does not
    assert squad.f1_score("혐의로", "혐의") == 0
    assert korquad.f1_score("혐의로", "혐의") == pytest.approx(0.8)


def test_dataset_level_average_max_over_golds_and_missing():
    refs = {"a": ["서울특별시", "서울"], "b": ["1446년"], "c": ["세종"], "d": []}
    preds = {"a": "서울", "b": "1446"}  # c missing → 0; d has no gold → unscored
    scores = compute_metrics(preds, refs)
    b_f1 = korquad.f1_score("1446", "1446년")
    assert scores["exact_match"] == pytest.approx(100.0 * 1 / 3)
    assert scores["f1"] == pytest.approx(100.0 * (1 + b_f1) / 3)
    assert (scores["total"], scores["missing_predictions"], scores["unscored"]) == (3, 1, 1)


def test_unknown_metric():
    with pytest.raises(ConfigError, match="unknown metric"):
        compute_metrics({}, {"a": ["x"]}, metric="bleu")


def test_evaluate_cli(squad_file, tmp_path):
    payload = json.loads(squad_file.read_text(encoding="utf-8"))
    first = payload["data"][0]["paragraphs"][0]["qas"]
    preds = {first[0]["id"]: first[0]["answers"][0]["text"], first[1]["id"]: "틀린 답"}
    pred_path = tmp_path / "predictions.json"
    pred_path.write_text(json.dumps(preds, ensure_ascii=False), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "odqa", "evaluate", "--dataset", str(squad_file),
                          "--predictions", str(pred_path)], capture_output=True, text=True, check=True)
    scores = json.loads(out.stdout)
    total = sum(len(p["qas"]) for a in payload["data"] for p in a["paragraphs"])
    assert scores["total"] == total
    assert scores["exact_match"] == pytest.approx(100.0 / total)
    bad = subprocess.run([sys.executable, "-m", "odqa", "evaluate", "--dataset", str(squad_file),
                          "--predictions", str(squad_file)], capture_output=True, text=True)
    assert bad.returncode == 2 and "predictions.json" in bad.stderr and "Traceback" not in bad.stderr


def _official_korquad_v1(dataset: dict, predictions: dict) -> dict:
    """KorQuAD v1.0's evaluate(), step by step as its public script does it (the oracle for the test below)."""
    import re
    import string
    from collections import Counter

    def normalize(s):
        for ch in ["'", '"', "《", "》", "<", ">", "〈", "〉", "(", ")", "‘", "’"]:
            s = re.sub(re.escape(ch), " ", s)
        s = s.lower()
        s = "".join(ch for ch in s if ch not in set(string.punctuation))
        return " ".join(s.split())

    def f1(prediction, ground_truth):
        p = [c for tok in normalize(prediction).split() for c in tok]
        g = [c for tok in normalize(ground_truth).split() for c in tok]
        same = sum((Counter(p) & Counter(g)).values())
        if same == 0:
            return 0
        precision, recall = 1.0 * same / len(p), 1.0 * same / len(g)
        return (2 * precision * recall) / (precision + recall)

    em = f1_total = total = 0
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue
                golds = [a["text"] for a in qa["answers"]]
                em += max(normalize(predictions[qa["id"]]) == normalize(g) for g in golds)
                f1_total += max(f1(predictions[qa["id"]], g) for g in golds)
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f1_total / total}


def test_equals_the_official_korquad_scorer_to_the_last_digit(korquad_half):
    from odqa.metrics.cli import load_references

    dataset = json.loads(korquad_half.read_text(encoding="utf-8"))
    qas = [qa for a in dataset["data"] for p in a["paragraphs"] for qa in p["qas"]]
    perturb = [lambda g, o: g, lambda g, o: g + "이다", lambda g, o: g[: max(1, len(g) // 2)],
               lambda g, o: f"《{g}》", lambda g, o: g.upper() + "!", lambda g, o: "", lambda g, o: o,
               lambda g, o: f"‘{g}’, 그리고 {o}"]
    predictions = {}
    for i, qa in enumerate(qas):
        if i % 11 == 5:
            continue  # missing predictions count 0
        gold, other = qa["answers"][0]["text"], qas[(i * 7) % len(qas)]["answers"][0]["text"]
        predictions[qa["id"]] = perturb[i % len(perturb)](gold, other)
    ours = compute_metrics(predictions, load_references(str(korquad_half)))
    official = _official_korquad_v1(dataset, predictions)
    assert 0 < official["exact_match"] < 100 and 0 < official["f1"] < 100
    assert ours["exact_match"] == official["exact_match"]  # exact float equality, not approx
    assert ours["f1"] == official["f1"]
