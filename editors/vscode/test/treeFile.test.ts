/**
 * Saved thread trees: the save and load answers, whether a saved tree still fits the
 * text, and its DOT, which must be the server's own drawing of the same tree (checked
 * against lloom_lsp's engine/render.py when a Python with lloom_lsp is at hand).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import type { TreeNode } from '../src/core/threads';
import {
  type LoadedTree,
  loadedCaption,
  parseLoadResult,
  parseSaveResult,
  pyFixed,
  shownToken,
  treeFitsText,
  treePercent,
  treeToDot,
} from '../src/core/treeFile';

const REPO = path.resolve(__dirname, '..', '..', '..', '..');
const PYTHON = process.env.PYTHON || path.join(REPO, '.venv', 'bin', 'python');

function leaf(id: string, text: string, prob: number, path: string, finish = 'stop'): TreeNode {
  return { id, text, prob, finish, path, insertText: path, children: [] };
}

/** A tree as the server saves it: two beams sharing " there", odd tokens and probabilities. */
const ROOT: TreeNode = {
  id: 'n0',
  text: '',
  prob: 1,
  finish: null,
  path: '',
  insertText: '',
  children: [
    {
      id: 'n0_0',
      text: ' there',
      prob: 0.125,
      finish: null,
      path: ' there',
      insertText: ' there',
      children: [leaf('n0_0_1', ' was\n', 0.62, ' there was\n'), leaf('n0_0_3', ' "lived"\t', 0.0004, ' there "lived"\t', 'depth')],
    },
    leaf('n0_2', '  a\\b ', 0.0125, '  a\\b ', 'end'),
    leaf('n0_4', 'é😀', 0.996, 'é😀', 'cut'),
  ],
};

const SAVED = {
  format: 'json',
  path: '/story/s.txt.lloom.json',
  document: 'file:///story/s.txt',
  savedAt: '2026-12-02T05:00:00+00:00',
  position: { line: 0, character: 17 },
  after: '',
  speedLine: '3 beams in 0.4 s',
  tree: { prompt: 'Once upon a time,', held: '', root: ROOT },
};

describe('parseSaveResult', () => {
  it('reads the path and the node count', () => {
    assert.deepEqual(parseSaveResult({ path: '/s.txt.lloom.json', nodes: 7 }), { path: '/s.txt.lloom.json', nodes: 7 });
  });

  it("passes the server's error on word for word", () => {
    const error = 'lloom.saveTree: only a file: document has a place beside it: untitled:1';
    assert.deepEqual(parseSaveResult({ error }), { error });
    assert.match((parseSaveResult(null) as { error: string }).error, /without a result/);
    assert.match((parseSaveResult({ nodes: 1 }) as { error: string }).error, /without a path/);
  });
});

describe('parseLoadResult', () => {
  it('reads the tree, where and when it was woven', () => {
    const loaded = parseLoadResult(SAVED) as LoadedTree;
    assert.equal(loaded.path, SAVED.path);
    assert.deepEqual(loaded.position, { line: 0, character: 17 });
    assert.equal(loaded.prompt, 'Once upon a time,');
    assert.equal(loaded.root.children[0].children[1].finish, 'depth');
    assert.equal(loaded.speedLine, '3 beams in 0.4 s');
  });

  it("passes the server's error on word for word, and refuses a tree without a position", () => {
    const error = 'lloom.loadTree: no tree saved at /story/s.txt.lloom.json';
    assert.deepEqual(parseLoadResult({ error }), { error });
    assert.ok('error' in parseLoadResult({ ...SAVED, position: { line: 'x', character: 0 } }));
    assert.ok('error' in parseLoadResult({ ...SAVED, tree: {} }));
  });

  it('captions the view with when it was saved and where it was woven from', () => {
    const loaded = parseLoadResult({ ...SAVED, after: ' there was' }) as LoadedTree;
    assert.equal(loadedCaption(loaded), 'Saved 2026-12-02T05:00:00+00:00 · 3 beams in 0.4 s · from "there was"');
  });
});

