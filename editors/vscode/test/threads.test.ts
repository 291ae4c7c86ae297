/**
 * The Threads view's logic: reading `lloom.tree` answers, what a click on a node does,
 * the webview's messages and its Content-Security-Policy.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  contentSecurityPolicy,
  indexNodes,
  nodeAction,
  nodeViews,
  nonceFrom,
  parseFromWebview,
  parseTreeResult,
  treeArguments,
  treeCaption,
} from '../src/core/threads';
import { statusMenuItems } from '../src/core/statusMenu';

/** A tree as the server's contract describes it: the root, an inner node, two leaves and a leaf. */
const ANSWER = {
  format: 'json',
  version: 7,
  speedLine: '3 beams, 12.0 tok/s',
  tree: {
    prompt: 'Once upon a time',
    held: '',
    root: {
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
          prob: 0.6,
          finish: null,
          path: ' there',
          insertText: ' there',
          children: [
            { id: 'n0_0_0', text: ' was', prob: 0.7, finish: 'stop', path: ' there was', insertText: ' there was', children: [] },
            { id: 'n0_0_1', text: ' lived', prob: 0.3, finish: 'depth', path: ' there lived', insertText: ' there lived', children: [] },
          ],
        },
        { id: 'n0_1', text: ',', prob: 0.4, finish: 'end', path: ',', insertText: ',', children: [] },
      ],
    },
  },
};

describe('parseTreeResult', () => {
  it('reads the version, the speed line and every node', () => {
    const result = parseTreeResult(ANSWER);
    assert.equal(result.version, 7);
    assert.equal(result.speedLine, '3 beams, 12.0 tok/s');
    assert.deepEqual([...indexNodes(result.root!).keys()].sort(), ['n0', 'n0_0', 'n0_0_0', 'n0_0_1', 'n0_1']);
    assert.equal(indexNodes(result.root!).get('n0_0_1')!.finish, 'depth');
    assert.equal(indexNodes(result.root!).get('n0_0')!.finish, null);
  });

  it('keeps a DOT rendering and an error', () => {
    assert.equal(parseTreeResult({ format: 'dot', version: 1, speedLine: '', text: 'digraph {}' }).text, 'digraph {}');
    assert.equal(parseTreeResult({ error: 'bad format "png"' }).error, 'bad format "png"');
  });

  it('gives nodes without ids the ids the server would give them', () => {
    const result = parseTreeResult({ tree: { root: { children: [{ children: [{ finish: 'stop' }] }] } } });
    assert.deepEqual([...indexNodes(result.root!).keys()].sort(), ['n0', 'n0_0', 'n0_0_0']);
  });

  it('refuses an answer that is not an object', () => {
    assert.throws(() => parseTreeResult(null), /without a result/);
    assert.throws(() => parseTreeResult([1]), /without a result/);
  });
});

describe('nodeAction', () => {
  const nodes = indexNodes(parseTreeResult(ANSWER).root!);

  it("inserts a leaf's beam", () => {
    assert.deepEqual(nodeAction(nodes.get('n0_0_1')!), { kind: 'accept', insertText: ' there lived' });
    assert.deepEqual(nodeAction(nodes.get('n0_1')!), { kind: 'accept', insertText: ',' });
  });

  it('weaves from an inner node, with its text as `after`', () => {
    assert.deepEqual(nodeAction(nodes.get('n0_0')!), { kind: 'weaveFrom', after: ' there' });
  });

  it('does nothing at the root, nor at the node the tree was woven from', () => {
    assert.deepEqual(nodeAction(nodes.get('n0')!), { kind: 'none' });
    const fromThere = { ...nodes.get('n0')!, insertText: ' there' };
    assert.deepEqual(nodeAction(fromThere, ' there'), { kind: 'none' });
  });
});

describe('nodeViews', () => {
  it('marks leaves, inner nodes and the root, and says what a click does', () => {
    const views = nodeViews(parseTreeResult(ANSWER).root!);
    assert.equal(views.n0.role, 'root');
    assert.equal(views.n0_0.role, 'inner');
    assert.match(views.n0_0.title, /^Weave from here \(60\.0%\): there$/);
    assert.equal(views.n0_0_0.role, 'leaf');
    assert.match(views.n0_0_0.title, /^Insert \(stop, 70\.0%\): there was$/);
  });
});

describe('messages', () => {
  it('accepts only the messages the webview sends', () => {
    assert.deepEqual(parseFromWebview({ type: 'ready' }), { type: 'ready' });
    assert.deepEqual(parseFromWebview({ type: 'refresh' }), { type: 'refresh' });
    assert.deepEqual(parseFromWebview({ type: 'click', id: 'n0_1' }), { type: 'click', id: 'n0_1' });
    assert.equal(parseFromWebview({ type: 'click' }), undefined);
    assert.equal(parseFromWebview({ type: 'eval', code: '1' }), undefined);
    assert.equal(parseFromWebview('ready'), undefined);
  });

  it('sends lloom.tree the position and options', () => {
    assert.deepEqual(treeArguments('file:///a.txt', { line: 2, character: 5 }, { format: 'dot', after: ' x' }), [
      'file:///a.txt',
      { line: 2, character: 5 },
      { format: 'dot', after: ' x' },
    ]);
  });

  it('captions a tree with its speed line and where it was woven from', () => {
    assert.equal(treeCaption({ format: 'json', version: 1, speedLine: '2 beams' }), '2 beams');
    assert.equal(treeCaption({ format: 'json', version: 1, speedLine: '2 beams', after: ' there' }), '2 beams · from "there"');
  });
});

describe('contentSecurityPolicy', () => {
  it('allows nothing by default, scripts by nonce only, and WebAssembly', () => {
    const nonce = nonceFrom(new Uint8Array([0, 1, 254, 255]));
    assert.equal(nonce, '0001feff');
    const csp = contentSecurityPolicy('https://webview.example', nonce);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'nonce-0001feff' 'wasm-unsafe-eval'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-eval'? 'nonce|script-src[^;]*https:/);
  });
});

describe('the status menu', () => {
  it('opens the Threads view', () => {
    const item = statusMenuItems({ weaving: false, inlineAutomatic: false }).find((i) => i.action === 'showThreads');
    assert.match(item!.label, /Show Threads/);
  });
});
