"""Augmentation: masked copies keep answers and offsets right, masks are whole words / tokens and bounded,
draws are seeded, token masks agree across the windows of one question, and train-mrc uses them."""
from __future__ import annotations

import numpy as np
import pytest

from odqa.errors import ConfigError
from odqa.reader.augmentation import (augment_examples, mask_context_overlap, mask_question_entities,
                                      mask_question_tokens, mask_question_words)

MASK = "<mask>"


def rng(seed=0):
    return np.random.default_rng(seed)


def test_word_masking_masks_whole_words_and_at_most_max():
    question = "조선의 네 번째 왕인 세종이 만든 문자의 이름은 무엇인가?"
    for seed in range(20):
        masked = mask_question_words(question, MASK, rng(seed), ratio=0.5, max_masks=2)
        words, original = masked.split(), question.split()
        assert len(words) == len(original)  # one mask per word, never inside one
        assert sum(w == MASK for w in words) <= 2
        assert all(w == o or w == MASK for w, o in zip(words, original))
    assert mask_question_words(question, MASK, rng(3), 0.5) == mask_question_words(question, MASK, rng(3), 0.5)


def test_entity_masking_keeps_particles():
    masked = mask_question_entities("세종이 훈민정음을 만든 해는?", MASK, rng(), max_masks=5)
    assert masked.startswith(MASK + "이 ") and "?" in masked  # 세종 (NNP) masked, 이 (particle) kept


def test_context_masking_keeps_answers_intact_and_offsets_right():
    context = ("세종은 조선의 제4대 왕이다. 세종은 1443년에 훈민정음을 창제하였다. 훈민정음은 1446년에 반포되었다. "
               "반포 이후 훈민정음은 널리 쓰였다.")
    answer = "1443년"
    answers = {"text": [answer], "answer_start": [context.index(answer)]}
    new_context, new_answers = mask_context_overlap(context, "훈민정음을 창제한 해는 언제인가?", answers, MASK, rng(),
                                                    max_masks=3)
    assert 1 <= new_context.count(MASK) <= 3 and new_context != context
    start = new_answers["answer_start"][0]
    assert new_context[start:start + len(answer)] == answer
    assert "훈민정음" not in new_context or new_context.count("훈민정음") < context.count("훈민정음")


def test_augment_examples_adds_copies_with_their_own_ids(squad_file):
    from odqa.data import load_mrc_dataset

    examples = load_mrc_dataset(squad_file)
    augmented = augment_examples(examples, ["mask_word", "mask_context"], MASK, seed=1, ratio=0.5)
    copies = [r for r in augmented if "#" in r["id"]]
    assert len(augmented) == len(examples) + len(copies) and copies
    for row in copies:
        for text, start in zip(row["answers"]["text"], row["answers"]["answer_start"]):
            assert row["context"][start:start + len(text)] == text
    assert {r["id"].split("#")[1] for r in copies} <= {"mask_word", "mask_context"}
    with pytest.raises(ConfigError, match="add_ner needs a NER model"):
        augment_examples(examples, ["add_ner"], MASK)
    with pytest.raises(ConfigError, match="no mask token"):
        augment_examples(examples, ["mask_word"], None)


def test_token_masking_touches_questions_only_and_agrees_across_windows(char_tokenizer_dir, squad_file):
    from transformers import AutoTokenizer

    from odqa.data import load_mrc_dataset
    from odqa.reader.processor import QAProcessor, WindowConfig

    tokenizer = AutoTokenizer.from_pretrained(str(char_tokenizer_dir))
    processor = QAProcessor(tokenizer, WindowConfig(max_seq_length=48, doc_stride=12, max_query_length=16))
    features = processor.get_train_features(load_mrc_dataset(squad_file))
    masked = mask_question_tokens(features, tokenizer, ratio=0.5, max_masks=2, seed=0)
    by_question: dict[tuple, set] = {}
    changed_any = False
    for before, after in zip(features["input_ids"], masked["input_ids"]):
        sep = before.index(tokenizer.sep_token_id)
        assert after[sep:] == before[sep:]  # contexts untouched
        changes = [i for i in range(sep) if after[i] != before[i]]
        assert len(changes) <= 2 and all(after[i] == tokenizer.mask_token_id for i in changes)
        by_question.setdefault(tuple(before[:sep]), set()).add(tuple(after[:sep]))
        changed_any |= bool(changes)
    assert changed_any and all(len(v) == 1 for v in by_question.values())  # same mask in every window
    both = mask_question_tokens(features, tokenizer, ratio=0.5, seed=0, keep_unmasked=True)
    assert len(both) == 2 * len(features)


def test_train_mrc_with_the_originals_augmentation_flags(tmp_path, squad_file):
    import json

    from odqa.data import load_mrc_dataset
    from odqa.reader.train import main
    from tests.helpers_models import save_tiny_bert

    encoder = save_tiny_bert(tmp_path / "encoder", vocab_size=200)
    out = tmp_path / "reader"
    assert main(["--model", str(encoder), "--train_dataset", str(squad_file), "--eval_dataset", str(squad_file),
                 "--output_dir", str(out), "--num_train_epochs", "1", "--max_seq_len", "64", "--doc_stride", "16",
                 "--max_query_length", "16", "--concat_aug", "mask_word", "mask_context", "--aug_mask_ratio", "0.5",
                 "--token_masking_ratio", "0.2", "--token_masking_with_normal_data", "--report_to", "none"]) == 0
    info = json.loads((out / "run_info.json").read_text(encoding="utf-8"))
    n_questions = len(load_mrc_dataset(squad_file))
    assert info["train_examples"] > n_questions  # the masked copies were added
    assert info["data"]["concat_aug"] == ["mask_word", "mask_context"] and "eval" in info["results"]
