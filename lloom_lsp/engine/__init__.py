"""The weaving engine: pure, async, backend-agnostic.

It knows nothing of LSP or HTTP.  Give it a :class:`TokenSource` and a story; it
returns ranked beams and the thread tree they came from.
"""

from .batching import BatchTokenSource
from .beam import Beam, BeamToken, heal_whitespace, split_story
from .source import Candidate, Continuation, Prompt, Step, TokenSource, sort_candidates
from .tree import ThreadTree, TreeNode
from .weave import Weave, WeaveResult, WeaveStats, weave

__all__ = [
    "BatchTokenSource",
    "Beam",
    "BeamToken",
    "Candidate",
    "Continuation",
    "Prompt",
    "Step",
    "ThreadTree",
    "TokenSource",
    "TreeNode",
    "Weave",
    "WeaveResult",
    "WeaveStats",
    "heal_whitespace",
    "sort_candidates",
    "split_story",
    "weave",
]
