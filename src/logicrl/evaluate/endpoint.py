"""The HTTP backend: an OpenAI-compatible chat-completions server (vLLM, SGLang, ``transformers serve``,
a hosted API) answers the puzzles; responses are scored like local ones.

One request per sample (``n`` is not supported by every server), ``concurrency`` requests in flight, each
retried on connection errors, timeouts, 429 and 5xx answers with exponential backoff (0.5 s, 1 s, 2 s, …;
a ``Retry-After`` header is honoured up to 30 s). A server that cannot be reached, or that refuses a
request for good (400, 401, 404, …, or a redirect, which is not followed), stops the run with a one-line
`EndpointError`. That first failure, or Ctrl-C, returns at once: the other requests stop retrying, and one
still on the wire ends by its timeout in a daemon thread that nothing waits for.

The ``<think>`` pre-fill cannot be forced through a chat API: the messages are the system instruction and
the quiz, and each response is scored with ``prefilled_think = starts_inside_think(response)`` (a response
that opens its own ``<think>`` is read as is; one that starts with reasoning is read as if the pre-fill had
been there). A think block that the server's reasoning parser cut out into ``reasoning_content`` or
``reasoning`` is put back, as ``<think>reasoning</think>content`` (content given as a list of text parts is
joined). ``length`` is the server's ``usage.completion_tokens``; ``truncated`` is
``finish_reason == "length"``. Each answer is capped by ``max_tokens``; a server that refuses that key and names
``max_completion_tokens`` instead (OpenAI's reasoning models: "Unsupported parameter: 'max_tokens' … Use
'max_completion_tokens' instead") gets the cap under that name, for that request and every later one.

Credentials: no key is sent unless the caller passes one (``api_key``, or the environment variable named by
``api_key_env``), and never over plain ``http://`` except to a loopback host (127.0.0.0/8, ::1, localhost),
which is asked directly (no proxy from the environment, no ``.netrc``).
A base URL with credentials in it (``user:pass@host``, or a query parameter such as ``?key=…``) is refused.
"""

from __future__ import annotations

import ipaddress
import os
import queue
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2

from logicrl.errors import UserError
from logicrl.evaluate.config import ENV_NAME, NOT_A_VARIABLE
from logicrl.evaluate.scoring import Scorer, resolve_scorer
from logicrl.prompts import PromptConfig, chat_messages
from logicrl.reward.parse import message_text, starts_inside_think
from logicrl.reward.score import RewardConfig

T = TypeVar("T")
R = TypeVar("R")

# The message fields in which a server's reasoning parser puts the think block it cut out of the content, tags
# removed (vLLM and SGLang with --reasoning-parser, the DeepSeek API: reasoning_content; newer vLLM: reasoning).
REASONING_FIELDS = ("reasoning_content", "reasoning")
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 30.0


class EndpointError(UserError):
    """The endpoint could not be reached or refused a request (printed as one line)."""


class _WantsCompletionTokens(EndpointError):
    """A 400 refusal of ``max_tokens`` that names ``max_completion_tokens`` (OpenAI's reasoning models)."""


@dataclass(frozen=True)
class Completion:
    """One chat completion: the text, its length in tokens (None if the server did not say), truncation."""

    text: str
    tokens: int | None
    truncated: bool


# A query parameter that carries a credential (``?key=…``, ``api-key``, ``access_token``, ``sig``): refused;
# ``api-version`` and the like are kept.
CREDENTIAL_PARAMETER = re.compile(r"^(?:.*[-_])?(?:key|apikey|token|secret|password|passwd|sig|signature|auth)$",
                                  re.IGNORECASE)


def completions_url(base_url: str) -> str:
    """``http://host:port/v1`` → ``http://host:port/v1/chat/completions`` (a full URL is kept; a query stays
    at the end: ``…/deployments/d?api-version=V`` → ``…/deployments/d/chat/completions?api-version=V``);
    EndpointError for a URL that `check_base_url` refuses."""
    check_base_url(base_url)
    parts = urllib.parse.urlsplit(base_url)
    path = parts.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path += "/chat/completions"
    return urllib.parse.urlunsplit(parts._replace(path=path))


