"""``python -m lloom_lsp.testmodel OUT.gguf [--sharpen X]``: build the bigram test model."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

from lloom_lsp.testmodel.build import (
    DEFAULT_SHARPEN,
    SAMPLE_PROMPTS,
    branching_rate,
    build_model,
    train,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lloom_lsp.testmodel",
        description="Build the deterministic bigram test model, a GGUF that llama-server loads.",
    )
    parser.add_argument("out", type=Path, help="where to write the .gguf file")
    parser.add_argument(
        "--sharpen",
        type=float,
        default=DEFAULT_SHARPEN,
        help=f"logit scale applied to log P(next | current) (default {DEFAULT_SHARPEN})",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    path = build_model(args.out, sharpen=args.sharpen)
    elapsed = time.perf_counter() - started
    model = train()
    rate = branching_rate(model, SAMPLE_PROMPTS, sharpen=args.sharpen)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"wrote {path} in {elapsed:.2f}s (sha256 {digest[:16]})", file=sys.stderr)
    print(f"vocab {model.n_vocab}, sharpen {args.sharpen}", file=sys.stderr)
    print(f"branching at p >= 0.2 over sample prompts: {rate:.0%}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
