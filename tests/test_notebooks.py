"""The example notebooks run top to bottom (nbclient), so they never rot: on the sample data, with a tiny
reader (the notebook's READER parameter, set through the environment)."""
from __future__ import annotations

import os

import pytest

from tests.conftest import REPO
from tests.test_pipeline import WINDOW, save_tiny_reader

nbclient = pytest.importorskip("nbclient", reason="notebook tests need nbclient: pip install odqa[test]")
nbformat = pytest.importorskip("nbformat", reason="notebook tests need nbformat: pip install odqa[test]")

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path, char_tokenizer_dir, monkeypatch):
    pytest.importorskip("ipykernel", reason="notebook tests need a Python kernel: pip install ipykernel")
    reader = save_tiny_reader(tmp_path, char_tokenizer_dir)
    monkeypatch.setenv("ODQA_NOTEBOOK_READER", str(reader))
    monkeypatch.setenv("ODQA_NOTEBOOK_MAX_SEQ_LEN", str(WINDOW.max_seq_length))
    monkeypatch.setenv("ODQA_NOTEBOOK_DOC_STRIDE", str(WINDOW.doc_stride))
    monkeypatch.setenv("ODQA_NOTEBOOK_MAX_QUERY_LEN", str(WINDOW.max_query_length))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    notebook = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(REPO / "notebooks")}})
    client.execute()  # raises CellExecutionError, with the failing cell and its traceback, on any error
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("<mark>" in h for h in html)  # the answers were shown highlighted in their passages
    assert any("EM " in "".join(o.get("text", "")) for o in outputs)
