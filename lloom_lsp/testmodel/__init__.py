"""A deterministic bigram test model that a real ``llama-server`` can load.

``build_model(path)`` writes the GGUF; ``train()`` returns the same tokenizer and probability
table in Python, so tests can check the server's numbers against the source of truth.
Run ``python -m lloom_lsp.testmodel OUT.gguf`` to build it from the command line.
"""

from lloom_lsp.testmodel.build import (
    DEFAULT_SHARPEN,
    FIM_TOKEN_IDS,
    SAMPLE_PROMPTS,
    BigramModel,
    Tokenizer,
    branching_rate,
    build_model,
    train,
)

__all__ = [
    "DEFAULT_SHARPEN",
    "FIM_TOKEN_IDS",
    "SAMPLE_PROMPTS",
    "BigramModel",
    "Tokenizer",
    "branching_rate",
    "build_model",
    "train",
]
