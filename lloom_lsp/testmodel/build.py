"""Build a tiny, deterministic GGUF "language model" for tests and the demo.

The model is a token bigram table dressed up as a one-block llama network, so a stock
``llama-server`` can load it and return real token probabilities:

* a byte-level BPE (GPT-2 byte-to-unicode alphabet) is trained on ``corpus.txt``;
* bigram counts over the tokenised corpus give ``log P(next | current)``;
* ``token_embd`` is the identity, every attention and FFN weight is zero (so each block adds
  nothing to the residual stream), the final RMSNorm gives the one-hot vector back, and
  ``output.weight`` holds ``sharpen * log P``. The logits after token ``i`` are therefore
  ``sharpen * log P(. | i)``, independent of everything earlier in the context.

``build_model(path, fim=True)`` writes a variant that names three of its byte tokens as the
fill-in-the-middle tokens (:data:`FIM_TOKEN_IDS`), so llama-server's ``/infill`` serves it.
Being a bigram, it then starts every middle from the row of ``FIM_MID`` (a lone space): an
answer from ``/infill`` is told from one of ``/completion`` by its first step alone.

Everything is pure Python + numpy and deterministic: building twice gives identical bytes.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CORPUS_PATH = Path(__file__).with_name("corpus.txt")

#: Total vocabulary: 256 byte tokens + merges + one special token. A multiple of 32.
VOCAB_SIZE = 512
EOT = "<|endoftext|>"
#: Logit scale (an inverse temperature). Raw bigram rows are too flat for LLooM's default split
#: rule (take an alternative with p >= 0.2): at 1.0 it fires at 18% of greedy positions, at
#: 2.5-4.0 at 43% (31 of 72 positions over SAMPLE_PROMPTS), and it drops again above 4.5.
DEFAULT_SHARPEN = 3.0
#: Add-k pseudo-count per (current, next) pair; small so that seen bigrams dominate a row.
ADD_K = 0.01
MODEL_NAME = "lloom-bigram-test"
CONTEXT_LENGTH = 4096
FFN_LENGTH = 32
RMS_EPS = 1e-5
#: The FIM variant's prefix, suffix and middle tokens (GGUF ``tokenizer.ggml.fim_*_token_id``):
#: bytes 0x01 and 0x02 (never in the corpus) and the space, whose row branches ("One", "A").
FIM_TOKEN_IDS = {"pre": 1, "suf": 2, "mid": 32}

# GPT-2's pre-tokenizer with Python `re` instead of `regex`: `[^\W\d_]` stands for \p{L}, `\d`
# for \p{N}, and punctuation is "neither space nor letter/digit" (underscore included, as in
# llama.cpp, which files it under \p{P}). Exotic numerals (No/Nl) would differ; the corpus has none.
_PRETOKENIZE = re.compile(
    r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"
)


@functools.cache
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (space becomes 'Ġ', newline 'Ċ')."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), ord("ÿ") + 1)
    mapping = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


@functools.cache
def _unicode_to_byte() -> dict[str, int]:
    return {c: b for b, c in byte_to_unicode().items()}


def pretokenize(text: str) -> list[str]:
    """Split text into the pieces BPE never merges across (words, numbers, punctuation, space)."""
    return _PRETOKENIZE.findall(text)


def _to_symbols(piece: str) -> tuple[str, ...]:
    table = byte_to_unicode()
    return tuple(table[b] for b in piece.encode("utf-8"))


def _merge_pair(symbols: tuple[str, ...], a: str, b: str) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def train_bpe(text: str, n_merges: int) -> list[tuple[str, str]]:
    """Learn ``n_merges`` merges: most frequent adjacent pair first, ties by lexical order."""
    words = Counter(_to_symbols(p) for p in pretokenize(text))
    merges: list[tuple[str, str]] = []
    for _ in range(n_merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, freq in words.items():
            for pair in itertools.pairwise(word):
                pairs[pair] += freq
        if not pairs:
            raise ValueError(f"corpus too small: only {len(merges)} merges possible")
        # max count, then the lexically smallest pair: sort key makes ties deterministic.
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for word, freq in words.items():
            merged[_merge_pair(word, *best)] += freq
        words = merged
    return merges


@dataclass(frozen=True)
class Tokenizer:
    """Byte-level BPE that tokenises exactly like llama.cpp's "gpt2" model with pre "gpt-2"."""

    tokens: tuple[str, ...]
    merges: tuple[tuple[str, str], ...]

    @functools.cached_property
    def ids(self) -> dict[str, int]:
        return {tok: i for i, tok in enumerate(self.tokens)}

    @functools.cached_property
    def ranks(self) -> dict[tuple[str, str], int]:
        return {pair: rank for rank, pair in enumerate(self.merges)}

    @property
    def eot_id(self) -> int:
        return self.ids[EOT]

    def _bpe(self, piece: str) -> tuple[str, ...]:
        # Apply the lowest-ranked merge first, as llama.cpp's bigram queue does.
        symbols = _to_symbols(piece)
        ranks = self.ranks
        while len(symbols) > 1:
            ranked = [(ranks.get(pair, len(ranks)), pair) for pair in itertools.pairwise(symbols)]
            rank, pair = min(ranked)
            if rank == len(ranks):
                break
            symbols = _merge_pair(symbols, *pair)
        return symbols

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no BOS; special tokens are not parsed)."""
        ids = self.ids
        return [ids[s] for piece in pretokenize(text) for s in self._bpe(piece)]

    def token_bytes(self, token_id: int) -> bytes:
        tok = self.tokens[token_id]
        if tok == EOT:
            return b""
        decoder = _unicode_to_byte()
        return bytes(decoder[c] for c in tok)

    def decode(self, ids: Iterable[int]) -> str:
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")


def train_tokenizer(text: str, vocab_size: int = VOCAB_SIZE) -> Tokenizer:
    merges = train_bpe(text, vocab_size - 256 - 1)
    byte_tokens = [byte_to_unicode()[b] for b in range(256)]
    tokens = (*byte_tokens, *(a + b for a, b in merges), EOT)
    if len(set(tokens)) != len(tokens):
        raise ValueError("BPE produced a duplicate token")
    return Tokenizer(tokens=tokens, merges=tuple(merges))


@dataclass(frozen=True)
class BigramModel:
    """The trained tokenizer plus ``logp[i, j] = log P(next=j | current=i)`` (float64)."""

    tokenizer: Tokenizer
    logp: np.ndarray

    @property
    def n_vocab(self) -> int:
        return len(self.tokenizer.tokens)

    def next_probs(self, token_id: int, sharpen: float = DEFAULT_SHARPEN) -> np.ndarray:
        """The distribution llama-server reports after ``token_id``: softmax(sharpen * log P)."""
        logits = sharpen * self.logp[token_id]
        p = np.exp(logits - logits.max())
        return p / p.sum()

    def greedy(self, prompt: str, n: int, sharpen: float = DEFAULT_SHARPEN) -> list[int]:
        """Greedy continuation ids (ties go to the lowest id, as in llama.cpp's greedy sampler)."""
        current = self.tokenizer.encode(prompt)[-1]
        out = []
        for _ in range(n):
            current = int(np.argmax(self.next_probs(current, sharpen)))
            out.append(current)
        return out


def bigram_logp(ids: Sequence[int], n_vocab: int, add_k: float = ADD_K) -> np.ndarray:
    """Add-k smoothed bigram log-probabilities; rows never seen fall back to the unigram."""
    counts = np.zeros((n_vocab, n_vocab), dtype=np.float64)
    np.add.at(counts, (np.asarray(ids[:-1]), np.asarray(ids[1:])), 1.0)
    unigram = np.bincount(np.asarray(ids), minlength=n_vocab).astype(np.float64) + add_k
    unigram /= unigram.sum()
    row_totals = counts.sum(axis=1, keepdims=True)
    smoothed = (counts + add_k) / (row_totals + add_k * n_vocab)
    probs = np.where(row_totals > 0, smoothed, unigram[None, :])
    return np.log(probs)


@functools.cache
def train(corpus_path: Path = CORPUS_PATH) -> BigramModel:
    """Train tokenizer and bigram table on the corpus (cached: it is a pure function)."""
    text = corpus_path.read_text(encoding="utf-8")
    tokenizer = train_tokenizer(text)
    logp = bigram_logp(tokenizer.encode(text), len(tokenizer.tokens))
    return BigramModel(tokenizer=tokenizer, logp=logp)


def branching_rate(
    model: BigramModel,
    prompts: Sequence[str],
    *,
    sharpen: float = DEFAULT_SHARPEN,
    n_tokens: int = 12,
    threshold: float = 0.2,
) -> float:
    """Share of greedy-continuation positions where the runner-up token has p >= threshold.

    Position k is the distribution that chose the k-th continuation token, so the first one
    follows the prompt's last token.
    """
    hits = total = 0
    for prompt in prompts:
        current = model.tokenizer.encode(prompt)[-1]
        for _ in range(n_tokens):
            p = model.next_probs(current, sharpen)
            top2 = np.sort(p)[-2:]
            hits += bool(top2[0] >= threshold)
            total += 1
            current = int(np.argmax(p))
    return hits / total


#: Typical story openings, used to tune and to check ``DEFAULT_SHARPEN``.
SAMPLE_PROMPTS = (
    "Once upon a time,",
    "The old man",
    "She opened the door and",
    "The little girl walked",
    "In the morning, the cat",
    "The king",
)


def _gguf_tensors(model: BigramModel, sharpen: float) -> dict[str, np.ndarray]:
    n = model.n_vocab
    zeros = functools.partial(np.zeros, dtype=np.float32)
    ones = functools.partial(np.ones, dtype=np.float32)
    # RMSNorm(e_i) = e_i / sqrt(1/n + eps); this weight undoes exactly that factor, so the
    # logits are not quietly tempered by 1/sqrt(1 + n*eps).
    out_norm = np.full(n, np.sqrt(np.float32(1.0 / n + RMS_EPS)), dtype=np.float32)
    # numpy shapes are ggml's ne[] reversed: output.weight is ggml {n_embd, n_vocab}, numpy
    # (n_vocab, n_embd), and logits[j] = sum_k W[j, k] * x[k]; with x = e_i that is W[j, i].
    output = (sharpen * model.logp.T).astype(np.float32)
    return {
        "token_embd.weight": np.eye(n, dtype=np.float32),
        "blk.0.attn_norm.weight": ones(n),
        "blk.0.attn_q.weight": zeros((n, n)),
        "blk.0.attn_k.weight": zeros((n, n)),
        "blk.0.attn_v.weight": zeros((n, n)),
        "blk.0.attn_output.weight": zeros((n, n)),
        "blk.0.ffn_norm.weight": ones(n),
        "blk.0.ffn_gate.weight": zeros((FFN_LENGTH, n)),
        "blk.0.ffn_up.weight": zeros((FFN_LENGTH, n)),
        "blk.0.ffn_down.weight": zeros((n, FFN_LENGTH)),
        "output_norm.weight": out_norm,
        "output.weight": np.ascontiguousarray(output),
    }


def build_model(path: Path, *, sharpen: float = DEFAULT_SHARPEN, fim: bool = False) -> Path:
    """Write the test model GGUF to ``path`` (atomically) and return ``path``; with ``fim``,
    the variant with fill-in-the-middle tokens (:data:`FIM_TOKEN_IDS`)."""
    import gguf  # optional "demo" dependency: imported only when a model is written

    model = train()
    tok = model.tokenizer
    n = model.n_vocab
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(tmp, arch="llama")
    writer.add_name(MODEL_NAME)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(n)
    writer.add_block_count(1)
    writer.add_feed_forward_length(FFN_LENGTH)
    writer.add_head_count(1)
    writer.add_head_count_kv(1)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_rope_dimension_count(n)
    writer.add_vocab_size(n)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(list(tok.tokens))
    types = [gguf.TokenType.NORMAL] * n
    types[tok.eot_id] = gguf.TokenType.CONTROL
    writer.add_token_types([int(t) for t in types])
    writer.add_token_merges([f"{a} {b}" for a, b in tok.merges])
    writer.add_bos_token_id(tok.eot_id)
    writer.add_eos_token_id(tok.eot_id)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    if fim:
        for part, token_id in FIM_TOKEN_IDS.items():
            writer.add_uint32(f"tokenizer.ggml.fim_{part}_token_id", token_id)
    for name, tensor in _gguf_tensors(model, sharpen).items():
        writer.add_tensor(name, tensor)
    try:
        try:
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
