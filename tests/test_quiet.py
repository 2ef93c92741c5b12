"""Library calls stay quiet, and the CLI keeps third-party noise to one line (issue 29, part 5)."""
from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from odqa.utils.logs import OneLineForeignFormatter
from tests.conftest import REPO, SAMPLE_DIR
from tests.test_pipeline import WINDOW, save_tiny_reader

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_loading_and_reading_a_huge_question_print_only_odqas_own_warning(tmp_path, char_tokenizer_dir, capfd, caplog):
    from transformers.utils import logging as tf_logging

    from odqa.pipeline import ExtractiveReader
    from odqa.reader.answers import PassageToRead

    reader_dir = save_tiny_reader(tmp_path, char_tokenizer_dir)
    config = json.loads((reader_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["model_max_length"] = 512  # as a real model's tokenizer says: the warning's trigger
    (reader_dir / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    tf_logging.enable_progress_bar()  # whatever an earlier test did: the bar is on, as in a fresh notebook
    capfd.readouterr()

    reader = ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, batch_size=8)
    assert tf_logging.is_progress_bar_enabled()  # restored after the load
    with caplog.at_level(logging.WARNING):
        answers = reader.read(["한글은 " * 2000 + "누가 만들었나?"], [[PassageToRead("p1", "세종대왕이 한글을 만들었다.", "한글")]])
    err = capfd.readouterr().err
    assert answers[0]  # it still answered
    assert "Loading weights" not in err
    assert "Token indices sequence length" not in err + caplog.text
    assert "longer than max_query_length" in caplog.text  # odqa's own, clear warning is kept


def test_foreign_records_are_one_line_and_odqas_keep_their_traceback():
    formatter = OneLineForeignFormatter("%(levelname)s %(name)s: %(message)s")
    try:
        raise ConnectionError("refused\nby the host")
    except ConnectionError:
        exc_info = sys.exc_info()
    foreign = logging.LogRecord("elastic_transport.transport", logging.WARNING, __file__, 1, "retrying %s", ("GET /",),
                                exc_info)
    line = formatter.format(foreign)
    assert line == "WARNING elastic_transport.transport: retrying GET / (ConnectionError: refused by the host)"
    ours = logging.LogRecord("odqa.serve", logging.ERROR, __file__, 1, "failed", (), exc_info)
    assert "Traceback" in formatter.format(ours)


def test_unreachable_elasticsearch_is_one_clear_line(tmp_path):
    pytest.importorskip("elasticsearch")
    done = subprocess.run([sys.executable, "-m", "odqa", "eval-retrieval", "--dataset", str(SAMPLE_DIR / "validation.json"),
                           "--retriever", "elasticsearch", "--es_url", "http://127.0.0.1:9"],
                          check=False, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and "cannot reach Elasticsearch" in lines[-1]
    assert "Traceback" not in done.stderr and len(lines) <= 3, done.stderr[-3000:]
