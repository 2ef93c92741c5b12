"""Validation of MRC rows: fail early, name the file and the row, say the fix.

Checked: empty question/context, duplicate ids, a row marked ``is_impossible`` that carries an
answer, a question with neither an answer nor the mark (when answers are needed), answers whose
``answer_start`` does not point at the answer text (realigned to the nearest occurrence with ``fix_answer_start``), and text that
is not NFC. Korean text arrives both composed (NFC: 한) and decomposed (NFD: ᄒ+ᅡ+ᆫ); we
normalize everything to NFC and move ``answer_start`` with it, so offsets stay right.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from odqa.errors import DataError

MAX_LISTED = 5


@dataclass
class ValidationReport:
    rows: list[dict]
    renormalized: int = 0  # rows whose text was not NFC
    realigned: list[str] = field(default_factory=list)  # ids whose answer_start was moved


def _nfc_offset(text: str, start: int) -> int:
    """Where character ``start`` of ``text`` lands after NFC normalization."""
    return len(unicodedata.normalize("NFC", text[:start]))


def _nearest_occurrence(context: str, answer: str, start: int) -> int | None:
    best, pos = None, context.find(answer)
    while pos != -1:
        if best is None or abs(pos - start) < abs(best - start):
            best = pos
        pos = context.find(answer, pos + 1)
    return best


def _listed(ids: list[str]) -> str:
    more = f" and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else ""
    return ", ".join(repr(i) for i in ids[:MAX_LISTED]) + more


def validate_examples(rows: list[dict], source: str, *, fix_answer_start: bool = False,
                      require_answers: bool = False) -> ValidationReport:
    report = ValidationReport(rows=[])
    seen: set[str] = set()
    duplicates, empty_question, empty_context, no_answers = [], [], [], []
    misaligned, not_found, contradictory = [], [], []
    for row in rows:
        rid = row["id"]
        if rid in seen:
            duplicates.append(rid)
        seen.add(rid)
        context, question = row["context"], row["question"]
        if not isinstance(context, str) or not context.strip():
            empty_context.append(rid)
            continue
        if not isinstance(question, str) or not question.strip():
            empty_question.append(rid)
            continue
        answers = row["answers"]
        impossible = bool(row.get("is_impossible", False))
        if impossible and answers["text"]:
            contradictory.append(rid)
            continue
        nfc_context = unicodedata.normalize("NFC", context)
        changed = nfc_context != context or unicodedata.normalize("NFC", question) != question
        texts, starts = [], []
        for text, start in zip(answers["text"], answers["answer_start"]):
            nfc_text = unicodedata.normalize("NFC", text)
            changed |= nfc_text != text
            nfc_start = _nfc_offset(context, start) if 0 <= start <= len(context) else start
            if nfc_context[nfc_start:nfc_start + len(nfc_text)] != nfc_text or not nfc_text:
                nearest = _nearest_occurrence(nfc_context, nfc_text, nfc_start) if nfc_text else None
                if nearest is None:
                    not_found.append(rid)
                    continue
                misaligned.append(rid)
                nfc_start = nearest
            texts.append(nfc_text)
            starts.append(nfc_start)
        if require_answers and not texts and not impossible and rid not in not_found:
            no_answers.append(rid)
        report.renormalized += int(changed)
        report.rows.append({**row, "context": nfc_context, "question": unicodedata.normalize("NFC", question),
                            "title": unicodedata.normalize("NFC", row.get("title") or ""),
                            "answers": {"text": texts, "answer_start": starts}})

    if duplicates:
        raise DataError(f"{source}: {len(duplicates)} duplicate id(s): {_listed(duplicates)}. Ids must be unique.")
    if empty_context:
        raise DataError(f"{source}: {len(empty_context)} row(s) with an empty 'context': {_listed(empty_context)}. "
                        "Remove them or fill in the passage.")
    if empty_question:
        raise DataError(f"{source}: {len(empty_question)} row(s) with an empty 'question': "
                        f"{_listed(empty_question)}. Remove them or fill in the question.")
    if contradictory:
        raise DataError(f"{source}: {len(contradictory)} row(s) marked is_impossible but carrying an answer: "
                        f"{_listed(contradictory)}. An unanswerable question has empty 'answers' (SQuAD 2.0 keeps "
                        "such spans in 'plausible_answers'); empty its answers or set is_impossible to false.")
    if not_found:
        raise DataError(f"{source}: {len(not_found)} answer(s) whose text does not occur in the context at all: "
                        f"{_listed(not_found)}. Fix the answer text or drop those rows.")
    if misaligned and not fix_answer_start:
        raise DataError(f"{source}: {len(misaligned)} answer(s) whose answer_start does not point at the answer "
                        f"text: {_listed(misaligned)}. Pass --fix_answer_start (fix_answer_start=True) to move each "
                        "to the nearest occurrence of its text.")
    if no_answers:
        raise DataError(f"{source}: {len(no_answers)} question(s) without any answer and not marked unanswerable: "
                        f"{_listed(no_answers)}. Training and evaluation need answers: add them, mark questions "
                        "the passage cannot answer with is_impossible: true (SQuAD 2.0, KLUE-MRC) or, in flat rows, "
                        "an empty answers list; or use the file for prediction only.")
    report.realigned = misaligned
    if misaligned:
        import logging

        logging.getLogger(__name__).warning("%s: realigned answer_start of %d answer(s) (%s).", source,
                                            len(misaligned), _listed(misaligned))
    return report
