"""`odqa serve` on a shared machine (issue 29): API keys, request ids, access log, /metrics, loading state,
a bounded load test on loopback, and a graceful SIGTERM of the real command."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import pytest

pytest.importorskip("fastapi", reason="odqa serve needs FastAPI: pip install odqa[serve]")
pytest.importorskip("uvicorn", reason="odqa serve needs uvicorn: pip install odqa[serve]")
pytest.importorskip("prometheus_client", reason="odqa serve needs prometheus-client: pip install odqa[serve]")

from odqa.errors import ConfigError
from odqa.serve.access import key_id, match_key, read_api_keys
from odqa.serve.app import ServeOptions, background_server, create_app, free_port
from odqa.serve.load import BAD_KINDS, run_load, scrape, send
from tests.conftest import REPO, SAMPLE_DIR
from tests.test_serve import QUESTIONS, pipeline, request_json  # noqa: F401, F811  (pipeline: a fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KEY, OTHER_KEY = "k" * 16 + "-client-one", "o" * 16 + "-client-two"


def call(url: str, path: str, body=None, headers=None) -> tuple[int, object, dict]:
    return request_json(url, path, body, headers=headers)


def test_keys_are_read_checked_and_never_shown():
    assert read_api_keys("KEYS", {"KEYS": f"{KEY}, {OTHER_KEY}\n"}) == [KEY, OTHER_KEY]
    assert read_api_keys(None, {}) == []
    with pytest.raises(ConfigError, match="KEYS is not set or empty"):
        read_api_keys("KEYS", {"KEYS": " "})
    with pytest.raises(ConfigError, match="shorter than 16") as err:
        read_api_keys("KEYS", {"KEYS": "short"})
    assert "short" not in str(err.value).replace("shorter", "")  # the key itself is never echoed
    assert match_key(OTHER_KEY, [KEY, OTHER_KEY]) == key_id(OTHER_KEY) != key_id(KEY)
    assert match_key(KEY[:-1], [KEY]) is None and match_key(None, [KEY]) is None
    assert len(key_id(KEY)) == 8 and key_id(KEY) not in KEY


def test_keys_request_ids_access_log_and_metrics(pipeline, caplog):
    options = ServeOptions(top_k=3, max_wait_ms=5, model="tiny", index="sample", api_keys=[KEY, OTHER_KEY],
                           log_format="json")
    with caplog.at_level(logging.INFO, logger="odqa.serve.access"), \
            background_server(create_app(pipeline, options)) as url:
        assert call(url, "/health")[0] == 200 and call(url, "/")[0] == 200  # open: a load balancer, the page
        status, body, headers = call(url, "/answer", {"question": QUESTIONS[0]})
        assert status == 401 and "needs an API key" in body["detail"] and headers["www-authenticate"] == "Bearer"
        status, body, _ = call(url, "/answer", {"question": QUESTIONS[0]}, {"Authorization": "Bearer wrong-key"})
        assert status == 401 and body["detail"] == "wrong API key."
        assert call(url, "/metrics")[0] == 401 and call(url, "/openapi.json")[0] == 401

        status, body, headers = call(url, "/answer", {"question": QUESTIONS[1]},
                                     {"Authorization": f"Bearer {KEY}", "X-Request-ID": "trace-42"})
        assert status == 200 and body["results"][0]["question"] == QUESTIONS[1] and headers["x-request-id"] == "trace-42"
        status, _, headers = call(url, "/answer", {"question": QUESTIONS[2]},
                                  {"X-API-Key": OTHER_KEY, "X-Request-ID": "bad id\twith spaces"})
        assert status == 200 and len(headers["x-request-id"]) == 32 and " " not in headers["x-request-id"]
        status, body, _ = call(url, "/answer", {"question": ""}, {"X-API-Key": KEY})
        assert status == 422
        metrics = scrape(url, KEY)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "odqa.serve.access"]
    answered = [line for line in lines if line["route"] == "/answer" and line["status"] == 200]
    assert answered[0]["request_id"] == "trace-42"
    assert {line["key_id"] for line in answered} == {key_id(KEY), key_id(OTHER_KEY)}
    assert all(line["questions"] == 1 and line["top_k"] == 3 and line["batch_id"] >= 1 for line in answered)
    assert all("question_text" not in line for line in lines)  # only with --log_questions
    assert KEY not in caplog.text and OTHER_KEY not in caplog.text and QUESTIONS[1] not in caplog.text
    assert metrics[("odqa_requests_total", (("route", "/answer"), ("status", "200")))] == 2
    assert metrics[("odqa_requests_total", (("route", "/answer"), ("status", "401")))] == 2
    assert metrics[("odqa_unauthorized_total", ())] == 4  # two /answer, /metrics, /openapi.json
    assert metrics[("odqa_questions_total", ())] == 2 and metrics[("odqa_ready", ())] == 1
    assert metrics[("odqa_batch_questions_count", ())] == 2
    assert metrics[("odqa_stage_seconds_count", (("stage", "read"),))] == 2
    assert metrics[("odqa_server_info", (("index", "sample"), ("model", "tiny"), ("no_answer_threshold", ""),
                                         ("retriever", "bm25"), ("version", __import__("odqa").__version__)))] == 1


def test_question_texts_are_logged_only_when_asked(pipeline, caplog):
    options = ServeOptions(top_k=2, max_wait_ms=5, log_questions=True)
    with caplog.at_level(logging.INFO, logger="odqa.serve.access"), \
            background_server(create_app(pipeline, options)) as url:
        assert call(url, "/answer", {"question": QUESTIONS[3]})[0] == 200
    (line,) = [r.getMessage() for r in caplog.records if r.name == "odqa.serve.access" and "/answer" in r.getMessage()]
    assert line.startswith("POST /answer 200 ") and QUESTIONS[3] in line and "key_id" not in line


def test_health_says_loading_until_the_pipeline_is_ready(pipeline):
    release = threading.Event()

    def slow_loader():
        release.wait(30)
        return pipeline

    with background_server(create_app(options=ServeOptions(top_k=2), loader=slow_loader)) as url:
        status, body, headers = call(url, "/health")
        assert status == 503 and body["status"] == "loading" and headers["retry-after"]
        status, body, headers = call(url, "/answer", {"question": QUESTIONS[0]})
        assert status == 503 and "loading" in body["detail"] and headers["retry-after"]
        assert "(모델을 불러오는 중" in call(url, "/")[1]  # the page can say so
        release.set()
        deadline = time.monotonic() + 30
        while call(url, "/health")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        status, body, _ = call(url, "/health")
        assert status == 200 and body["status"] == "ok" and body["ready_since"]
        assert call(url, "/answer", {"question": QUESTIONS[0]})[0] == 200


def test_a_loader_that_fails_is_reported(pipeline):
    failures = []

    def broken():
        raise ConfigError("--index nowhere: not found")

    with background_server(create_app(options=ServeOptions(), loader=broken, on_load_failure=failures.append)) as url:
        deadline = time.monotonic() + 10
        while not failures and time.monotonic() < deadline:
            time.sleep(0.02)
        status, body, _ = call(url, "/health")
        assert status == 503 and body["status"] == "failed"
    assert "nowhere" in str(failures[0])


def test_load_mix_burst_and_metrics_agree(pipeline):
    """Clients with good and bad requests, then a burst past max_queue: every good request gets its own answer,
    every bad one a 4xx, only the burst sees 503s, /metrics counts what the clients counted."""
    options = ServeOptions(top_k=3, max_wait_ms=2, max_batch_size=1, max_queue=3, api_keys=[KEY], access_log=False)
    with background_server(create_app(pipeline, options)) as url:
        report = run_load(url, QUESTIONS, clients=3, requests_per_client=12, key=KEY, bad_every=3, burst=40)
        metrics = scrape(url, KEY)
        after = send(url, "good", QUESTIONS[5], KEY)
    main, burst = report.replies[:36], report.replies[36:]
    for reply in main:
        if reply.kind == "good":
            assert reply.status == 200 and reply.body["results"][0]["question"] == reply.question  # no cross-talk
        else:
            assert 400 <= reply.status < 500, (reply.kind, reply.status, reply.body)
    assert {r.kind for r in main} == {"good", *BAD_KINDS}
    assert {r.status for r in burst} <= {200, 503} and any(r.status == 503 for r in burst)
    assert all(r.body["results"][0]["question"] == r.question for r in burst if r.status == 200)
    assert all("Retry-After" not in str(r.body) for r in burst)  # the header carries it, checked in test_serve
    counted, by_status = report.by_kind_status(), report.by_status()
    for status, n in by_status.items():
        assert metrics[("odqa_requests_total", (("route", "/answer"), ("status", status)))] == n
    assert metrics[("odqa_rejected_total", (("reason", "overloaded"),))] == by_status["503"]
    good = sum(n for (kind, status), n in counted.items() if status == 200)
    assert metrics[("odqa_questions_total", ())] == good
    assert after.status == 200 and after.body["results"][0]["question"] == QUESTIONS[5]  # still answers
    summary = report.summary()
    assert summary["requests"] == 76 and summary["answered"] == good and 0 < summary["share_503"] < 1


# ---------------------------------------------------------------- the real command
@pytest.fixture(scope="module")
def served_files(tmp_path_factory, char_tokenizer_dir):
    """A reader with 512 positions (the command's default windows) and a bm25 index directory."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from odqa.reader.modeling import get_model
    from odqa.retrieval import get_retriever, load_corpus
    from tests.helpers_models import TINY_BERT

    root = tmp_path_factory.mktemp("served")
    tokenizer = AutoTokenizer.from_pretrained(str(char_tokenizer_dir))
    BertModel(BertConfig(vocab_size=len(tokenizer), **{**TINY_BERT, "max_position_embeddings": 512})
              ).save_pretrained(root / "encoder")
    get_model(str(root / "encoder")).save_pretrained(root / "reader")
    tokenizer.save_pretrained(root / "reader")
    get_retriever("bm25", tokenizer="bigram").index(load_corpus(str(SAMPLE_DIR / "train.json"))).save(root / "index")
    return root


def test_open_network_needs_keys_or_an_explicit_flag(served_files):
    base = [sys.executable, "-m", "odqa", "serve", "--index", str(served_files / "index"),
            "--model", str(served_files / "reader"), "--host", "0.0.0.0", "--port", str(free_port())]
    env = {k: v for k, v in os.environ.items() if k != "ODQA_API_KEYS"}
    done = subprocess.run(base, check=False, capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert done.returncode == 2 and "--allow_unauthenticated" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(base + ["--api_key_env", "MY_KEYS"], check=False, capture_output=True, text=True, timeout=120, cwd=REPO,
                          env=env)
    assert done.returncode == 2 and "MY_KEYS is not set or empty" in done.stderr


def test_sigterm_mid_burst_finishes_accepted_requests_and_exits_0(served_files):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ODQA_API_KEYS": KEY}
    server = subprocess.Popen([sys.executable, "-m", "odqa", "serve", "--index", str(served_files / "index"),
                               "--model", str(served_files / "reader"), "--port", str(port), "--max_wait_ms", "0",
                               "--max_batch_size", "1", "--top_k", "10", "--shutdown_timeout", "60",
                               "--log_format", "json"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status = call(url, "/health")[0]
            except urllib.error.URLError:
                status = 0
            if status == 200:
                break
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()[-3000:]
            time.sleep(0.1)
        with ThreadPoolExecutor(24) as pool:
            futures = [pool.submit(send, url, "good", QUESTIONS[n % len(QUESTIONS)], KEY) for n in range(24)]
            wait(futures, timeout=120, return_when=FIRST_COMPLETED)  # one read, the others queued (one per batch)
            server.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            late = [pool.submit(send, url, "good", QUESTIONS[0], KEY) for _ in range(4)]
            replies = [f.result() for f in futures + late]
        code = server.wait(timeout=90)
    finally:
        if server.poll() is None:
            server.kill()
    stderr = server.stderr.read()
    assert code == 0, stderr[-3000:]
    for reply in replies:  # answered, refused with 503, or never accepted (the listener was closed): none lost
        assert reply.status in (200, 503) or not reply.accepted, (reply.status, reply.error)
        if reply.status == 200:
            assert reply.body["results"][0]["question"] == reply.question
    # the signal came mid-burst: requests accepted before it were still answered after it
    assert any(r.status == 200 and r.finished > signalled + 0.05 for r in replies[:24]), \
        sorted(round(r.finished - signalled, 3) for r in replies)
    access = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert sum(1 for a in access if a["route"] == "/answer" and a["status"] == 200) == \
        sum(r.status == 200 for r in replies)
    assert "stopping: finishing" in stderr and "Traceback" not in stderr


def test_the_page_asks_for_the_key_once_and_keeps_it_for_the_tab(pipeline):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.test_serve import _browser

    options = ServeOptions(top_k=2, max_wait_ms=5, api_keys=[KEY], access_log=False)
    with background_server(create_app(pipeline, options)) as url:
        browser = _browser()
        try:
            browser.get(url + "/")
            WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "status").text)  # /health is open
            browser.find_element(By.ID, "question").send_keys(QUESTIONS[1])
            browser.find_element(By.ID, "submit").click()
            prompt = WebDriverWait(browser, 30).until(expected_conditions.alert_is_present())
            assert "API 키" in prompt.text
            prompt.send_keys(KEY)
            prompt.accept()
            WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#answers .answer"))
            assert browser.execute_script("return sessionStorage.getItem('odqa-api-key')") == KEY
            assert browser.execute_script("return localStorage.length") == 0  # the tab only, nothing lasting
            box = browser.find_element(By.ID, "question")  # a second question: no prompt this time
            box.clear()
            box.send_keys(QUESTIONS[2])
            browser.find_element(By.ID, "submit").click()
            WebDriverWait(browser, 60).until(lambda b: "초" in b.find_element(By.ID, "message").text)
            assert not expected_conditions.alert_is_present()(browser)
            assert "error" not in (browser.find_element(By.ID, "message").get_attribute("class") or "")
        finally:
            browser.quit()
