"""Titles prepended to contexts (`--add_title`): ``"<title>: <context>"``, as the competition code did.

A title often names the answer's subject (경복궁 for "when was it built?"), so a reader that sees it can
resolve references the passage itself leaves implicit. Training shifts every ``answer_start``; reading
puts the passage after the same prefix and maps spans back into the passage (a span inside the title is
not an answer).
"""
from __future__ import annotations

TITLE_SEPARATOR = ": "


def title_prefix(title: str | None) -> str:
    """The text put before a context: ``"<title>: "``, or nothing for an untitled passage."""
    title = (title or "").strip()
    return f"{title}{TITLE_SEPARATOR}" if title else ""


def prepend_titles(examples):
    """MRC examples (a ``datasets.Dataset``) with each context prefixed by its title, answers moved along."""
    def add(row: dict) -> dict:
        prefix = title_prefix(row.get("title"))
        answers = row["answers"]
        return {"context": prefix + row["context"],
                "answers": {"text": list(answers["text"]), "answer_start": [s + len(prefix) for s in answers["answer_start"]]}}

    return examples.map(add, desc="adding titles")
