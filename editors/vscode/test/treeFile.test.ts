/**
 * Saved thread trees: the save and load answers (the DOT of a loaded tree is the server's
 * own drawing, as `LOAD_OPTIONS` asks), and whether a saved tree still fits the text.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { TreeNode } from '../src/core/threads';
import { LOAD_OPTIONS, type LoadedTree, loadedCaption, parseLoadResult, parseSaveResult, treeFitsText } from '../src/core/treeFile';

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
  text: 'digraph weave {\n}\n',
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
    assert.equal(loaded.dot, SAVED.text); // the server's drawing, not one of ours
    assert.deepEqual(LOAD_OPTIONS, { format: 'dot' });
  });

  it("passes the server's error on word for word, and refuses a tree without a position", () => {
    const error = 'lloom.loadTree: no tree saved at /story/s.txt.lloom.json';
    assert.deepEqual(parseLoadResult({ error }), { error });
    assert.ok('error' in parseLoadResult({ ...SAVED, position: { line: 'x', character: 0 } }));
    assert.ok('error' in parseLoadResult({ ...SAVED, tree: {} }));
    assert.ok('error' in parseLoadResult({ ...SAVED, text: undefined }));
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
