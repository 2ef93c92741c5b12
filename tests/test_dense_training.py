"""DPR training: hard negatives, the contrastive loop on a tiny encoder, the saved best encoder."""
from __future__ import annotations

import json

import numpy as np
import pytest

from odqa.dense.encoder import DualEncoder
from odqa.dense.training import DPRArguments, train_dpr
from odqa.errors import ConfigError
from odqa.retrieval.negatives import mine_hard_negatives
from tests.helpers_models import save_tiny_bert


def test_hard_negatives_never_hold_the_answer_nor_are_the_gold():
    passages = ["서울은 대한민국의 수도이다.", "부산은 대한민국 제2의 도시이며 항구가 있다.",
                "대한민국의 수도 서울에는 한강이 흐른다.", "대한민국의 국화는 무궁화이다."]
    questions = ["대한민국의 수도는?", "대한민국의 국화는?"]
    mined = mine_hard_negatives(questions, [passages[0], passages[3]], [["서울"], ["무궁화"]], passages, 2,
                                retriever="bm25", candidates=10)
    assert mined[0] and all("서울" not in passages[i] and i != 0 for i in mined[0])
    assert mined[1] and all("무궁화" not in passages[i] and i != 3 for i in mined[1])
    assert all(len(m) <= 2 for m in mined)
    assert mine_hard_negatives(questions, passages[:2], [[], []], passages, 0) == [[], []]


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory, char_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(char_tokenizer_dir))
    path = save_tiny_bert(tmp_path_factory.mktemp("dpr") / "encoder", vocab_size=len(tokenizer), seed=0,
                          with_tokenizer=False)
    tokenizer.save_pretrained(path)
    return path


def test_training_lowers_the_loss_and_saves_a_loadable_encoder(tiny_encoder, squad_file, tmp_path):
    out = tmp_path / "dpr"
    info = train_dpr(DPRArguments(output_dir=str(out), train_dataset=str(squad_file), eval_dataset=str(squad_file),
                                  dpr_model=str(tiny_encoder), dpr_epochs=25, dpr_train_batch_size=3,
                                  dpr_learning_rate=3e-3, dpr_warmup_steps=0, num_hard_negatives=1,
                                  dpr_eval_steps=30, passage_max_length=48, passage_window=24,
                                  freeze_word_embeddings=False, temperature=0.1))
    losses = info["losses"]
    assert info["steps"] == len(losses) >= 60 and info["hard_negatives_mined"] > 0
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert [h["step"] for h in info["eval_history"]][0] == 0 and len(info["eval_history"]) >= 3
    assert info["improved_over_start"] and info["best_eval"]["mrr@20"] > info["eval_history"][0]["mrr@20"]
    assert info["best_eval"] in info["eval_history"] and info["best_eval"]["step"] > 0
    assert json.loads((out / "run_info.json").read_text())["steps"] == info["steps"]
    saved = DualEncoder.from_pretrained(str(out))
    # training batches were cut at 48 tokens; the saved encoder keeps its own limit for indexing
    assert saved.config.passage_max_length == 512 and saved.encode_queries(["세종"]).shape == (1, 32)


def test_training_that_hurts_keeps_the_starting_encoder(tiny_encoder, squad_file, tmp_path):
    """A learning rate far too high wrecks the encoder: the saved one must still be the start."""
    out = tmp_path / "worse"
    info = train_dpr(DPRArguments(output_dir=str(out), train_dataset=str(squad_file), eval_dataset=str(squad_file),
                                  dpr_model=str(tiny_encoder), dpr_epochs=3, dpr_train_batch_size=3,
                                  dpr_learning_rate=5.0, dpr_warmup_steps=0, passage_max_length=48,
                                  passage_window=0, max_grad_norm=0, freeze_word_embeddings=False))
    start = DualEncoder.from_pretrained(str(tiny_encoder)).encode_queries(["세종", "한강"])
    saved = DualEncoder.from_pretrained(str(out)).encode_queries(["세종", "한강"])
    assert not info["improved_over_start"] and info["best_eval"]["step"] == 0
    np.testing.assert_allclose(saved, start, atol=1e-5)