describe('treeFitsText', () => {
  const tree = { prompt: 'Once upon a time,', held: ' ', after: '' };

  it('fits while the text before the saved position ends with the story', () => {
    assert.equal(treeFitsText(tree, 'Once upon a time, '), true);
    // The story is cut to the last characters before the cursor: more text before is fine.
    assert.equal(treeFitsText(tree, 'Title\n\nOnce upon a time, '), true);
  });

  it('does not fit once that text changed', () => {
    assert.equal(treeFitsText(tree, 'Once upon a time,'), false);
    assert.equal(treeFitsText(tree, 'Once upon a rhyme, '), false);
    assert.equal(treeFitsText(tree, ''), false);
  });

  it('counts the text the weave continued from, which the document does not have', () => {
    const after = { prompt: 'Once upon a time, there', held: '', after: ' there' };
    assert.equal(treeFitsText(after, 'Once upon a time,'), true);
    assert.equal(treeFitsText(after, 'Once upon a time, there'), false);
  });
});

describe("the server's label style", () => {
  it('rounds as Python does: ties to even', () => {
    assert.equal(pyFixed(12.5, 0), '12');
    assert.equal(pyFixed(13.5, 0), '14');
    assert.equal(pyFixed(1.25, 1), '1.2');
    assert.equal(pyFixed(0.15, 1), '0.1'); // 0.1499999… in binary
    assert.equal(pyFixed(2.675, 2), '2.67');
    assert.equal(pyFixed(62, 0), '62');
  });

  it('prints probabilities as the tree labels do', () => {
    assert.deepEqual([0.996, 0.62, 0.125, 0.0125, 0.0004, 0].map(treePercent), ['100%', '62%', '12%', '1.2%', '4e-04', '0e+00']);
  });

  it('shows a token on one visible line', () => {
    assert.equal(shownToken(' there'), '·there');
    assert.equal(shownToken(' was\n'), '·was⏎');
    assert.equal(shownToken('  a b '), '··a b·');
    assert.equal(shownToken('\t'), '⇥');
    assert.equal(shownToken(''), '∅');
  });

  it('draws the story, each token with its probability, and marks finished beams', () => {
    const dot = treeToDot('Once upon a time,', ROOT);
    assert.match(dot, /^digraph weave \{\n {2}rankdir=LR;/);
    assert.match(dot, / {2}n0 \[id="n0", label="story", tooltip="Once upon a time,\|", shape=plaintext\];/);
    assert.match(dot, /n0_0_1 \[id="n0_0_1", label="·was⏎\\n62%\\n\[stop\]", tooltip="Once upon a time,\| there was\\n"/);
    assert.match(dot, /label="·\\"lived\\"⇥\\n4e-04\\n\[depth\]"/);
    assert.match(dot, /n0 -> n0_0 \[penwidth=0\.94, color="#/);
    assert.match(dot, /peripheries=2, style="rounded,bold"/);
  });
});

const python = existsSync(PYTHON) && PYTHON;
const RENDER = `
import json, sys
from lloom_lsp.engine.render import TreeView, ViewNode, to_dot
def node(d, depth=0):
    return ViewNode(id=d["id"], text=d["text"], prob=d["prob"], finish=d["finish"], path=d["path"],
                    insert_text=d["insertText"], depth=depth,
                    children=tuple(node(c, depth + 1) for c in d["children"]))
data = json.load(sys.stdin)
sys.stdout.write(to_dot(TreeView(data["prompt"], data["held"], node(data["root"]))))
`;

describe("against the server's renderer", { skip: !python && !process.env.LLOOM_REQUIRE_REAL && 'no Python' }, () => {
  it('draws a saved tree exactly as the server draws it', () => {
    const prompt = 'A story whose prompt is longer than forty characters, "quoted" and all.';
    for (const root of [ROOT, leaf('n0', '', 1, '')]) {
      const input = JSON.stringify({ prompt, held: '', root });
      const server = execFileSync(PYTHON, ['-c', RENDER], { input, cwd: REPO, encoding: 'utf8' });
      assert.equal(treeToDot(prompt, root), server);
    }
  });
});
