"""`odqa export-reader`: a reader as a plain AutoModelForQuestionAnswering folder, with odqa's logits."""
from __future__ import annotations

import json

import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from odqa.cli import main as odqa_main
from odqa.reader.export import export_reader, portable_tokenizer_class
from odqa.reader.modeling import get_model
from odqa.reader.tokenizer import load_tokenizer
from tests.helpers_models import (
    KOREAN_SENTENCES,
    make_tokenizer,
    save_tiny_bert,
    save_tiny_roberta,
)


def trained_like(model):
    """Move every weight off its initial value, so a weight left behind by the export would show."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def korean_tokenizer():
    """The tiny Korean WordPiece as the generic fast class, so reloading keeps its pipeline (a BertTokenizer
    is rebuilt from its vocabulary on reload, with lower-casing and accent stripping: Hangul -> [UNK])."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=make_tokenizer().backend_tokenizer, unk_token="[UNK]",
                                   pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def save_reader(encoder_dir, reader_dir, head="linear"):
    model = trained_like(get_model(str(encoder_dir), head=head))
    model.save_pretrained(reader_dir)
    korean_tokenizer().save_pretrained(reader_dir)
    return model


def test_exported_bert_gives_odqa_logits_and_loads_with_auto_classes(tmp_path):
    reader = save_reader(save_tiny_bert(tmp_path / "enc"), tmp_path / "reader")
    assert odqa_main(["export-reader", "--model", str(tmp_path / "reader"), "--output_dir", str(tmp_path / "hf")]) == 0

    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["BertForQuestionAnswering"]
    assert not [k for k in config if k.startswith("odqa_")]
    # the generic class: tokenizer.json read as written (BertTokenizer would rebuild it, lower-casing and
    # stripping accents, so Hangul would become [UNK])
    tokenizer_config = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert not list((tmp_path / "hf").glob("*.bin")), "pickle weights written"

    exported = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "hf").eval()
    tokenizer, odqa_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf"), load_tokenizer(str(tmp_path / "reader"))
    batch = tokenizer(KOREAN_SENTENCES[:3], KOREAN_SENTENCES[3:], padding=True, return_tensors="pt",
                      return_offsets_mapping=True)
    expected = odqa_tokenizer(KOREAN_SENTENCES[:3], KOREAN_SENTENCES[3:], padding=True, return_offsets_mapping=True)
    assert batch["input_ids"].tolist() == expected["input_ids"]
    assert batch.pop("offset_mapping").tolist() == [[list(o) for o in row] for row in expected["offset_mapping"]]
    assert (batch["input_ids"] == tokenizer.unk_token_id).float().mean() < 0.2, "Hangul read as unknown tokens"
    with torch.inference_mode():
        ours, theirs = reader(**batch), exported(**batch)
    assert torch.equal(ours.start_logits, theirs.start_logits)
    assert torch.equal(ours.end_logits, theirs.end_logits)
    # the round trip back into odqa keeps the head (its HF checkpoint import)
    again = get_model(str(tmp_path / "hf")).eval()
    with torch.inference_mode():
        assert torch.equal(again(**batch).start_logits, ours.start_logits)


def test_exported_roberta_gives_odqa_logits(tmp_path):
    reader = save_reader(save_tiny_roberta(tmp_path / "enc"), tmp_path / "reader")
    export_reader(str(tmp_path / "reader"), tmp_path / "hf")
    exported = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "hf").eval()
    assert type(exported).__name__ == "RobertaForQuestionAnswering"
    ids = torch.randint(5, 200, (2, 12))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.inference_mode():
        assert torch.equal(reader(**batch).end_logits, exported(**batch).end_logits)


def test_custom_head_is_odqa_only(tmp_path, capsys):
    save_reader(save_tiny_bert(tmp_path / "enc"), tmp_path / "reader", head="lstm_ln")
    code = odqa_main(["export-reader", "--model", str(tmp_path / "reader"), "--output_dir", str(tmp_path / "hf")])
    assert code == 2
    err = capsys.readouterr().err
    assert "lstm_ln" in err and "odqa-only" in err and "Traceback" not in err
    assert not (tmp_path / "hf").exists()
    assert not list(tmp_path.glob(".hf.*")), "a half-written folder was left behind"


def test_refuses_to_overwrite_without_flag(tmp_path):
    save_reader(save_tiny_bert(tmp_path / "enc"), tmp_path / "reader")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "notes.txt").write_text("mine")
    assert odqa_main(["export-reader", "--model", str(tmp_path / "reader"), "--output_dir", str(tmp_path / "hf")]) == 2
    assert (tmp_path / "hf" / "notes.txt").read_text() == "mine"
    export_reader(str(tmp_path / "reader"), tmp_path / "hf", overwrite=True)
    assert (tmp_path / "hf" / "config.json").is_file() and not (tmp_path / "hf" / "notes.txt").exists()


def test_portable_tokenizer_class(tmp_path):
    assert portable_tokenizer_class(tmp_path) is None  # no tokenizer.json: a slow tokenizer is left alone
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "Unigram"}}))
    assert portable_tokenizer_class(tmp_path) == "PreTrainedTokenizerFast"