def check_base_url(base_url: str) -> None:
    """Raise EndpointError for a base URL that holds credentials (``user:pass@host``: httpx would send them as
    Basic auth, to any host, and they would be saved with the results), or that names the legacy
    ``/completions`` endpoint (this client speaks chat completions)."""
    parts = urllib.parse.urlsplit(base_url)
    if "@" in parts.netloc:
        raise EndpointError("the endpoint URL holds a user name or password (user:pass@host), which would be sent "
                            "and saved with the results: put the key in an environment variable and name it "
                            "with api_key_env=NAME")
    secret = [name for name, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
              if CREDENTIAL_PARAMETER.search(name)]
    if secret:
        raise EndpointError(f"the endpoint URL holds a credential in its query ({secret[0]}=…), which would be saved "
                            "with the results and printed in errors: put the key in an environment variable and "
                            "name it with api_key_env=NAME (sent as a bearer token)")
    path = parts.path.rstrip("/")
    if path.endswith("/completions") and not path.endswith("/chat/completions"):
        base = urllib.parse.urlunsplit(parts._replace(path=path.removesuffix("/completions")))
        raise EndpointError(f"{base_url} is the legacy completions endpoint; this client speaks chat completions: "
                            f"give the base URL, e.g. {base}")


def _is_loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine: ``localhost``, 127.0.0.0/8 or ::1."""
    if host is None:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_key_transport(url: str) -> None:
    """Raise EndpointError if a key sent to ``url`` could be read on the way: plain http to another host."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "https" and not _is_loopback(parts.hostname):
        raise EndpointError(f"refusing to send the API key to {url} over plain {parts.scheme or 'http'}: use "
                            "an https:// endpoint, or a loopback address for a local server")


