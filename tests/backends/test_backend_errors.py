"""Errors and edge cases of the OpenAI-style backends, through ``httpx.MockTransport``.

The answers here are hand-written in the documented shapes (or recorded from the real
llama-server where marked); the real-server and protocol-fixture suites cover the rest.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from lloom_lsp.backends import (
    BackendAuthError,
    BackendError,
    BackendGatewayError,
    BackendHTTPError,
    BackendProtocolError,
    BackendUnavailable,
    OllamaBackend,
    OpenAIBackend,
    OpenAIChatBackend,
    create_backend,
    stream_steps,
)
from lloom_lsp.backends.base import allowed_logprobs
from lloom_lsp.config import BackendSettings
from lloom_lsp.engine import Prompt

SECRET = "sk-very-secret-key-4242"
Handler = Callable[[httpx.Request], httpx.Response]

MODELS = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "vllm"}]}
TAGS = {"models": [{"name": "m:latest"}]}


def _entry(token: str, logprob: float, alts: list[tuple[str, float]]) -> dict[str, Any]:
    def one(t: str, lp: float) -> dict[str, Any]:
        return {"token": t, "logprob": lp, "bytes": list(t.encode())}

    return {**one(token, logprob), "top_logprobs": [one(t, lp) for t, lp in alts]}


CHAT_ANSWER = {
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": " a"},
            "logprobs": {"content": [_entry(" a", -0.1, [(" a", -0.1), (" b", -2.5)])]},
            "finish_reason": "length",
        }
    ]
}
LEGACY_ANSWER = {
    "choices": [
        {
            "index": 0,
            "text": " a",
            "logprobs": {
                "tokens": [" a"],
                "token_logprobs": [-0.1],
                "top_logprobs": [{" b": -2.5, " a": -0.1}],
                "text_offset": [0],
            },
            "finish_reason": "length",
        }
    ]
}
OLLAMA_LINES = [
    {"response": " a", "done": False, "logprobs": [_entry(" a", -0.1, [(" a", -0.1)])]},
    {"response": "", "done": True, "done_reason": "length"},
]


def _ndjson(lines: list[Any]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


#: What every SSE server sends (httpx-sse refuses a stream without it).
SSE_HEADERS = {"content-type": "text/event-stream"}


def _sse(events: list[Any]) -> bytes:
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode() + b"data: [DONE]\n\n"


def _answering(answer: Handler) -> Handler:
    """Model listings answered; every other request goes to ``answer``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=MODELS)
        if request.url.path == "/api/tags":
            return httpx.Response(200, json=TAGS)
        return answer(request)

    return handler


def _backend(kind: str, handler: Handler, **kw: Any) -> Any:
    transport = httpx.MockTransport(handler)
    if kind == "openai":
        return OpenAIBackend("http://test", transport=transport, **kw)
    if kind == "openai-chat":
        return OpenAIChatBackend("http://test", transport=transport, **kw)
    return OllamaBackend("http://test", transport=transport, **kw)


def _ok(kind: str) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        if kind == "ollama":
            return httpx.Response(200, content=_ndjson(OLLAMA_LINES))
        whole = CHAT_ANSWER if kind == "openai-chat" else LEGACY_ANSWER
        if json.loads(request.content).get("stream"):
            return httpx.Response(200, content=_sse([whole]), headers=SSE_HEADERS)
        return httpx.Response(200, json=whole)

    return _answering(answer)


KINDS = ["openai", "openai-chat", "ollama"]


# -- 401 ---------------------------------------------------------------------------------------


def _refusing(request: httpx.Request) -> httpx.Response:
    # The worst case: a server (or proxy) that echoes the whole Authorization header.
    echoed = request.headers.get("Authorization", "")
    return httpx.Response(401, json={"error": {"message": f"Incorrect API key: {echoed}"}})


