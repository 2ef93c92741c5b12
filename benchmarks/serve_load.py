"""`odqa serve` under load, as a shared machine sees it: the real command, API keys, a mix of requests, a burst.

Starts ``python -m odqa serve`` (the shipped reader unless ``--model``) on a free loopback port over a bm25
index of the whole KorQuAD half, waits for ``/health`` to say ok (the model loaded and warmed up), then
runs ``odqa.serve.load.run_load`` — the same generator as ``tests/test_serve_load.py``, longer: ``--clients``
threads, every ``--bad_every``-th request a bad one (empty, too long, bad JSON, wrong key), then a burst of
``--burst`` requests at once past ``--max_queue``. Questions come from the held-out odd articles. Reports
requests/s, p50/p99 of the answered questions, the share of 503s, and checks the server's ``/metrics``
against what the clients counted. Finally SIGTERM, and the exit code.

  flock /tmp/odqa-cpu.lock python benchmarks/serve_load.py
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import KORQUAD, REPO, machine, publish  # noqa: E402


def wait_ready(url: str, server: subprocess.Popen, timeout: float = 900) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}:\n{server.stderr.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not become ready in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="e5-small-korquad")
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests_per_client", type=int, default=12)
    parser.add_argument("--bad_every", type=int, default=4, help="every n-th request of a client is a bad one")
    parser.add_argument("--burst", type=int, default=48)
    parser.add_argument("--max_queue", type=int, default=16)
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--no_write", action="store_true")
    args = parser.parse_args()

    from odqa.serve.app import free_port
    from odqa.serve.load import run_load, scrape, send

    payload = json.loads(Path(args.dataset).read_text(encoding="utf-8"))
    questions = [qa["question"] for i, article in enumerate(payload["data"]) if i % 2 == 1
                 for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    work = Path(tempfile.mkdtemp(prefix="odqa-serve-load-"))
    env = {**os.environ, "ODQA_API_KEYS": (key := secrets.token_hex(24)), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "odqa", "index", "--corpus", args.dataset, "--output", str(work / "index")],
                   check=True, cwd=REPO, env=env, capture_output=True)
    index_seconds = time.perf_counter() - start
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "odqa", "serve", "--index", str(work / "index"), "--model",
                               args.model, "--port", str(port), "--top_k", str(args.top_k), "--max_queue",
                               str(args.max_queue), "--log_format", "json", "--log_level", "warning"],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        ready = wait_ready(url, server)
        report = run_load(url, questions, args.clients, args.requests_per_client, key, args.bad_every, args.burst)
        metrics = scrape(url, key)
        after = send(url, "good", questions[0], key)
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=600)
    finally:
        if server.poll() is None:
            server.kill()
    summary = report.summary()
    n_main = args.clients * args.requests_per_client
    main_part, burst = report.replies[:n_main], report.replies[n_main:]
    counted = report.by_status()
    served = {s: int(metrics.get(("odqa_requests_total", (("route", "/answer"), ("status", s))), 0)) for s in counted}
    crosstalk = sum(1 for r in report.replies if r.status == 200 and r.body["results"][0]["question"] != r.question)
    bad_ok = all(400 <= r.status < 500 for r in main_part if r.kind != "good")
    main_good = [r for r in main_part if r.kind == "good"]
    print(json.dumps({**summary, "ready_seconds": round(ready, 1), "exit_code": code, "metrics_equal": served == counted,
                      "crosstalk": crosstalk}, indent=1))

    lines = [
        "## `odqa serve` under load: keys, a request mix and a burst (`benchmarks/serve_load.py`)", "",
        f"Command: `flock /tmp/odqa-cpu.lock python benchmarks/serve_load.py --clients {args.clients} "
        f"--requests_per_client {args.requests_per_client} --bad_every {args.bad_every} --burst {args.burst} "
        f"--max_queue {args.max_queue}`  ",
        f"Machine: {machine()}.  ",
        f"`python -m odqa serve` with `--model {args.model}`, API keys on, bm25 index of the whole KorQuAD half "
        f"({index_seconds:.0f} s to build), top_k {args.top_k}, fp32; ready (loaded + one warm-up question) "
        f"{ready:.1f} s after start. {args.clients} clients x {args.requests_per_client} requests (every "
        f"{args.bad_every}th bad: empty, too long, bad JSON, wrong key), then {args.burst} at once; questions "
        "from the held-out odd articles.", "",
        "| requests | seconds | requests/s | answered | p50 (s) | p99 (s) | 503 share | statuses |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| {summary['requests']} | {summary['seconds']} | {summary['requests_per_second']} | {summary['answered']} | "
        f"{summary['p50_s']} | {summary['p99_s']} | {100 * summary['share_503']:.1f}% | "
        f"{', '.join(f'{k}: {v}' for k, v in sorted(summary['statuses'].items()))} |", "",
        f"Checks: good requests of the clients all answered: {all(r.status == 200 for r in main_good)}; every bad "
        f"one a 4xx: {bad_ok}; the burst only 200/503: {all(r.status in (200, 503) for r in burst)}; answers "
        f"for another question: {crosstalk}; `/metrics` counts equal to the clients': {served == counted}; "
        f"answers after the burst: {after.status == 200}; exit code after SIGTERM: {code}.",
    ]
    publish("serve_load", "\n".join(lines), args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
