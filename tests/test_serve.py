"""`odqa serve`: the API contract, errors, concurrent clients and micro-batching, on a real server
started on a free loopback port (tiny random reader + bm25 over the sample data)."""
from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi", reason="odqa serve needs FastAPI: pip install odqa[serve]")
pytest.importorskip("uvicorn", reason="odqa serve needs uvicorn: pip install odqa[serve]")

from odqa.serve.app import ServeOptions, background_server, create_app  # noqa: E402
from odqa.serve.batching import MicroBatcher  # noqa: E402
from tests.conftest import SAMPLE_DIR  # noqa: E402
from tests.test_pipeline import WINDOW, save_tiny_reader  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUESTIONS = ["경복궁이 처음 지어진 해는?", "한글을 만든 왕은?", "대한민국의 수도는?", "제주도에 있는 산은?",
             "김치의 주재료는?", "독도는 어느 바다에 있는가?", "세종대왕의 아버지는?", "한강은 어디로 흐르는가?"]


class RunningServer:
    """``background_server`` plus a small JSON client for the tests."""

    def __init__(self, app) -> None:
        self._context = background_server(app)

    def __enter__(self) -> "RunningServer":
        self.url = self._context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._context.__exit__(*exc)

    def request(self, path: str, body=None, raw: bytes | None = None) -> tuple[int, dict | str, dict]:
        return request_json(self.url, path, body, raw)