def test_separate_encoders_and_bad_settings(tiny_encoder, squad_file, tmp_path):
    info = train_dpr(DPRArguments(output_dir=str(tmp_path / "sep"), train_dataset=str(squad_file),
                                  dpr_model=str(tiny_encoder), separate_encoders=True, dpr_epochs=1,
                                  dpr_train_batch_size=4, passage_max_length=48, passage_window=0))
    assert info["steps"] == 3 and not DualEncoder.from_pretrained(str(tmp_path / "sep")).config.shared
    with pytest.raises(ConfigError, match="nothing to contrast"):
        train_dpr(DPRArguments(output_dir=str(tmp_path / "x"), train_dataset=str(squad_file),
                               dpr_model=str(tiny_encoder), dpr_train_batch_size=1, num_hard_negatives=0))


def _units(rows, texts, negatives, owner=None, positives=None):
    from odqa.dense.training_texts import TrainingTexts

    row_of = {t: i for i, t in enumerate(texts)}
    return TrainingTexts(texts, np.arange(len(texts)) if owner is None else np.asarray(owner),
                         positives or [[row_of[r["context"]]] for r in rows], negatives)


def test_a_step_contrasts_each_question_with_in_batch_and_hard_negatives():
    import torch

    from odqa.dense.training import contrastive_loss
    from odqa.dense.training_texts import contrastive_batch

    rows = [{"question": f"질문 {i}", "context": f"문단 {i}"} for i in range(3)]
    contexts = [f"문단 {i}" for i in range(3)] + ["오답 가", "오답 나"]
    questions, passages, positives, ignored = contrastive_batch(
        [0, 1, 2], [r["question"] for r in rows], _units(rows, contexts, [[3, 4], [4], []]))
    assert questions == ["질문 0", "질문 1", "질문 2"]
    assert passages == ["문단 0", "문단 1", "문단 2", "오답 가", "오답 나"]  # positives first, each text once
    assert positives == [0, 1, 2] and ignored == [[], [], []]
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    p = torch.nn.functional.normalize(torch.randn(len(passages), 8), dim=-1)
    loss = contrastive_loss(q, p, 0.05, positives)
    logits = q @ p.T / 0.05
    assert logits.shape == (3, 5)
    expected = -torch.stack([torch.log_softmax(logits[i], 0)[i] for i in range(3)]).mean()
    assert torch.allclose(loss, expected)
    p_right = torch.cat([q, -q[:1].expand(2, 8)])  # each question's own passage is itself: the loss is near zero
    assert contrastive_loss(q, p_right, 0.01, positives) < 1e-3 < loss


def test_a_passage_shared_by_two_questions_is_never_a_negative_of_either():
    from odqa.dense.training_texts import contrastive_batch

    # questions 0 and 2 share a passage; question 1's hard negative is question 0's passage
    rows = [{"question": "질문 0", "context": "문단 가"}, {"question": "질문 1", "context": "문단 나"},
            {"question": "질문 2", "context": "문단 가"}]
    contexts = ["문단 가", "문단 나", "오답"]
    _, passages, positives, _ = contrastive_batch([0, 1, 2], [r["question"] for r in rows],
                                                  _units(rows, contexts, [[2], [0], [2]]))
    assert passages == ["문단 가", "문단 나", "오답"]
    assert positives == [0, 1, 0]
    for i, row in enumerate(rows):  # the question's own text sits only in its label column
        assert [j for j, text in enumerate(passages) if text == row["context"]] == [positives[i]]


def test_windows_of_the_own_context_are_left_out_of_the_loss():
    """Two questions of one context whose answers sit in different windows: each one's positive is its
    answer's window, and the other window (of the same, right passage) takes no part in its loss."""
    import torch

    from odqa.dense.training import contrastive_loss
    from odqa.dense.training_texts import contrastive_batch

    texts = ["창 0 세종", "창 1 한글", "다른 문단"]  # windows 0 and 1 of context 0, one window of context 1
    units = _units([], texts, [[2], [2]], owner=[0, 0, 1], positives=[[0], [1]])
    _, passages, positives, ignored = contrastive_batch([0, 1], ["세종은?", "한글은?"], units)
    assert passages == texts and positives == [0, 1] and ignored == [[1], [0]]
    assert units.siblings(0) == [1] and units.siblings(2) == []
    q = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1)
    p = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    logits = q @ p.T / 0.05
    expected = -torch.stack([logits[0, 0] - torch.logsumexp(logits[0, [0, 2]], 0),
                             logits[1, 1] - torch.logsumexp(logits[1, [1, 2]], 0)]).mean()
    assert torch.allclose(contrastive_loss(q, p, 0.05, positives, ignored), expected)


