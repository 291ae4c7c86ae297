"""llama-server's ``/infill``: weave with the text after the cursor in view.

A weave whose prompts carry a ``suffix`` (the text after the cursor, engine/suffix.py) goes
to ``/infill`` where the server's model has fill-in-the-middle tokens.  The server builds
``[FIM_PRE] input_prefix [FIM_SUF] input_suffix [FIM_MID]`` and generates the middle after
it, with the same streaming, ``n_probs`` and answer shapes as ``/completion``.

``input_prefix`` takes the same mixed array as ``/completion``'s prompt (``["story", 12,
34]``), so a beam still continues by its token ids.  ``prompt`` would be appended after the
prefix too, but the server here takes it only as a string: an array of token ids there is
dropped without a word (measured: ``tokens_evaluated`` does not change), so the ids go in
the prefix.

Whether a model fills in the middle is learnt once per server, from the first ``/infill``:
a 501 ("Infill is not supported by this model", Gemma 3 270M among them) or a 404 (a
server without the endpoint) means "no", and so does any other refusal of a first
``/infill`` that ``/completion`` would not share (another 4xx, an answer without token
probabilities: an older server's ``/infill``); that request and every later one go to
``/completion`` as before.  A weave never fails for it.

The server keeps at most ``3 * n_batch / 4`` tokens of the prefix (1,536 at the default
``-b 2048``; measured with ``-b 64``: 48 of a 145-token prefix): a longer story loses its
start on this path, where ``/completion`` keeps all of it.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from ..engine.source import Prompt
from .errors import (
    BackendAuthError,
    BackendContextError,
    BackendError,
    BackendHTTPError,
    BackendProtocolError,
)

__all__ = ["InfillSupport", "infill_body"]

log = logging.getLogger("lloom_lsp.backends")

#: Statuses that say "this server does not fill in the middle": 501 from llama-server
#: for a model without FIM tokens, 404 from a server without the endpoint.
NO_INFILL_STATUSES = frozenset({404, 501})


@attrs.define
class InfillSupport:
    """Whether one server's model fills in the middle: None until its first ``/infill``."""

    supported: bool | None = None

    def wanted(self, prompt: Prompt) -> bool:
        """Whether ``prompt`` goes to ``/infill``: it has a suffix and the server has not
        refused one."""
        return bool(prompt.suffix.strip()) and self.supported is not False

    def answered(self, url: str) -> None:
        if self.supported is None:
            log.info("%s fills in the middle: weaves read the text after the cursor", url)
        self.supported = True

    def refused(self, exc: BackendError, url: str) -> bool:
        """Whether ``exc`` says the server does not fill in the middle (remembered, and
        logged once): the request then goes to ``/completion``."""
        if not _says_no(exc, first=self.supported is None):
            return False
        if self.supported is not False:
            log.info(
                "%s does not fill in the middle (%s): weaving without the text after the "
                "cursor in view",
                url,
                exc.cause,
            )
        self.supported = False
        return True

    def forget(self) -> None:
        """The server restarted, maybe with another model."""
        self.supported = None


def _says_no(exc: BackendError, *, first: bool) -> bool:
    """Whether ``exc`` from ``/infill`` says the server does not fill in the middle: a 404
    or 501 always; before any ``/infill`` answered, any 4xx but those ``/completion`` would
    give as well (a wrong key, too long a prompt), or an answer we cannot read."""
    if isinstance(exc, BackendHTTPError) and exc.status in NO_INFILL_STATUSES:
        return True
    if not first or isinstance(exc, (BackendAuthError, BackendContextError)):
        return False
    if isinstance(exc, BackendHTTPError):
        return 400 <= exc.status < 500
    return isinstance(exc, BackendProtocolError)


def infill_body(completion: dict[str, Any], prompt: Prompt) -> dict[str, Any]:
    """The ``/infill`` request for a ``/completion`` body: its prompt becomes the prefix
    (a mixed array keeps the beam's token ids), ``prompt.suffix`` the suffix."""
    body = dict(completion)
    body["input_prefix"] = body.pop("prompt")
    body["input_suffix"] = prompt.suffix
    return body