def request_json(url: str, path: str, body=None, raw: bytes | None = None, headers: dict | None = None
                 ) -> tuple[int, dict | str, dict]:
    """(status, parsed JSON or text, lower-cased headers) of one request; POST when there is a body."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode("utf-8"))
    req = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            status, payload, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as err:
        status, payload, got = err.code, err.read(), dict(err.headers)
    got = {k.lower(): v for k, v in got.items()}
    text = payload.decode("utf-8")
    return status, (json.loads(text) if "json" in got.get("content-type", "") else text), got


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, char_tokenizer_dir):
    from odqa.pipeline import ExtractiveReader, ODQAPipeline
    from odqa.retrieval import get_retriever, load_corpus

    reader_dir = save_tiny_reader(tmp_path_factory.mktemp("serve_reader"), char_tokenizer_dir)
    reader = ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, batch_size=16, show_progress=False)
    retriever = get_retriever("bm25", tokenizer="bigram").index(load_corpus(str(SAMPLE_DIR / "train.json")))
    return ODQAPipeline(retriever, reader)


@pytest.fixture(scope="module")
def server(pipeline):
    options = ServeOptions(top_k=3, max_wait_ms=150, model="tiny", index="sample")
    with RunningServer(create_app(pipeline, options)) as running:
        yield running


def test_answer_retrieve_health_page_and_schema(server, pipeline):
    status, body, _ = server.request("/answer", {"question": QUESTIONS[0], "num_answers": 2})
    assert status == 200
    (result,) = body["results"]
    assert result["question"] == QUESTIONS[0] and len(result["passages"]) == 3 and 1 <= len(result["answers"]) <= 2
    passages = {p["passage_id"]: p for p in result["passages"]}
    for answer in result["answers"]:  # offsets point into the passage that is returned with them
        assert passages[answer["passage_id"]]["text"][answer["start"]:answer["end"]] == answer["text"]
        assert 0 <= answer["probability"] <= 1
    direct = pipeline(QUESTIONS[0], top_k=3, num_answers=2)
    assert [a["text"] for a in result["answers"]] == [a.text for a in direct]

    status, body, _ = server.request("/retrieve", {"questions": QUESTIONS[:2], "top_k": 4})
    assert status == 200 and [r["question"] for r in body["results"]] == QUESTIONS[:2]
    assert [p["rank"] for p in body["results"][0]["passages"]] == [1, 2, 3, 4]
    expected = pipeline.retriever.retrieve(QUESTIONS[:1], 4)[0]
    assert [p["passage_id"] for p in body["results"][0]["passages"]] == [h.passage_id for h in expected]

    status, health, _ = server.request("/health")
    assert status == 200 and health["corpus_size"] == len(pipeline.retriever.corpus)
    assert health["retriever"] == "bm25" and health["model"] == "tiny" and health["version"]
    status, schema, _ = server.request("/openapi.json")
    assert {"/answer", "/retrieve", "/health"} <= set(schema["paths"])
    status, page, headers = server.request("/")
    assert status == 200 and 'lang="ko"' in page and "text/html" in headers["content-type"]
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere: works offline


@pytest.mark.parametrize("body, raw, status, words", [
    ({"question": "   "}, None, 422, "question is empty"),
    ({"questions": ["좋은 질문", ""]}, None, 422, "questions[1] is empty"),
    ({"question": "가" * 1001}, None, 422, "the limit is 1000"),
    ({"question": "a", "questions": ["b"]}, None, 422, "not both"),
    ({}, None, 422, "needs \"question\""),
    ({"question": 3}, None, 422, "must be a string"),
    ({"question": "한글?", "top_k": 0}, None, 422, "top_k must be an integer from 1"),
    ({"questions": "한글?"}, None, 422, "must be a list"),
    (None, b"{not json", 400, "not valid JSON"),
])
def test_bad_requests_get_a_one_line_reason(server, body, raw, status, words):
    got, payload, _ = server.request("/answer", body, raw=raw)
    assert got == status and words in payload["detail"] and "\n" not in payload["detail"]


def test_concurrent_clients_get_their_own_answers_read_in_shared_batches(server, pipeline):
    expected = {q: [a.text for a in pipeline(q, top_k=3)] for q in QUESTIONS}
    before = server.request("/health")[1]["batching"]
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        replies = list(pool.map(lambda q: server.request("/answer", {"question": q}), QUESTIONS))
    for question, (status, body, _) in zip(QUESTIONS, replies):
        assert status == 200 and body["results"][0]["question"] == question
        assert [a["text"] for a in body["results"][0]["answers"]] == expected[question]
    after = server.request("/health")[1]["batching"]
    calls = after["pipeline_calls"] - before["pipeline_calls"]
    assert after["questions"] - before["questions"] == len(QUESTIONS)
    assert calls < len(QUESTIONS) and after["largest_batch"] > 1  # requests were read together


def test_overload_is_a_503_not_a_crash(pipeline):
    gate = threading.Event()

    class SlowPipeline:
        retriever = pipeline.retriever

        def run(self, *args, **kwargs):
            gate.wait(30)
            return pipeline.run(*args, **kwargs)

    options = ServeOptions(top_k=2, max_queue=1, max_wait_ms=0, max_batch_size=1)
    with RunningServer(create_app(SlowPipeline(), options)) as running:
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(running.request, "/answer", {"question": q}) for q in QUESTIONS[:6]]
            time.sleep(1.0)  # one request is being read, one waits in the queue, the rest were turned away
            gate.set()
            replies = [f.result() for f in futures]
        statuses = sorted(status for status, _, _ in replies)
        assert statuses.count(200) >= 1 and 503 in statuses and set(statuses) <= {200, 503}
        busy = next((body, headers) for status, body, headers in replies if status == 503)
        assert "server busy" in busy[0]["detail"] and busy[1]["retry-after"] == "1"
        assert running.request("/health")[0] == 200


def test_micro_batcher_groups_by_top_k_and_shares_errors():
    calls = []

    def run(questions, top_k):
        calls.append((list(questions), top_k))
        if "boom" in questions:
            raise RuntimeError("reader failed")
        return [f"{q}@{top_k}" for q in questions]

    async def scenario():
        batcher = MicroBatcher(run, max_batch_size=10, max_wait_ms=50, max_queue=10)
        await batcher.start()
        results = await asyncio.gather(batcher.submit(["a", "b"], 3), batcher.submit(["c"], 5),
                                       batcher.submit(["d"], 3), return_exceptions=True)
        failed = await asyncio.gather(batcher.submit(["boom"], 1), batcher.submit(["x"], 1), return_exceptions=True)
        small = MicroBatcher(run, max_queue=1)
        with pytest.raises(RuntimeError, match="start"):
            await small.submit(["q"], 1)
        await batcher.stop()
        return results, failed

    results, failed = asyncio.run(scenario())
    assert results == [["a@3", "b@3"], ["c@5"], ["d@3"]]
    assert calls[:2] == [(["a", "b", "d"], 3), (["c"], 5)]  # one call per top_k, arrival order kept
    assert all(isinstance(f, RuntimeError) for f in failed)  # everyone in the failed batch hears about it


def _browser():
    """Headless Debian chromium through selenium, or a skip that says what to install."""
    import shutil

    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (in odqa[test])")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("the browser test needs Debian's chromium and chromium-driver (apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,1000", "--lang=ko-KR"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def test_the_page_in_a_real_browser_highlights_the_answer(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    question = QUESTIONS[1]
    expected = server.request("/answer", {"question": question})[1]["results"][0]["answers"][0]["text"]
    browser = _browser()
    try:
        browser.get(server.url + "/")
        WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "status").text)  # /health answered
        browser.find_element(By.ID, "question").send_keys(question)
        browser.find_element(By.ID, "submit").click()
        WebDriverWait(browser, 120).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#answers .answer"))
        first = browser.find_element(By.CSS_SELECTOR, "#answers .answer")
        highlighted = first.find_element(By.CSS_SELECTOR, "mark.answer-span").text
        assert highlighted.strip() == expected.strip() and highlighted.strip()
        assert first.find_element(By.CSS_SELECTOR, ".text").text.endswith(expected.strip())
        assert browser.find_element(By.ID, "passages-box").get_attribute("hidden") is None
        browser.save_screenshot(str(tmp_path / "serve_page.png"))
        assert (tmp_path / "serve_page.png").stat().st_size > 10_000
    finally:
        browser.quit()


def test_the_page_in_a_real_browser_says_no_answer_and_keeps_the_passages(server, pipeline):
    """A reader that abstains (threshold below every score): the page says the collection does not seem to hold
    the answer, shows no answer box, and still lists the passages it read."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    saved = pipeline.read_options.no_answer_threshold
    pipeline.read_options.no_answer_threshold = -1e9  # every best answer's no_answer_score is above it
    try:
        status, body, _ = server.request("/answer", {"question": QUESTIONS[0]})
        assert status == 200 and body["results"][0]["no_answer"] is True and body["results"][0]["answers"] == []
        read = [p["title"] or p["passage_id"] for p in body["results"][0]["passages"]]
        browser.get(server.url + "/")
        WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "status").text)
        browser.find_element(By.ID, "question").send_keys(QUESTIONS[0])
        browser.find_element(By.ID, "submit").click()
        WebDriverWait(browser, 120).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#answers .no-answer"))
        assert "does not seem to hold the answer" in browser.find_element(By.CSS_SELECTOR, "#answers .no-answer").text
        assert not browser.find_elements(By.CSS_SELECTOR, "#answers .answer")
        assert browser.find_element(By.ID, "passages-box").get_attribute("hidden") is None
        titles = browser.find_elements(By.CSS_SELECTOR, "#passages .passage-item .title")
        listed = [e.get_attribute("textContent") for e in titles]  # inside the closed <details>: not "visible"
        assert len(listed) == len(read) >= 1 and all(title in line for title, line in zip(read, listed))
    finally:
        pipeline.read_options.no_answer_threshold = saved
        browser.quit()
