"""The bigram test model: tokenizer, probability table and GGUF layout (no server needed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from lloom_lsp.testmodel import (
    DEFAULT_SHARPEN,
    SAMPLE_PROMPTS,
    BigramModel,
    branching_rate,
    build_model,
    train,
)
from lloom_lsp.testmodel.build import CORPUS_PATH, EOT, byte_to_unicode, pretokenize

gguf = pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def model() -> BigramModel:
    return train()


def test_build_is_byte_identical(tmp_path: Path) -> None:
    first = build_model(tmp_path / "a.gguf")
    second = build_model(tmp_path / "b.gguf")
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second)]
    assert digest[0] == digest[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gguf", "b.gguf"]


def test_vocab_layout(model: BigramModel) -> None:
    tok = model.tokenizer
    assert model.n_vocab == 512
    assert model.n_vocab % 32 == 0
    assert len(tok.merges) == 512 - 256 - 1
    assert list(tok.tokens[:256]) == [byte_to_unicode()[b] for b in range(256)]
    assert tok.tokens[-1] == EOT
    assert tok.eot_id == 511
    assert len(set(tok.tokens)) == model.n_vocab
    # Every merge builds a token that exists, from tokens that exist before it.
    for rank, (a, b) in enumerate(tok.merges):
        assert tok.ids[a] < 256 + rank
        assert tok.ids[b] < 256 + rank
        assert tok.ids[a + b] == 256 + rank


def test_every_row_is_a_distribution(model: BigramModel) -> None:
    assert model.logp.shape == (512, 512)
    assert np.isfinite(model.logp).all()
    np.testing.assert_allclose(np.exp(model.logp).sum(axis=1), 1.0, rtol=0, atol=1e-12)
    for token_id in (0, 100, 300, model.tokenizer.eot_id):
        assert model.next_probs(token_id).sum() == pytest.approx(1.0, abs=1e-12)


def test_unseen_rows_back_off_to_unigram(model: BigramModel) -> None:
    tok = model.tokenizer
    ids = tok.encode(CORPUS_PATH.read_text(encoding="utf-8"))
    unseen = tok.ids[byte_to_unicode()[0]]  # NUL never occurs in the corpus
    assert unseen not in ids
    np.testing.assert_array_equal(model.logp[unseen], model.logp[tok.eot_id])
    # The unigram ranks tokens by corpus frequency.
    most_common = np.bincount(ids).argmax()
    assert model.logp[unseen].argmax() == most_common


def test_bigram_counts_drive_the_table(model: BigramModel) -> None:
    tok = model.tokenizer
    ids = tok.encode(" there was")
    assert len(ids) == 2
    there, was = ids
    assert model.logp[there].argmax() == was
    assert model.next_probs(there)[was] > 0.99


def test_corpus_round_trips(model: BigramModel) -> None:
    text = CORPUS_PATH.read_text(encoding="utf-8")
    ids = model.tokenizer.encode(text)
    assert model.tokenizer.decode(ids) == text
    assert len(ids) < len(text.encode("utf-8")) / 2.5  # merges actually compress


@pytest.mark.parametrize(
    "text", ["café naïve 山 川 猫", "a 🍎 and a 🌙.", "I'm here,  now 42!\n\n"]
)
def test_multibyte_text_round_trips(model: BigramModel, text: str) -> None:
    tok = model.tokenizer
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert b"".join(tok.token_bytes(i) for i in ids) == text.encode("utf-8")


def test_some_tokens_are_partial_utf8(model: BigramModel) -> None:
    tok = model.tokenizer
    partial = 0
    for token_id in tok.encode("🍎🌙"):
        try:
            tok.token_bytes(token_id).decode("utf-8")
        except UnicodeDecodeError:
            partial += 1
    assert partial >= 2


def test_pretokenize_follows_gpt2() -> None:
    pieces = pretokenize("I'm here,  now 42 café!\n\nThe_end")
    assert pieces == [
        "I",
        "'m",
        " here",
        ",",
        " ",
        " now",
        " 42",
        " café",
        "!",
        "\n",
        "\n",
        "The",
        "_",
        "end",
    ]


def test_default_sharpen_branches_often(model: BigramModel) -> None:
    rate = branching_rate(model, SAMPLE_PROMPTS, sharpen=DEFAULT_SHARPEN)
    assert 0.3 <= rate <= 0.6
    # Unscaled bigram probabilities rarely have a runner-up at 0.2: sharpen does matter.
    assert branching_rate(model, SAMPLE_PROMPTS, sharpen=1.0) < rate


def test_greedy_continuation_reads_like_the_corpus(model: BigramModel) -> None:
    ids = model.greedy("Once upon a time,", 5)
    assert model.tokenizer.decode(ids) == " there was a little girl"


def test_gguf_tensors_encode_the_table(tmp_path: Path, model: BigramModel) -> None:
    sharpen = 2.5
    reader = gguf.GGUFReader(build_model(tmp_path / "m.gguf", sharpen=sharpen))
    tensors = {t.name: t for t in reader.tensors}
    assert all(t.tensor_type == gguf.GGMLQuantizationType.F32 for t in tensors.values())
    # ggml shape {n_embd, n_vocab}; numpy rows are tokens.
    assert list(tensors["token_embd.weight"].shape) == [512, 512]
    np.testing.assert_array_equal(tensors["token_embd.weight"].data, np.eye(512))
    assert list(tensors["blk.0.ffn_gate.weight"].shape) == [512, 32]
    for name in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
        assert not tensors[f"blk.0.{name}.weight"].data.any()
    # Row j (next token) / column i (current token) holds sharpen * log P(j | i).
    output = np.asarray(tensors["output.weight"].data)
    i, j = model.tokenizer.encode(" there was")
    assert output[j, i] == pytest.approx(sharpen * model.logp[i, j], rel=1e-6)
    np.testing.assert_allclose(output.T, sharpen * model.logp, rtol=1e-6)
    fields = reader.fields
    assert fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert fields["tokenizer.ggml.pre"].contents() == "gpt-2"
    assert fields["tokenizer.ggml.add_bos_token"].contents() is False
    assert fields["tokenizer.ggml.bos_token_id"].contents() == 511
    assert fields["tokenizer.ggml.eos_token_id"].contents() == 511
    assert fields["tokenizer.ggml.token_type"].contents()[511] == gguf.TokenType.CONTROL
    assert fields["general.name"].contents() == "lloom-bigram-test"
    assert fields["tokenizer.ggml.merges"].contents()[0] == " ".join(model.tokenizer.merges[0])
