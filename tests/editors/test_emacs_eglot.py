"""The Emacs eglot snippet of docs/editors.md, run in a real Emacs against the real server.

The snippet is read from docs/editors.md itself, so the documented setup is what is tested.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EMACS = shutil.which("emacs")

DRIVER = r"""
(dolist (d (append (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/*")
                   (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa-src/*")))
  (add-to-list 'load-path d))
(require 'eglot)
SNIPPET
(find-file "STORY")
(text-mode)
(apply #'eglot (eglot--guess-contact))  ; eglot-ensure waits for a command loop
(let ((deadline (+ (float-time) 60)))
  (while (and (not (eglot-current-server)) (< (float-time) deadline))
    (accept-process-output nil 0.1)))
(goto-char (point-max))
(dolist (item (all-completions "" (nth 2 (eglot-completion-at-point))))
  (princ (format "completion: %s\n" (substring-no-properties item))))
(let ((actions (jsonrpc-request
                (eglot-current-server) :textDocument/codeAction
                (list :textDocument (eglot--TextDocumentIdentifier)
                      :range (list :start (eglot--pos-to-lsp-position (point))
                                   :end (eglot--pos-to-lsp-position (point)))
                      :context (list :diagnostics [] :triggerKind 1)))))
  (princ (format "actions: %d\n" (length actions))))
(kill-emacs 0)
"""


def documented_snippet() -> str:
    doc = (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")
    section = doc.split("## Emacs (eglot)", 1)[1]
    match = re.search(r"```elisp\n(.*?)```", section, re.S)
    assert match, "docs/editors.md has no eglot snippet"
    return match.group(1)


@pytest.mark.skipif(EMACS is None, reason="emacs is not installed (scripts/setup.sh --editors)")
def test_documented_eglot_snippet_weaves(llama_server_url: str, tmp_path: Path) -> None:
    snippet = documented_snippet()
    assert '"http://127.0.0.1:8080"' in snippet
    snippet = snippet.replace("http://127.0.0.1:8080", llama_server_url)
    # chain: every beam runs to maxDepth (best may hand back a beam its budget cut short)
    snippet = snippet.replace(":maxDepth 12", ':maxDepth 3 :autoStop :json-false :strategy "chain"')
    story = tmp_path / "tale.txt"
    story.write_text("Once upon a time, ", encoding="utf-8")
    script = tmp_path / "drive.el"
    script.write_text(DRIVER.replace("SNIPPET", snippet).replace("STORY", str(story)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    assert EMACS is not None
    done = subprocess.run(
        [EMACS, "--batch", "-Q", "-l", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    completions = [
        line[12:] for line in done.stdout.splitlines() if line.startswith("completion: ")
    ]
    assert len(completions) > 1
    # the configuration from the snippet reached the server: maxDepth 3, no auto-stop
    assert all(len(c.split()) == 3 for c in completions), completions
    assert re.search(r"^actions: [1-9]", done.stdout, re.M)
