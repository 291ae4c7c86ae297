"""llama-server's /completion answers in each format it has used (shapes from
shared/BACKENDS.md), parsed without a server."""

from __future__ import annotations

import asyncio
import json
import math

import httpx
import pytest

from lloom_lsp.backends import BackendProtocolError, LlamaCppBackend, llamacpp
from lloom_lsp.backends.llamacpp import parse_completion
from lloom_lsp.engine import Prompt

URL = "http://llama.test/completion"
LOWEST = -3.4028234663852886e38


def entry(tid: int, text: str, logprob: float, top: list[tuple[int, str, float]]) -> dict:
    def tok(i: int, t: str, lp: float) -> dict:
        return {"id": i, "token": t, "bytes": list(t.encode()), "logprob": lp}

    return {**tok(tid, text, logprob), "top_logprobs": [tok(*alt) for alt in top]}


def test_current_format_is_sorted_and_normalised() -> None:
    answer = {
        "completion_probabilities": [
            entry(
                5,
                " there",
                math.log(0.6),
                [(7, " and", math.log(0.3)), (5, " there", math.log(0.6)), (9, "!", LOWEST)],
            ),
        ],
        "stop_type": "limit",
    }
    cont = parse_completion(answer, URL)
    (step,) = cont.steps
    assert step.chosen.token_id == 5 and step.chosen.data == b" there"
    assert [c.token_id for c in step.top] == [5, 7, 9]
    assert [c.prob for c in step.top] == pytest.approx([0.6, 0.3, 0.0])
    assert not cont.ended


def test_minus_infinity_and_nan_are_zero() -> None:
    raw = (
        '{"completion_probabilities": [{"id": 1, "token": "a", "bytes": [97], "logprob": 0.0,'
        ' "top_logprobs": [{"id": 1, "token": "a", "bytes": [97], "logprob": 0.0},'
        ' {"id": 2, "token": "b", "bytes": [98], "logprob": -Infinity},'
        ' {"id": 3, "token": "c", "bytes": [99], "logprob": NaN}]}]}'
    )
    (step,) = parse_completion(json.loads(raw), URL).steps
    assert [c.prob for c in step.top] == [1.0, 0.0, 0.0]


def test_bytes_win_over_a_token_cut_back_to_whole_characters() -> None:
    # llama-server shows a lone byte of "é" as "" in `token`, but `bytes` holds it.
    answer = {
        "completion_probabilities": [
            {
                "id": 3,
                "token": "",
                "bytes": [0xC3],
                "logprob": -0.1,
                "top_logprobs": [{"id": 3, "token": "", "bytes": [0xC3], "logprob": -0.1}],
            },
        ]
    }
    (step,) = parse_completion(answer, URL).steps
    assert step.chosen.data == b"\xc3"


def test_post_sampling_format() -> None:
    answer = {
        "completion_probabilities": [
            {
                "id": 4,
                "token": " cat",
                "bytes": list(b" cat"),
                "prob": 0.7,
                "top_probs": [
                    {"id": 8, "token": " dog", "bytes": list(b" dog"), "prob": 0.3},
                    {"id": 4, "token": " cat", "bytes": list(b" cat"), "prob": 0.7},
                ],
            },
        ]
    }
    (step,) = parse_completion(answer, URL).steps
    assert [(c.data, c.prob) for c in step.top] == [(b" cat", 0.7), (b" dog", 0.3)]


def test_pre_2024_format_with_byte_tokens() -> None:
    answer = {
        "completion_probabilities": [
            {
                "content": " the",
                "probs": [
                    {"tok_str": "byte: \\xc3", "prob": 0.2},
                    {"tok_str": " the", "prob": 0.5},
                ],
            },
        ],
        "stopped_eos": True,
    }
    cont = parse_completion(answer, URL)
    (step,) = cont.steps
    assert step.chosen.data == b" the" and step.chosen.prob == 0.5
    assert [(c.data, c.token_id) for c in step.top] == [(b" the", None), (b"\xc3", None)]
    assert cont.ended


def test_an_answer_without_probabilities_is_named() -> None:
    with pytest.raises(BackendProtocolError, match="no token probabilities"):
        parse_completion({"content": "hi", "stop_type": "limit"}, URL)


async def test_beams_continue_by_token_ids() -> None:
    sent: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"completion_probabilities": []})

    backend = LlamaCppBackend("http://llama.test", transport=httpx.MockTransport(handler))
    try:
        await backend.continue_prompt(Prompt("Once", (11, 12), b" upon a"), 3, 10)
        await backend.continue_prompt(Prompt("Once"), 1, 5)
        # the pre-2024 format gives no ids: the beam's bytes are all there is to go on from
        await backend.continue_prompt(Prompt("Once", (), b" upon a"), 1, 5)
    finally:
        await backend.aclose()
    assert sent[0]["prompt"] == ["Once", 11, 12]
    assert sent[1]["prompt"] == "Once"
    assert sent[2]["prompt"] == "Once upon a"
    for body in sent:
        assert body["temperature"] == 0 and body["cache_prompt"] is True
    assert (sent[0]["n_predict"], sent[0]["n_probs"]) == (3, 10)


async def test_a_long_story_is_tokenised_once_and_then_sent_as_token_ids() -> None:
    # llama-server tokenises a prompt's text on every request: a long story goes as the
    # ids the server gave for it once (BOS first), a short one stays text.
    sent: list[tuple[str, dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.path, json.loads(request.content)))
        if request.url.path == "/tokenize":
            return httpx.Response(200, json={"tokens": [2, 7, 8]})
        return httpx.Response(200, json={"completion_probabilities": []})

    story = "x" * llamacpp.STORY_IDS_CHARS
    backend = LlamaCppBackend("http://llama.test", transport=httpx.MockTransport(handler))
    try:
        await backend.continue_prompt(Prompt(story, (11, 12)), 3, 10)
        for _ in range(5):  # the tokenising runs beside the first request
            await asyncio.sleep(0)
        await backend.continue_prompt(Prompt(story, (11, 13)), 3, 10)
        await backend.continue_prompt(Prompt(story), 3, 10)
        await backend.continue_prompt(Prompt(story, (), b" upon"), 3, 10)  # text: no ids
        await backend.continue_prompt(Prompt("Once", (11,)), 3, 10)
    finally:
        await backend.aclose()
    completions = [body["prompt"] for path, body in sent if path == "/completion"]
    assert completions == [
        [story, 11, 12],
        [2, 7, 8, 11, 13],
        [2, 7, 8],
        story + " upon",
        ["Once", 11],
    ]
    tokenised = [body for path, body in sent if path == "/tokenize"]
    assert tokenised == [{"content": story, "add_special": True, "parse_special": True}]


async def test_warming_a_long_story_tokenises_it_so_the_first_request_goes_as_ids() -> None:
    sent: list[tuple[str, dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.path, json.loads(request.content or b"{}")))
        if request.url.path == "/tokenize":
            return httpx.Response(200, json={"tokens": [2, 7, 8]})
        return httpx.Response(200, json={"completion_probabilities": []})

    story = "x" * llamacpp.STORY_IDS_CHARS
    backend = LlamaCppBackend(
        "http://llama.test", transport=httpx.MockTransport(handler), pin_slots=False
    )
    try:
        await backend.warm(story)
        await backend.continue_prompt(Prompt(story, (11,)), 3, 10)
    finally:
        await backend.aclose()
    assert [path for path, _ in sent] == ["/tokenize", "/completion"]
    assert sent[-1][1]["prompt"] == [2, 7, 8, 11]
