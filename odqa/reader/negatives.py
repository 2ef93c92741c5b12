"""Retrieved negative passages for reader training: teach the reader what "no answer here" looks like.

At inference the reader reads the top-k retrieved passages of a question, most of which do not hold
the answer. A reader trained only on gold passages has never seen such a passage and gives confident
spans everywhere, so its scores cannot be compared across passages. Adding, for each training
question, the top BM25 passages of the training corpus that do *not* contain any of its answers,
labelled "no answer" (start = end = the first token), teaches it to say so; post-processing then
scores a span against its window's no-answer score (:mod:`odqa.reader.postprocessing`).
"""
from __future__ import annotations

import logging

from odqa.errors import ConfigError

logger = logging.getLogger(__name__)

NEGATIVE_ID_SEPARATOR = "#neg"


def add_retrieved_negatives(examples, negatives_per_question: int, retriever: str = "bm25",
                            candidates: int = 10):
    """``examples`` plus ``negatives_per_question`` unanswerable copies of each question.

    Each copy's context is one of the question's top-``candidates`` passages among the examples'
    own distinct contexts that is not the gold context and contains none of the answer texts; its
    ``answers`` are empty, which the processor labels as "no answer". Ids are ``<id>#neg<j>``.
    """
    from datasets import Dataset, concatenate_datasets

    from odqa.retrieval.negatives import mine_hard_negatives

    if negatives_per_question < 0:
        raise ConfigError(f"negatives_per_question must be 0 or more (got {negatives_per_question}).")
    if negatives_per_question == 0 or len(examples) == 0:
        return examples
    contexts = list(dict.fromkeys(examples["context"]))
    if len(contexts) < 2:
        logger.warning("only one distinct context in the training data: no retrieved negatives to add.")
        return examples
    mined = mine_hard_negatives(list(examples["question"]), list(examples["context"]),
                                [a["text"] for a in examples["answers"]], contexts, negatives_per_question,
                                retriever, candidates)
    rows: dict[str, list] = {column: [] for column in examples.column_names}
    for example, negatives in zip(examples, mined):
        for taken, row in enumerate(negatives):
            for column in examples.column_names:
                rows[column].append(example[column])
            rows["id"][-1] = f"{example['id']}{NEGATIVE_ID_SEPARATOR}{taken}"
            rows["context"][-1] = contexts[row]
            rows["answers"][-1] = {"text": [], "answer_start": []}
            if "is_impossible" in rows:
                rows["is_impossible"][-1] = True
    if not rows["id"]:
        return examples
    negatives = Dataset.from_dict(rows, features=examples.features)
    logger.info("added %d retrieved negative passages (%s, up to %d per question) to %d training examples",
                len(negatives), retriever, negatives_per_question, len(examples))
    return concatenate_datasets([examples, negatives])
