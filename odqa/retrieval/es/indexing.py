"""Loading passages into a cluster safely: a fresh concrete index, bulk with retries, a count check,
then an alias swap.

Readers always query the alias (``--es_index``). A rebuild loads a new concrete index
``<alias>-<timestamp>`` next to the old one and, only once every passage is in and counted, moves the
alias in one atomic ``_aliases`` call, then deletes the old index; a failed rebuild leaves the old
index serving and removes the half-built one.
"""
from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Callable, Iterable, Iterator

from odqa.retrieval.corpus import Corpus
from odqa.retrieval.es.connection import ElasticsearchError
from odqa.retrieval.es.schema import VECTOR_FIELD
from odqa.utils.progress import wants_progress

logger = logging.getLogger(__name__)

MAX_LISTED_FAILURES = 10


def concrete_index_name(alias: str) -> str:
    return f"{alias}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def indices_behind(client: Any, name: str) -> tuple[list[str], bool]:
    """(concrete indices that ``name`` resolves to, whether ``name`` is an alias); ([], False) if unknown."""
    if client.indices.exists_alias(name=name):
        return sorted(client.indices.get_alias(name=name).keys()), True
    if client.indices.exists(index=name):
        return [name], False
    return [], False


def passage_actions(index: str, corpus: Corpus, encode: Callable[[list[str]], Any] | None = None,
                    batch_size: int = 256) -> Iterator[dict[str, Any]]:
    """Bulk ``index`` actions, one per passage (``_id`` = passage id); vectors encoded batch by batch."""
    passages = corpus.passages
    for start in range(0, len(passages), batch_size):
        batch = passages[start:start + batch_size]
        vectors = encode([p.text for p in batch]) if encode is not None else None
        for row, passage in enumerate(batch):
            source: dict[str, Any] = {"title": passage.title, "text": passage.text,
                                      "document_id": passage.document_id, "start": passage.start}
            if vectors is not None:
                source[VECTOR_FIELD] = [float(x) for x in vectors[row]]
            yield {"_op_type": "index", "_index": index, "_id": passage.id, "_source": source}


def bulk_load(client: Any, actions: Iterable[dict[str, Any]], total: int, chunk_size: int = 500,
              max_retries: int = 5, initial_backoff: float = 2.0, show_progress: bool | None = None
              ) -> dict[str, str]:
    """Send ``actions`` in chunks; documents rejected with 429 are retried with exponential backoff.

    Returns {passage id: reason} of the documents that still failed.
    """
    from elasticsearch.helpers import streaming_bulk
    from tqdm.auto import tqdm

    failed: dict[str, str] = {}
    bar = tqdm(total=total, desc="index passages", unit="passage", disable=not wants_progress(show_progress, total))
    with bar:
        for ok, item in streaming_bulk(client, actions, chunk_size=chunk_size, max_retries=max_retries,
                                       initial_backoff=initial_backoff, max_backoff=60.0, raise_on_error=False,
                                       raise_on_exception=False):
            bar.update(1)
            if not ok:
                result = next(iter(item.values()))
                error = result.get("error") or result.get("exception") or result.get("status")
                reason = error.get("reason", error.get("type")) if isinstance(error, dict) else str(error)
                failed[str(result.get("_id"))] = f"{result.get('status', '?')}: {reason}"
    return failed


def finish_and_count(client: Any, index: str, expected: int, failed: dict[str, str]) -> None:
    """Turn refreshes back on, refresh, and insist that every passage is searchable."""
    client.indices.put_settings(index=index, body={"index": {"refresh_interval": None}})
    client.indices.refresh(index=index)
    count = int(client.count(index=index)["count"])
    if failed or count != expected:
        listed = "; ".join(f"{pid} ({why})" for pid, why in list(failed.items())[:MAX_LISTED_FAILURES])
        more = f" and {len(failed) - MAX_LISTED_FAILURES} more" if len(failed) > MAX_LISTED_FAILURES else ""
        raise ElasticsearchError(f"index {index!r} holds {count} of {expected} passages"
                                 + (f"; failed: {listed}{more}" if failed else "")
                                 + ". The previous index (if any) is still the one served; fix the cause and rerun.")


def swap_alias(client: Any, alias: str, new_index: str, old_indices: list[str]) -> None:
    """Point ``alias`` at ``new_index`` only, in one atomic call; then drop the old indices."""
    actions = [{"remove": {"index": old, "alias": alias}} for old in old_indices]
    actions.append({"add": {"index": new_index, "alias": alias}})
    client.indices.update_aliases(body={"actions": actions})
    for old in old_indices:
        client.indices.delete(index=old)


def delete_quietly(client: Any, index: str) -> None:
    """Remove a half-built index after a failure (the failure itself is what the user needs to see)."""
    try:
        client.indices.delete(index=index)
    except Exception as err:  # noqa: BLE001 - best effort; the original error is re-raised by the caller
        logger.warning("could not delete the half-built index %s (%s); delete it by hand.", index, err)