@pytest.mark.parametrize("kind", [*KINDS, "auto"])
@pytest.mark.parametrize("key_state", ["set", "unset"])
async def test_401_names_the_variable_never_the_key(
    kind: str, key_state: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    if key_state == "set":
        monkeypatch.setenv("MY_LLM_KEY", SECRET)
    else:
        monkeypatch.delenv("MY_LLM_KEY", raising=False)
    if kind == "auto":
        settings = BackendSettings(url="http://test", api_key_env="MY_LLM_KEY", model="m")
        backend = create_backend(settings, transport=httpx.MockTransport(_refusing))
    else:
        backend = _backend(kind, _refusing, api_key_env="MY_LLM_KEY", model="m")
    try:
        with pytest.raises(BackendAuthError) as caught:
            await backend.continue_prompt(Prompt("Hi"), 2, 2)
    finally:
        await backend.aclose()
    message = str(caught.value)
    assert "API key missing or invalid, set env var MY_LLM_KEY" in message
    assert ("it is not set" in message) == (key_state == "unset")
    everything = "".join(traceback.format_exception(caught.value)) + caught.value.body
    everything += repr(caught.value) + caplog.text
    assert SECRET not in everything
    assert caught.value.status == 401


async def test_401_without_a_variable_says_how_to_name_one() -> None:
    backend = _backend("openai", _refusing, model="m")
    try:
        with pytest.raises(BackendAuthError, match=r"lloom.backend.apiKeyEnv"):
            await backend.continue_prompt(Prompt("Hi"), 2, 2)
    finally:
        await backend.aclose()


# -- 400: too many logprobs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "asked", "allowed"),
    [
        ("Requested sample logprobs of 21, which is greater than max allowed: 20", 21, 20),
        ("Invalid value for 'logprobs': must be less than or equal to 5.", 10, 5),
        ("Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20", 30, 20),
        ('{"error":"top_logprobs must be between 0 and 20"}', 25, 20),
        ("5 is greater than the maximum of 1 - 'logprobs'", 5, 1),
        ("logprobs: too many", 25, 20),  # no number: the documented caps, largest first
        ("logprobs: too many", 10, 5),
        ("logprobs: too many", 5, None),  # nothing smaller to try
        ("max_tokens must be at least 1", 10, None),  # not about logprobs
    ],
)
def test_allowed_logprobs_reads_each_servers_message(
    body: str, asked: int, allowed: int | None
) -> None:
    assert allowed_logprobs(body, asked) == allowed


@pytest.mark.parametrize("kind", KINDS)
async def test_400_for_logprobs_retries_with_the_allowed_count(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    asked: list[int] = []
    ok = _ok(kind)

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        n = body.get("top_logprobs", body.get("logprobs"))
        if isinstance(n, bool):
            n = body["top_logprobs"]
        asked.append(n)
        if n > 3:
            return httpx.Response(400, json={"error": f"logprobs must be at most 3, got {n}"})
        return ok(request)

    backend = _backend(kind, _answering(answer))
    caplog.set_level(logging.WARNING, logger="lloom_lsp.backends")
    try:
        for _ in range(3):
            cont = await backend.continue_prompt(Prompt("Hi"), 1, 10)
            assert cont.steps
        assert [s async for s in stream_steps(backend, Prompt("Hi"), 1, 10)]
    finally:
        await backend.aclose()
    assert asked == [10, 3, 3, 3, 3]
    assert len([r for r in caplog.records if r.name == "lloom_lsp.backends"]) == 1


async def test_other_400s_are_not_retried() -> None:
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(400, json={"error": {"message": "prompt is too long"}})

    backend = _backend("openai", _answering(answer))
    try:
        with pytest.raises(BackendHTTPError, match="prompt is too long"):
            await backend.continue_prompt(Prompt("Hi"), 1, 10)
    finally:
        await backend.aclose()
    assert calls == 1


#: nginx's own error page, as Debian's nginx sends it.
NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n"
    "</body>\r\n</html>\r\n"
)


async def test_a_proxys_502_is_sent_again_at_once() -> None:
    """nginx reused a kept-alive connection to llama-server that it was closing, and does
    not send a POST again itself (seen in tests/reliability/test_proxies.py)."""
    calls = 0
    ok = _ok("openai")

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(502, text=NGINX_502, headers={"Content-Type": "text/html"})
        return ok(request)

    backend = _backend("openai", _answering(answer))
    try:
        cont = await backend.continue_prompt(Prompt("Hi"), 1, 10)
    finally:
        await backend.aclose()
    assert cont.steps and calls == 2


@pytest.mark.parametrize(
    "status, words",
    [(502, "got no answer from it"), (504, "raise the proxy's read timeout")],
)
async def test_a_proxys_error_page_is_words_that_say_what_to_do(status: int, words: str) -> None:
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        page = NGINX_502.replace("502 Bad Gateway", f"{status} Gateway")
        return httpx.Response(status, text=page, headers={"Content-Type": "text/html"})

    backend = _backend("openai", _answering(answer))
    try:
        with pytest.raises(BackendGatewayError) as raised:
            await backend.continue_prompt(Prompt("Hi"), 1, 10)
    finally:
        await backend.aclose()
    error = raised.value
    assert isinstance(error, BackendUnavailable)  # the server behind is not answering
    assert error.status == status and words in error.cause
    assert "<" not in str(error) and f"({status} Gateway nginx/1.22.1)" in str(error)
    assert calls == (4 if status == 502 else 1)  # RETRY_ATTEMPTS for a 502


async def test_openai_legacy_api_is_capped_at_five_up_front() -> None:
    asked: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(json.loads(request.content)["logprobs"])
        return httpx.Response(200, json=LEGACY_ANSWER)

    backend = OpenAIBackend(
        "https://api.openai.com/v1",
        model="gpt-3.5-turbo-instruct",
        transport=httpx.MockTransport(_answering(answer)),
    )
    try:
        await backend.continue_prompt(Prompt("Hi"), 1, 10)
    finally:
        await backend.aclose()
    assert asked == [5]


# -- no probabilities ----------------------------------------------------------------------------


