"""The HTTP backend against real servers on loopback: a scripted stdlib server (scoring, retries,
refusals, concurrency), an unreachable port, and `transformers serve` with the tiny model (needs the
transformers[serving] extra; skipped without it)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import pytest
from typer.testing import CliRunner

from logicrl.cli import app
from logicrl.config import load_config
from logicrl.errors import ConfigError, UserError
from logicrl.evaluate.config import EvalConfig
from logicrl.evaluate.endpoint import (
    EndpointClient,
    EndpointError,
    completions_url,
    endpoint_client,
    endpoint_generate_and_score,
)
from logicrl.evaluate.runner import ModelSpec, generate_rows
from logicrl.models import TINY_MODEL, resolve_model_path
from logicrl.prompts import SYSTEM_PROMPT, PromptConfig
from logicrl.reward.score import RewardConfig

Reply = Callable[[dict], tuple[int, dict] | tuple[int, dict, dict[str, str]]]


class ScriptedServer(ThreadingHTTPServer):
    """Answers POSTs with ``reply(body) -> (status, json)``; records the bodies and the most requests
    in flight at once."""

    daemon_threads = True

    def __init__(self, reply: Reply, delay_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reply, self.delay_s = reply, delay_s
        self.bodies: list[dict] = []
        self.keys: list[str | None] = []  # the Authorization header of each request
        self.active = self.most_active = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.bodies.append(body)
            self.server.keys.append(self.headers.get("Authorization"))
            self.server.active += 1
            self.server.most_active = max(self.server.most_active, self.server.active)
        time.sleep(self.server.delay_s)
        status, payload, *headers = self.server.reply(body)  # a third item: more headers, a dict
        with self.server.lock:
            self.server.active -= 1
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers[0] if headers else {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(reply: Reply, delay_s: float = 0.0) -> Iterator[ScriptedServer]:
    server = ScriptedServer(reply, delay_s)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def completion(text: str, tokens: int = 7, finish: str = "stop") -> dict:
    message = {"role": "assistant", "content": text}
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"completion_tokens": tokens}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_rows_are_scored_with_prefilled_think_detection(test_records: list[dict], respond) -> None:
    by_quiz = {r["quiz"]: r for r in test_records}

    def reply(body: dict) -> tuple[int, dict]:
        record = by_quiz[body["messages"][-1]["content"]]
        if record["n_people"] == 2:   # starts with reasoning: read as if <think> had been pre-filled
            return 200, completion(respond(record))
        if body["seed"] % 2 == 0:     # opens its own think block
            return 200, completion(respond(record, opens_think=True), finish="length")
        return 200, completion(f"<answer>{record['solution_text_format']}</answer>")  # no reasoning at all

    with serve(reply) as server:
        client = EndpointClient(server.url, "served-model", timeout_s=10, retries=0)
        rows = endpoint_generate_and_score(client, test_records, prompt=PromptConfig(), reward=RewardConfig(),
                                           max_new_tokens=64, n=2, temperature=0.7, top_p=0.9, seed=100)
        client.close()
    assert len(rows) == 2 * len(test_records)
    two = [r for r in rows if r["n_people"] == 2]
    assert all(r["solved"] and r["prefilled_think"] and r["length"] == 7 for r in two)
    three = [r for r in rows if r["n_people"] == 3]
    assert [r["solved"] for r in three] == [r["sample"] == 0 for r in three]
    assert all(r["truncated"] == r["solved"] for r in three)
    assert not any(r["prefilled_think"] for r in three if r["solved"])
    body = server.bodies[0]
    assert body["model"] == "served-model" and body["max_tokens"] == 64 and body["top_p"] == 0.9
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][0]["content"] == SYSTEM_PROMPT
    assert sorted(b["seed"] for b in server.bodies) == list(range(100, 100 + 2 * len(test_records)))


def complete(server_url: str, **client: object) -> object:
    """One chat completion of "hi" through a fresh client."""
    endpoint = EndpointClient(server_url, str(client.pop("model", "m")), timeout_s=10, **client)
    try:
        hi = [{"role": "user", "content": "hi"}]
        return endpoint.complete(hi, max_tokens=4, temperature=0.0, top_p=1.0)
    finally:
        endpoint.close()


def test_requests_run_concurrently(test_records: list[dict]) -> None:
    with serve(lambda body: (200, completion("x")), delay_s=0.2) as server:
        client = EndpointClient(server.url, "m", timeout_s=10, retries=0)
        endpoint_generate_and_score(client, test_records[:4], prompt=PromptConfig(), reward=RewardConfig(),
                                    max_new_tokens=8, concurrency=4)
        client.close()
    assert len(server.bodies) == 4 and server.most_active >= 2


def test_retries_server_errors_then_succeeds() -> None:
    answers = iter([(503, {"error": {"message": "loading"}}), (429, {"error": "slow down"}),
                    (200, completion("ok"))])
    with serve(lambda body: next(answers)) as server:
        done = complete(server.url, retries=2, backoff_s=0.01)
    assert done.text == "ok" and done.tokens == 7 and not done.truncated
    assert len(server.bodies) == 3 and "top_p" not in server.bodies[0]  # greedy sends no top_p


def test_gives_up_after_retries_with_one_line() -> None:
    with serve(lambda body: (503, {"error": {"message": "model is loading"}})) as server:
        with pytest.raises(EndpointError, match=r"answered 503: model is loading \[after 2 tries\]") as info:
            complete(server.url, retries=1, backoff_s=0.01)
    assert "\n" not in str(info.value) and len(server.bodies) == 2


def test_refusal_is_not_retried() -> None:
    with serve(lambda body: (404, {"error": {"message": "model 'nope' not found"}})) as server:
        with pytest.raises(EndpointError, match="answered 404: model 'nope' not found .*ends in /v1"):
            complete(server.url, model="nope", retries=3, backoff_s=0.01)
    assert len(server.bodies) == 1


def test_a_failure_stops_the_other_requests_at_once(test_records: list[dict]) -> None:
    """A refusal of one request ends the call at once, while the others are still retrying 503s; their
    threads stop too (no request after the call returned)."""
    refused = test_records[0]["quiz"]

    def reply(body: dict) -> tuple[int, dict]:
        if body["messages"][-1]["content"] == refused:
            time.sleep(0.3)  # the others are in their backoff by now
            return 400, {"error": {"message": "bad request"}}
        return 503, {"error": {"message": "loading"}}

    with serve(reply) as server:
        client = EndpointClient(server.url, "m", timeout_s=60, retries=8, backoff_s=0.2)
        start = time.monotonic()
        with pytest.raises(EndpointError, match="answered 400: bad request"):
            endpoint_generate_and_score(client, test_records[:4], prompt=PromptConfig(), reward=RewardConfig(),
                                        max_new_tokens=8, concurrency=4)
        assert time.monotonic() - start < 10  # the 503s alone would take 50 s
        asked = len(server.bodies)
        time.sleep(1.0)  # the next tries of a thread that did not stop would come at 0.2, 0.4, 0.8 s
        assert len(server.bodies) == asked
        client.close()


def test_ctrl_c_stops_at_once_although_requests_hang(test_records: list[dict]) -> None:
    """Ctrl-C in the caller returns control at once; the requests on the wire (the server never answers them
    within their 60 s timeout) are left to their daemon threads."""
    release = threading.Event()

    def reply(body: dict) -> tuple[int, dict]:
        release.wait(15)
        return 503, {"error": {"message": "too late"}}

    with serve(reply) as server:
        client = EndpointClient(server.url, "m", timeout_s=60, retries=3, backoff_s=1)
        ctrl_c = (threading.main_thread().ident, signal.SIGINT)
        timer = threading.Timer(0.5, signal.pthread_kill, ctrl_c)
        timer.start()
        start = time.monotonic()
        try:
            with pytest.raises(KeyboardInterrupt):
                endpoint_generate_and_score(client, test_records[:2], prompt=PromptConfig(),
                                            reward=RewardConfig(), max_new_tokens=8, concurrency=2)
            assert time.monotonic() - start < 10
        finally:
            timer.cancel()
            release.set()
        client.close()


def test_a_vllm_style_error_message_is_read() -> None:
    error = {"object": "error", "message": "max_tokens too large", "type": "BadRequestError", "code": 400}
    with (serve(lambda body: (400, error)) as server,
          pytest.raises(EndpointError, match="answered 400: max_tokens too large$")):
        complete(server.url, retries=0)


def test_a_server_that_wants_max_completion_tokens_gets_the_cap_under_that_name() -> None:
    """OpenAI's reasoning models refuse ``max_tokens`` and name ``max_completion_tokens``: the request is sent again
    with the cap under that name, and the client keeps it; any other 400 stays a refusal, and so does a refusal of
    the new name (no loop)."""
    refusal = {"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                                    "'max_completion_tokens' instead.", "type": "invalid_request_error",
                         "param": "max_tokens", "code": "unsupported_parameter"}}
    with serve(lambda body: (400, refusal) if "max_tokens" in body else (200, completion("ok"))) as server:
        client = EndpointClient(server.url, "o3-mini", timeout_s=10, retries=0)
        hi = [{"role": "user", "content": "hi"}]
        try:
            assert client.complete(hi, max_tokens=4, temperature=1.0, top_p=1.0).text == "ok"
            assert client.complete(hi, max_tokens=5, temperature=1.0, top_p=1.0).text == "ok"
        finally:
            client.close()
    assert [{k: b.get(k) for k in ("max_tokens", "max_completion_tokens")} for b in server.bodies] == [
        {"max_tokens": 4, "max_completion_tokens": None}, {"max_tokens": None, "max_completion_tokens": 4},
        {"max_tokens": None, "max_completion_tokens": 5}]
    with (serve(lambda body: (400, refusal)) as server,
          pytest.raises(EndpointError, match="answered 400: Unsupported parameter: 'max_tokens'")):
        complete(server.url, retries=0)
    assert len(server.bodies) == 2


def test_a_redirect_is_a_refusal_that_says_where_it_points() -> None:
    moved = (307, {}, {"Location": "/v2/chat/completions"})
    where = r"answered 307, a redirect to http://127\.0\.0\.1:\d+/v2/chat/completions: .*give the URL it points to"
    with serve(lambda body: moved) as server, pytest.raises(EndpointError, match=where):
        complete(server.url, retries=2, backoff_s=0.01)
    assert len(server.bodies) == 1


def test_unreachable_server_is_one_user_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    where = r"cannot reach http://127\.0\.0\.1:\d+/v1/chat/completions.*after 2 tries"
    with pytest.raises(UserError, match=where):
        complete(url, retries=1, backoff_s=0.01)


def test_malformed_answer_is_reported() -> None:
    with serve(lambda body: (200, {"choices": []})) as server:
        with pytest.raises(EndpointError, match="no choices"):
            complete(server.url, retries=0)


def test_content_given_as_a_list_of_text_parts_is_joined() -> None:
    parts = [{"type": "text", "text": "<think>a</think>"}, {"type": "text", "text": "<answer>b</answer>"}]
    with serve(lambda body: (200, completion(parts))) as server:  # type: ignore[arg-type]
        assert complete(server.url, retries=0).text == "<think>a</think><answer>b</answer>"


@pytest.mark.parametrize(("content", "kind"), [({"text": "x"}, "is a dict"), (7, "is a int"),
                                               ([{"type": "image_url", "image_url": {}}], "'image_url' part")])
def test_content_that_is_not_text_is_one_line(content: object, kind: str) -> None:
    where = rf"^http://127\.0\.0\.1:\d+/v1/chat/completions: .*{kind}"
    with (serve(lambda body: (200, completion(content))) as server,  # type: ignore[arg-type]
          pytest.raises(EndpointError, match=where) as info):
        complete(server.url, retries=0)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
@pytest.mark.parametrize("content", [None, "", "<answer>{answer}</answer>"])
def test_a_think_block_cut_out_by_the_servers_reasoning_parser_is_put_back(
        test_records: list[dict], field: str, content: str | None) -> None:
    record = test_records[0]
    answer = record["solution_text_format"]

    def reply(body: dict) -> tuple[int, dict]:
        data = completion(None if content is None else content.format(answer=answer))
        data["choices"][0]["message"][field] = f"Suppose {answer.splitlines()[0]}; then the rest follows."
        return 200, data

    with serve(reply) as server:
        client = EndpointClient(server.url, "m", timeout_s=10, retries=0)
        [row] = endpoint_generate_and_score(client, [record], prompt=PromptConfig(), reward=RewardConfig(),
                                            max_new_tokens=64)
        client.close()
    assert row["response"].startswith("<think>Suppose ") and not row["prefilled_think"]
    assert row["solved"] == bool(content)
    assert row["format_ok"] == bool(content), row


def test_no_key_is_sent_unless_its_variable_is_named(test_records: list[dict], monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("MY_SERVER_KEY", "sk-mine")
    with serve(lambda body: (200, completion("x"))) as server:
        for api_key_env in (None, "MY_SERVER_KEY"):
            cfg = EvalConfig(endpoint=server.url, api_key_env=api_key_env, retries=0)
            generate_rows(ModelSpec("m", "m"), test_records[:1], cfg, n=1)
        generate_rows(ModelSpec("m", "m"), test_records[:1], EvalConfig(endpoint=server.url), n=1)
    assert server.keys == [None, "Bearer sk-mine", None]  # http is fine for a key to loopback


@pytest.mark.parametrize("url", ["http://example.com/v1", "http://10.0.0.5:8000/v1",
                                 "http://127.0.0.1.nip.io/v1", "HTTP://EXAMPLE.COM/v1"])
def test_a_key_is_never_sent_over_plain_http_to_another_host(url: str) -> None:
    with pytest.raises(EndpointError, match="^refusing to send the API key to .* over plain http") as info:
        EndpointClient(url, "m", api_key="sk-secret")
    assert "\n" not in str(info.value) and "sk-secret" not in str(info.value)
    EndpointClient(url, "m").close()  # without a key: allowed


@pytest.mark.parametrize("url", ["https://api.example.com/v1", "http://127.0.0.1:8000/v1",
                                 "http://127.4.5.6/v1", "http://[::1]:8000/v1", "http://localhost:8000/v1",
                                 "http://LOCALHOST./v1"])
def test_a_key_may_go_to_https_or_loopback(url: str) -> None:
    EndpointClient(url, "m", api_key="sk-secret").close()


def test_a_loopback_server_is_asked_directly_not_through_an_environment_proxy(monkeypatch) -> None:
    """A proxy from the environment would see the key in clear over plain http."""
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with serve(lambda body: (200, completion("ok"))) as server:
        assert complete(server.url, api_key="sk-mine", retries=0).text == "ok"
    assert server.keys == ["Bearer sk-mine"]


def test_a_named_key_variable_must_be_set(monkeypatch) -> None:
    monkeypatch.delenv("MY_SERVER_KEY", raising=False)
    with pytest.raises(EndpointError, match="^api_key_env=MY_SERVER_KEY names an unset or empty"):
        endpoint_client("https://api.example.com/v1", "m", api_key_env="MY_SERVER_KEY", timeout_s=1,
                        retries=0)


@pytest.mark.parametrize("value", ["sk-proj-REALKEY", "sk_live REALKEY", "1REALKEY"])
def test_a_key_pasted_as_api_key_env_is_not_echoed(value: str) -> None:
    with pytest.raises(EndpointError, match="^api_key_env must name an environment variable") as info:
        endpoint_client("https://api.example.com/v1", "m", api_key_env=value, timeout_s=1, retries=0)
    assert "REALKEY" not in str(info.value)
    with pytest.raises(ConfigError, match="^api_key_env: must name an environment variable") as info:
        load_config(EvalConfig, None, [f"api_key_env={value}"])  # read from the config, --rescore too: not saved
    assert "REALKEY" not in str(info.value)


def test_eval_refuses_a_key_over_http_before_any_request(dataset, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    args = ["eval", "--endpoint", "http://example.com/v1", "-m", "served", "--data", str(dataset),
            "--out", str(tmp_path / "out"), "api_key_env=OPENAI_API_KEY"]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, EndpointError), result.output
    assert str(result.exception).startswith("refusing to send the API key to http://example.com/v1")
    assert not (tmp_path / "out" / "samples").exists()


@pytest.mark.parametrize("url, message", [
    ("http://user:sk-secret@127.0.0.1:9/v1", "user name or password"),
    ("https://sk-secret@api.example.com/v1", "user name or password"),
    ("ftp://user:sk-secret@host/v1", "user name or password"),
    ("https://api.example.com/v1?key=sk-secret", "holds a credential in its query"),
    ("https://h/v1?api-key=sk-secret", "holds a credential in its query"),
    ("https://h/d?api-version=1&access_token=sk-secret", "holds a credential in its query"),
    ("https://h/v1?SIG=sk-secret", "holds a credential in its query"),
])
def test_a_url_with_credentials_is_refused_before_any_output(url: str, message: str, dataset, tmp_path) -> None:
    """They were sent as Basic auth (over plain http to any host), or in the query, and saved in results.json
    and printed in every error line (``api-version`` stays a plain parameter: test_completions_url_keeps_the_query)."""
    result = CliRunner().invoke(app, ["eval", "--endpoint", url, "-m", "served", "--data", str(dataset),
                                      "--out", str(tmp_path / "out")])
    assert isinstance(result.exception, UserError), result.output
    said = str(result.exception)
    assert message in said and "api_key_env=NAME" in said
    assert "sk-secret" not in said and "\n" not in said
    assert not (tmp_path / "out").exists()
    with pytest.raises(EndpointError, match=message) as info:
        EndpointClient(url, "m")
    assert "sk-secret" not in str(info.value)


@pytest.mark.parametrize(("base", "url"), [
    ("http://h:8000/v1", "http://h:8000/v1/chat/completions"),
    ("http://h:8000/v1/", "http://h:8000/v1/chat/completions"),
    ("http://h/v1/chat/completions", "http://h/v1/chat/completions"),
    ("https://x/openai/deployments/d?api-version=2024-02-01",
     "https://x/openai/deployments/d/chat/completions?api-version=2024-02-01"),
    ("https://x/openai/deployments/d/?api-version=1", "https://x/openai/deployments/d/chat/completions?api-version=1"),
])
def test_completions_url_keeps_the_query(base: str, url: str) -> None:
    assert completions_url(base) == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1/completions", "http://127.0.0.1:9/v1/completions/"])
def test_the_legacy_completions_endpoint_is_refused(url: str, dataset, tmp_path) -> None:
    with pytest.raises(EndpointError, match=r"legacy completions endpoint; .* e\.g\. http://127\.0\.0\.1:9/v1$"):
        EndpointClient(url, "m")
    result = CliRunner().invoke(app, ["eval", "--endpoint", url, "-m", "served", "--data", str(dataset),
                                      "--out", str(tmp_path / "out")])
    assert isinstance(result.exception, UserError) and "speaks chat completions" in str(result.exception)
    assert not (tmp_path / "out").exists()


def test_a_resume_with_more_concurrency_sends_only_the_unfinished_requests(dataset, tmp_path) -> None:
    """6 puzzles, 8 samples each: --concurrency 1 sends chunks of 2 puzzles (16 requests); a refusal at the 17th
    stops the run with the first 2 puzzles kept. Resumed with --concurrency 2 (chunks of 4) and other local-backend
    keys (batch_size, dtype), it keeps them and asks only for the other 4 puzzles' 32 samples (each sample has its
    own seed, whatever the chunks)."""
    refuse_after = {"n": 16}

    def reply(body: dict) -> tuple[int, dict]:
        if refuse_after["n"] == 0:
            return 400, {"error": {"message": "stopped"}}
        refuse_after["n"] -= 1
        return 200, completion(f"seed {body['seed']}")

    out = tmp_path / "out"
    with serve(reply) as server:
        args = ["eval", "--endpoint", server.url, "-m", "served", "--data", str(dataset), "--out", str(out),
                "--samples", "8", "--max-tokens", "8", "--temperature", "1.0", "retries=0"]
        stopped = CliRunner().invoke(app, [*args, "--concurrency", "1"])
        assert isinstance(stopped.exception, EndpointError) and "stopped" in str(stopped.exception), stopped.output
        assert len(server.bodies) == 17
        server.bodies.clear()
        refuse_after["n"] = 1000
        # the local backend's keys are not an endpoint run's: changing them does not make it another run
        resumed = CliRunner().invoke(app, [*args, "--concurrency", "2", "batch_size=4", "dtype=bfloat16"])
    assert resumed.exit_code == 0, resumed.output
    assert "served: resuming an interrupted run: 16 samples of its first 2 puzzles kept" in resumed.stderr
    assert len(server.bodies) == 32
    assert sorted(b["seed"] for b in server.bodies) == list(range(16, 48))  # seed 0 + 8·(puzzle index) + sample
    saved = [json.loads(line) for line in (out / "samples" / "served.jsonl").read_text().splitlines()]
    assert [r["response"] for r in saved] == [f"seed {s}" for s in range(48)]


# --- a real OpenAI-compatible server: `transformers serve` (transformers[serving]) --------------------


@pytest.fixture(scope="module")
def transformers_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`transformers serve` preloading the tiny model from a local checkpoint on CPU, on loopback."""
    pytest.importorskip("fastapi", reason="needs transformers[serving] (fastapi, uvicorn, openai)")
    pytest.importorskip("uvicorn", reason="needs transformers[serving] (fastapi, uvicorn, openai)")
    model = resolve_model_path(TINY_MODEL, cache_dir=tmp_path_factory.mktemp("cache"))
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    code = "import sys; from transformers.cli.transformers import main; sys.exit(main())"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "serve", model, "--host", "127.0.0.1", "--port", str(port),
         "--device", "cpu"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_healthy(process, f"http://127.0.0.1:{port}/health", timeout_s=120)
        yield f"http://127.0.0.1:{port}/v1", model
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_healthy(process: subprocess.Popen, url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"transformers serve exited: {process.stderr.read()[-2000:]}")
        try:
            if httpx2.get(url, timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"transformers serve did not become healthy in {timeout_s}s")