def test_window_positives_hold_the_answer_and_negatives_come_from_other_contexts(char_tokenizer_dir):
    from transformers import AutoTokenizer

    from odqa.dense.training_texts import context_windows

    tokenizer = AutoTokenizer.from_pretrained(str(char_tokenizer_dir))
    contexts = ["세종대왕은 조선의 네 번째 임금이다. 그는 훈민정음을 만들어 백성에게 알렸다.",
                "한강은 서울을 가로질러 흐르며 서해로 들어간다. 임금이 배를 띄우기도 했다.",
                "부산은 항구 도시이다. 조선 시대에는 왜관이 있었다."]
    rows = [{"question": "훈민정음을 만든 임금은?", "context": contexts[0], "answers": {"text": ["세종대왕"]}},
            {"question": "조선의 임금이 만든 글자는?", "context": contexts[0], "answers": {"text": ["훈민정음"]}},
            {"question": "서울을 흐르는 강은?", "context": contexts[1], "answers": {"text": ["한강"]}}]
    units = context_windows(rows, contexts, tokenizer, window=12, stride=6, num_hard_negatives=2)
    assert len(units.texts) > len(contexts) and sorted(set(units.owner.tolist())) == [0, 1, 2]
    for r, found, negatives in zip(rows, units.positives, units.negatives):
        answer = r["answers"]["text"][0]
        assert found and all(answer in units.texts[t] and contexts[units.owner[t]] == r["context"] for t in found)
        assert negatives and all(contexts[units.owner[t]] != r["context"] and answer not in units.texts[t]
                                 for t in negatives)
    assert units.positives[0] != units.positives[1]  # same context, answers in different windows


def test_training_on_windows_evaluates_on_windows(tiny_encoder, squad_file, tmp_path, monkeypatch):
    import odqa.dense.training as training

    windows_seen = []
    evaluate = training.evaluate_encoder

    def spy(*args):
        windows_seen.append(args[4:])
        return evaluate(*args)

    monkeypatch.setattr(training, "evaluate_encoder", spy)
    info = train_dpr(DPRArguments(output_dir=str(tmp_path / "win"), train_dataset=str(squad_file),
                                  eval_dataset=str(squad_file), dpr_model=str(tiny_encoder), dpr_epochs=2,
                                  dpr_train_batch_size=4, passage_window=16, passage_max_length=32))
    assert info["train_texts"] > info["train_passages"] and info["hard_negatives_mined"] > 0
    assert info["steps"] > 0 and len(info["eval_history"]) == 2 and windows_seen == [(16, None)] * 2
    with pytest.raises(ConfigError, match="stride"):
        train_dpr(DPRArguments(output_dir=str(tmp_path / "x"), train_dataset=str(squad_file),
                               dpr_model=str(tiny_encoder), passage_window=16, window_stride=32))
    with pytest.raises(ConfigError, match="--passage_max_length 32"):
        train_dpr(DPRArguments(output_dir=str(tmp_path / "x"), train_dataset=str(squad_file),
                               dpr_model=str(tiny_encoder), passage_window=64, passage_max_length=32))


def test_question_side_training_keeps_the_passage_encoder(tiny_encoder, squad_file, tmp_path):
    """--freeze_passage_encoder: only the question encoder learns; the passage encoder (and so every index built
    with the starting encoder) stays exactly as it was, and the two are saved as separate encoders."""
    out = tmp_path / "qside"
    info = train_dpr(DPRArguments(output_dir=str(out), train_dataset=str(squad_file), eval_dataset=str(squad_file),
                                  dpr_model=str(tiny_encoder), freeze_passage_encoder=True, dpr_epochs=30,
                                  dpr_train_batch_size=4, dpr_learning_rate=3e-3, dpr_warmup_steps=0,
                                  dpr_eval_steps=40, freeze_word_embeddings=False, temperature=0.1))
    assert info["hard_negatives_mined"] == 0 and np.mean(info["losses"][-10:]) < 0.5 * np.mean(info["losses"][:10])
    assert info["improved_over_start"]
    start, trained = DualEncoder.from_pretrained(str(tiny_encoder)), DualEncoder.from_pretrained(str(out))
    assert not trained.config.shared
    texts = ["세종대왕은 훈민정음을 만들었다.", "한강은 서울을 흐른다."]
    np.testing.assert_allclose(trained.encode_passages(texts), start.encode_passages(texts), atol=1e-5)
    assert not np.allclose(trained.encode_queries(texts), start.encode_queries(texts), atol=1e-3)