NO_PROBS: dict[str, bytes] = {
    "openai": json.dumps({"choices": [{"text": " a", "logprobs": None}]}).encode(),
    "openai-chat": json.dumps(
        {"choices": [{"message": {"content": " a"}, "logprobs": None}]}
    ).encode(),
    "ollama": _ndjson([{"response": " a", "done": False}, {"done": True}]),
}
NO_PROBS_STREAM: dict[str, bytes] = {
    "openai": _sse([{"choices": [{"text": " a", "logprobs": None, "finish_reason": None}]}]),
    "openai-chat": _sse(
        [{"choices": [{"delta": {"content": " a"}, "logprobs": None, "finish_reason": None}]}]
    ),
    "ollama": NO_PROBS["ollama"],
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streaming", [False, True])
async def test_an_answer_without_probabilities_says_so(kind: str, streaming: bool) -> None:
    content = (NO_PROBS_STREAM if streaming else NO_PROBS)[kind]
    headers = SSE_HEADERS if streaming and kind != "ollama" else {}
    backend = _backend(
        kind, _answering(lambda request: httpx.Response(200, content=content, headers=headers))
    )
    try:
        with pytest.raises(BackendProtocolError, match="no token probabilities"):
            if streaming:
                _ = [s async for s in stream_steps(backend, Prompt("Hi"), 1, 5)]
            else:
                await backend.continue_prompt(Prompt("Hi"), 1, 5)
        info = None if streaming else await backend.check()
    finally:
        await backend.aclose()
    if info is not None:  # `lloom-lsp check` reports it rather than failing
        assert not info.probabilities and "no token probabilities" in info.detail


# -- foreign exceptions ----------------------------------------------------------------------------


def _leaf_classes(cls: type[Exception]) -> list[type[Exception]]:
    subclasses = cls.__subclasses__()
    if not subclasses:
        return [cls]
    return [leaf for sub in subclasses for leaf in _leaf_classes(sub)]


#: A PoolTimeout is our own connection limit, not the server: it is a plain BackendError
#: (tests/backends/test_http_transport.py).
TRANSPORT_ERRORS = [e for e in _leaf_classes(httpx.TransportError) if e is not httpx.PoolTimeout]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("error", TRANSPORT_ERRORS, ids=lambda cls: cls.__name__)
async def test_every_transport_error_becomes_backend_unavailable(
    kind: str, streaming: bool, error: type[httpx.TransportError]
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise error("simulated", request=request)

    backend = _backend(kind, _answering(answer))
    try:
        with pytest.raises(BackendUnavailable) as caught:
            if streaming:
                _ = [s async for s in stream_steps(backend, Prompt("Hi"), 1, 5)]
            else:
                await backend.continue_prompt(Prompt("Hi"), 1, 5)
    finally:
        await backend.aclose()
    assert isinstance(caught.value.__cause__, error)
    assert caught.value.url.startswith("http://test/")


BAD_ANSWERS = {
    "status 500": (httpx.Response(500, text="boom"), BackendHTTPError),
    "status 403": (httpx.Response(403, text="forbidden"), BackendAuthError),
    "malformed JSON": (httpx.Response(200, content=b"{not json"), BackendProtocolError),
    "invalid UTF-8": (httpx.Response(200, content=b'{"a": "\xff\xfe"}'), BackendProtocolError),
    "wrong shape": (httpx.Response(200, json=[1, 2, 3]), BackendProtocolError),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("case", list(BAD_ANSWERS))
async def test_every_bad_answer_becomes_a_backend_error(
    kind: str, streaming: bool, case: str
) -> None:
    response, expected = BAD_ANSWERS[case]
    if streaming and case in ("malformed JSON", "invalid UTF-8", "wrong shape"):
        body = response.content.replace(b"\n", b"")
        prefix = b"" if kind == "ollama" else b"data: "
        headers = {} if kind == "ollama" else SSE_HEADERS
        response = httpx.Response(200, content=prefix + body + b"\n\n", headers=headers)
    backend = _backend(kind, _answering(lambda request: response))
    try:
        with pytest.raises(expected) as caught:
            if streaming:
                _ = [s async for s in stream_steps(backend, Prompt("Hi"), 1, 5)]
            else:
                await backend.continue_prompt(Prompt("Hi"), 1, 5)
    finally:
        await backend.aclose()
    assert isinstance(caught.value, BackendError)
    # (Streams decode text with replacement, so bad UTF-8 there is only a bad shape.)
    if case == "malformed JSON" or (case == "invalid UTF-8" and not streaming and kind != "ollama"):
        assert isinstance(caught.value.__cause__, (json.JSONDecodeError, UnicodeDecodeError))


async def test_nothing_listening_is_unavailable_for_auto() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    backend = create_backend(
        BackendSettings(url="http://test"), transport=httpx.MockTransport(refuse)
    )
    try:
        with pytest.raises(BackendUnavailable, match="cannot connect"):
            await backend.check()
    finally:
        await backend.aclose()