class EndpointClient:
    """A thread-safe chat-completions client with retries; `complete` returns one `Completion`."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 300.0,
                 retries: int = 3, backoff_s: float = 0.5) -> None:
        self.url = completions_url(base_url)
        self.model = model
        self.token_limit = "max_tokens"  # the body key of the answer's length cap (`complete`)
        self.retries = retries
        self.backoff_s = backoff_s
        if api_key:
            _check_key_transport(self.url)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        parts = urllib.parse.urlsplit(self.url)
        local = parts.scheme.lower() == "http" and _is_loopback(parts.hostname)
        # trust_env=False for plain http to loopback: no HTTP_PROXY from the environment (which would see the key
        # in clear) and no .netrc
        self._client = httpx2.Client(timeout=timeout_s, headers=headers, trust_env=not local)

    def close(self) -> None:
        self._client.close()

    def check_reachable(self) -> None:
        """Raise EndpointError, after the retries, if no server accepts a connection at the URL: asked before a
        run replaces an output folder's results. Any HTTP answer will do (``GET …/models``, which not every
        server has), and so does a server too busy to answer in 10 s."""
        url = self.url.removesuffix("/chat/completions") + "/models"
        for attempt in range(self.retries + 1):
            try:
                self._client.get(url, timeout=10.0)
                return
            except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
                failure = _unreachable(self.url, exc)
            except httpx2.TransportError:  # connected: the server is there
                return
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2**attempt)
        raise EndpointError(f"{failure} [after {self.retries + 1} tries]")

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, top_p: float,
                 seed: int | None = None, stop: threading.Event | None = None) -> Completion:
        """One completion; raises EndpointError after the retries or on a refusal, and at once (before the next
        try, or in the backoff wait) once ``stop`` is set."""
        body: dict[str, Any] = {"model": self.model, "messages": messages, self.token_limit: max_tokens,
                                "temperature": temperature}
        if temperature > 0:
            body["top_p"] = top_p
        if seed is not None:
            body["seed"] = seed
        stop = stop or threading.Event()
        try:
            answer = self._post(body, stop)
        except _WantsCompletionTokens:  # the cap under the name the server asked for, for this and later requests
            self.token_limit = "max_completion_tokens"
            body["max_completion_tokens"] = body.pop("max_tokens")
            answer = self._post(body, stop)
        return _parse_completion(self.url, answer)

    def _post(self, body: dict[str, Any], stop: threading.Event) -> dict[str, Any]:
        """POST with retries, until ``stop`` is set; the decoded JSON answer."""
        for attempt in range(self.retries + 1):
            if stop.is_set():
                raise EndpointError(f"{self.url}: request stopped (the run ended)")
            wait = self.backoff_s * 2**attempt
            try:
                response = self._client.post(self.url, json=body)
            except httpx2.TimeoutException:
                failure = f"{self.url}: no answer within {self._client.timeout.read}s (raise timeout_s=...)"
            except httpx2.TransportError as exc:
                failure = _unreachable(self.url, exc)
            else:
                if 200 <= response.status_code < 300:
                    return _json(self.url, response)
                failure = _refusal(self.url, response)
                if (response.status_code == 400 and "max_tokens" in body
                        and "max_completion_tokens" in response.text):
                    raise _WantsCompletionTokens(failure)
                if response.status_code not in RETRY_STATUS:
                    raise EndpointError(failure)
                wait = max(wait, _retry_after(response))
            if attempt < self.retries and stop.wait(wait):
                raise EndpointError(f"{self.url}: request stopped (the run ended)")
        raise EndpointError(f"{failure} [after {self.retries + 1} tries]")


def _unreachable(url: str, exc: Exception) -> str:
    """The line for a server that could not be reached (connection refused, DNS, a dropped connection)."""
    return f"cannot reach {url}: {exc or type(exc).__name__} (is the server running?)"


def _json(url: str, response: httpx2.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise EndpointError(f"{url}: answer is not JSON: {response.text[:200]!r}") from None
    if not isinstance(data, dict):
        raise EndpointError(f"{url}: expected a JSON object, got {type(data).__name__}")
    return data


def _refusal(url: str, response: httpx2.Response) -> str:
    """One line for an error status: the server's own message, and a hint for the usual causes; for a redirect
    (not followed), where it points."""
    if 300 <= response.status_code < 400:
        location = urllib.parse.urljoin(url, response.headers.get("location", ""))
        return (f"{url} answered {response.status_code}, a redirect to {location[:300]}: redirects are not "
                "followed, give the URL it points to as the endpoint")
    try:  # {"error": {"message": …}} (OpenAI), {"detail": …} (FastAPI), {"message": …} (vLLM, SGLang)
        body = response.json()
        error = body.get("error", body.get("detail", body.get("message", "")))
        message = error.get("message", error) if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = response.text
    message = " ".join(str(message).split())[:300] or response.reason_phrase
    hints = {404: " (the base URL usually ends in /v1; is the model name the served one?)",
             401: " (name the API key's environment variable: api_key_env=NAME)", 403: " (check the API key)"}
    return f"{url} answered {response.status_code}: {message}{hints.get(response.status_code, '')}"


def _retry_after(response: httpx2.Response) -> float:
    try:
        return min(float(response.headers.get("retry-after", 0)), MAX_RETRY_AFTER_S)
    except ValueError:
        return 0.0


def _parse_completion(url: str, data: Mapping[str, Any]) -> Completion:
    try:
        choice = data["choices"][0]
        message = choice["message"]
        content = _content_text(url, message.get("content"))
    except (KeyError, IndexError, TypeError, AttributeError):
        raise EndpointError(f"{url}: answer has no choices[0].message: {str(data)[:200]}") from None
    text = message_text({**message, "content": content}, REASONING_FIELDS)
    usage = data.get("usage") or {}
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    truncated = choice.get("finish_reason") == "length"
    return Completion(text, tokens if isinstance(tokens, int) else None, truncated)


def _content_text(url: str, content: Any) -> str:
    """``message.content`` as text: a string, null (empty), or a list of parts whose ``text`` parts are
    joined (``[{"type": "text", "text": "…"}]``, as some gateways send)."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        for part in content:
            text = part.get("text") if isinstance(part, dict) and part.get("type", "text") == "text" else None
            if not isinstance(text, str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise EndpointError(f"{url}: choices[0].message.content holds a {kind!r} part, not text")
        return "".join(part["text"] for part in content)
    raise EndpointError(f"{url}: choices[0].message.content is a {type(content).__name__}, not text")


def endpoint_generate_and_score(
    client: EndpointClient, records: Sequence[Mapping[str, Any]], *, prompt: PromptConfig,
    reward: RewardConfig | None = None, max_new_tokens: int, n: int = 1, temperature: float = 0.0,
    top_p: float = 1.0, seed: int | None = None, concurrency: int = 8,
    progress: Callable[[int], None] | None = None, scorer: Scorer | None = None, first_index: int = 0,
) -> list[dict[str, Any]]:
    """``n`` completions per record through ``client``, scored (by ``scorer``, default the puzzle reward with
    ``reward``); rows as `generate_and_score` gives them.

    Sample j of record i gets seed ``seed + (first_index + i)·n + j`` (when ``seed`` is set), so a rerun asks
    the same, and so does a list cut into chunks (``first_index``: where ``records`` start in the whole list).
    """
    scorer = resolve_scorer(reward, scorer)
    jobs = [(i, j) for i in range(len(records)) for j in range(n)]

    stop = threading.Event()

    def ask(job: tuple[int, int]) -> Completion:
        i, j = job
        messages = chat_messages(str(records[i]["quiz"]), prompt)
        completion = client.complete(messages, max_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                     seed=None if seed is None else seed + (first_index + i) * n + j, stop=stop)
        if progress and j == n - 1:
            progress(1)
        return completion

    completions = run_all(ask, jobs, concurrency=concurrency, stop=stop)
    rows = []
    for (i, j), done in zip(jobs, completions, strict=True):
        length = done.tokens if done.tokens is not None else len(done.text.split())
        row, _ = scorer(records[i], sample=j, response=done.text, length=length, truncated=done.truncated,
                        prefilled_think=starts_inside_think(done.text))
        rows.append(row)
    return rows


def run_all(task: Callable[[T], R], jobs: Sequence[T], *, concurrency: int, stop: threading.Event) -> list[R]:
    """``task(job)`` for each job on up to ``concurrency`` daemon threads; the results in the jobs' order.

    The first failure, or an interrupt of the caller (Ctrl-C), sets ``stop`` and is raised at once: no new job
    starts, a task that checks ``stop`` ends at its next check, and a request already on the wire ends by its
    timeout in its daemon thread, which neither the caller nor the interpreter's exit waits for (a
    ThreadPoolExecutor joins its threads on exit)."""
    results: list[Any] = [None] * len(jobs)
    outcomes: queue.Queue[tuple[int, Any, bool]] = queue.Queue()
    pending = iter(range(len(jobs)))
    lock = threading.Lock()

    def work() -> None:
        while not stop.is_set():
            with lock:
                k = next(pending, None)
            if k is None:
                return
            try:
                outcomes.put((k, task(jobs[k]), True))
            except BaseException as exc:  # noqa: BLE001 -- handed to the caller, which raises it
                outcomes.put((k, exc, False))
                return

    try:
        for _ in range(min(concurrency, len(jobs))):
            threading.Thread(target=work, name="endpoint-request", daemon=True).start()
        for _ in jobs:
            while True:  # a timed wait, so that Ctrl-C is handled within a moment
                try:
                    k, value, ok = outcomes.get(timeout=0.2)
                    break
                except queue.Empty:
                    pass
            if not ok:
                raise value
            results[k] = value
    finally:
        stop.set()  # done, failed or interrupted: the threads that are left stop
    return results


def endpoint_client(
    base_url: str, model: str, *, api_key_env: str | None, timeout_s: float, retries: int
) -> EndpointClient:
    """A client for ``base_url`` serving ``model``: keyed from ``$api_key_env`` when a variable is named (it
    must be set), without a key otherwise."""
    return EndpointClient(base_url, model, api_key=endpoint_key(api_key_env), timeout_s=timeout_s, retries=retries)


def endpoint_key(api_key_env: str | None, base_url: str | None = None) -> str | None:
    """The API key in ``$api_key_env`` (which must be set), or None when no variable is named; with
    ``base_url``, an EndpointError too if the key could be read on its way there (`_check_key_transport`)."""
    if not api_key_env:
        return None
    if not ENV_NAME.fullmatch(api_key_env):  # a key pasted in its place: not echoed
        raise EndpointError(f"api_key_env {NOT_A_VARIABLE}")
    api_key = os.environ.get(api_key_env)
    if not api_key:
        raise EndpointError(f"api_key_env={api_key_env} names an unset or empty environment variable")
    if base_url is not None:
        _check_key_transport(completions_url(base_url))
    return api_key