def test_transformers_serve_backend(transformers_server: tuple[str, str], test_records: list[dict]) -> None:
    url, model = transformers_server
    client = EndpointClient(url, model, timeout_s=60, retries=1)
    records = test_records[:2]
    rows = endpoint_generate_and_score(client, records, prompt=PromptConfig(), reward=RewardConfig(),
                                       max_new_tokens=12, n=2, temperature=0.8, seed=0, concurrency=2)
    client.close()
    assert [(r["id"], r["sample"]) for r in rows] == [(r["id"], j) for r in records for j in range(2)]
    for row in rows:
        assert isinstance(row["response"], str) and 1 <= row["length"] <= 12
        assert row["truncated"] == (row["length"] == 12)
        assert not row["solved"] and row["reward"] <= -0.5   # a random model does not solve puzzles


def test_eval_command_through_transformers_serve(transformers_server: tuple[str, str], dataset,
                                                 tmp_path) -> None:
    url, model = transformers_server
    args = ["--endpoint", url, "-m", f"served={model}", "--data", str(dataset), "--limit", "1"]
    result = CliRunner().invoke(app, ["eval", *args, "--max-tokens", "6", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "| served | 0.00 | 0.00 | 0.00 | 0.00 |" in (tmp_path / "table.md").read_text()
    rows = [json.loads(line) for line in (tmp_path / "samples" / "served.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["model"] == "served" and r["length"] <= 6 for r in rows)
