/**
 * The Threads view's drawing: chains of single tokens collapsed into phrases, the DOT of
 * the collapsed tree (drawn by the webview's viz.js here too), and the zoom that fits it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  type PhraseNode,
  collapseChains,
  fitScale,
  likeliestLeaf,
  phraseDot,
  phraseLabel,
  shownText,
  wrapLines,
} from '../src/core/threadGraph';
import { type TreeNode, indexNodes, nodeAction, nodeViews } from '../src/core/threads';

function node(id: string, text: string, prob: number, children: TreeNode[] = [], finish: string | null = null): TreeNode {
  return { id, text, prob, finish, path: '', insertText: `<${id}>`, children };
}

/**
 * "story" → " The" → " door" → { " opened" → "." [stop], " creaked" → "," → '"' [stop] }
 *        → " Silence" [end]
 */
const TREE = node('n0', '', 1, [
  node('n0_0', ' The', 0.6, [
    node('n0_0_0', ' door', 0.9, [
      node('n0_0_0_0', ' opened', 0.5, [node('n0_0_0_0_0', '.', 0.8, [], 'stop')]),
      node('n0_0_0_1', ' creaked', 0.4, [node('n0_0_0_1_0', ',', 0.5, [node('n0_0_0_1_0_0', '"', 0.48, [], 'stop')])]),
    ]),
  ]),
  node('n0_1', ' Silence', 0.2, [], 'end'),
]);

function byId(root: PhraseNode): Map<string, PhraseNode> {
  return indexNodes(root) as Map<string, PhraseNode>;
}

describe('collapseChains', () => {
  const phrases = collapseChains(TREE);

  it('joins each run of single children into one phrase, named by its last token', () => {
    const nodes = byId(phrases);
    assert.deepEqual([...nodes.keys()].sort(), ['n0', 'n0_0_0', 'n0_0_0_0_0', 'n0_0_0_1_0_0', 'n0_1']);
    assert.equal(nodes.get('n0_0_0')!.text, ' The door');
    assert.equal(nodes.get('n0_0_0_1_0_0')!.text, ' creaked,"');
    assert.equal(nodes.get('n0_0_0_1_0_0')!.tokens, 3);
    assert.equal(nodes.get('n0_0_0_1_0_0')!.finish, 'stop');
  });

  it("gives a phrase its first token's probability (the branch taken), and the product as its joint", () => {
    const nodes = byId(phrases);
    assert.equal(nodes.get('n0_0_0')!.prob, 0.6);
    assert.ok(Math.abs(nodes.get('n0_0_0')!.joint - 0.54) < 1e-12);
    assert.equal(nodes.get('n0_0_0_1_0_0')!.prob, 0.4);
    assert.ok(Math.abs(nodes.get('n0_0_0_1_0_0')!.joint - 0.4 * 0.5 * 0.48) < 1e-12);
  });

  it('leaves no lone punctuation leaf: every leaf reads as words', () => {
    for (const leaf of [...byId(phrases).values()].filter((n) => n.children.length === 0)) {
      assert.match(leaf.text, /[A-Za-z]/, leaf.id);
    }
  });

  it("acts on a click as on the phrase's last token: insert its beam, or weave from it", () => {
    const nodes = byId(phrases);
    assert.deepEqual(nodeAction(nodes.get('n0_0_0_1_0_0')!), { kind: 'accept', insertText: '<n0_0_0_1_0_0>' });
    assert.deepEqual(nodeAction(nodes.get('n0_0_0')!), { kind: 'weaveFrom', after: '<n0_0_0>' });
    const views = nodeViews(phrases);
    assert.match(views.n0_0_0_1_0_0.title, /^Insert \(stop, 40\.0%\): <n0_0_0_1_0_0>$/);
  });

  it('keeps a token where a beam ends as the end of its phrase, even with children', () => {
    const tree = node('n0', '', 1, [node('n0_0', ' a', 1, [node('n0_0_0', ' b', 1)], 'stop')]);
    const nodes = byId(collapseChains(tree));
    assert.ok(nodes.has('n0_0') && nodes.has('n0_0_0'));
  });
});

describe('likeliestLeaf', () => {
  it('is the finished phrase with the most probable path', () => {
    assert.equal(likeliestLeaf(collapseChains(TREE))?.id, 'n0_0_0_0_0'); // 0.54 · 0.4 > 0.54 · 0.096 > 0.2
  });
});

describe('labels', () => {
  it('shows edge spaces and line breaks', () => {
    assert.equal(shownText(' the end\n'), '·the end⏎');
    assert.equal(shownText(''), '∅');
    assert.equal(shownText('  '), '··');
  });

  it('wraps a long phrase at spaces, keeping a long word whole', () => {
    assert.deepEqual(wrapLines('the quick brown fox jumps over the lazy dog', 12), ['the quick', 'brown fox', 'jumps over', 'the lazy dog']);
    assert.deepEqual(wrapLines('unbreakablewordhere', 5), ['unbreakablewordhere']);
  });

  it('ends with the probability and the finish', () => {
    const leaf = byId(collapseChains(TREE)).get('n0_0_0_1_0_0')!;
    assert.equal(phraseLabel(leaf), '·creaked,"\n40% [stop]');
  });
});

describe('phraseDot', () => {
  it('draws with viz.js, one SVG node per phrase with its id, the focus marked', async () => {
    const phrases = collapseChains(TREE);
    const dot = phraseDot(phrases, 'n0_0_0_0_0');
    const { instance } = await import('@viz-js/viz');
    const svg = (await instance()).renderString(dot, { format: 'svg' });
    for (const id of byId(phrases).keys()) assert.ok(svg.includes(`id="${id}"`), `the SVG has node ${id}`);
    assert.ok(!svg.includes('id="n0_0"'), 'a token inside a phrase is not drawn on its own');
    assert.match(svg, /<g id="n0_0_0_0_0" class="node lloom(-|&#45;)focus"/); // escaped in the string, a class in the DOM
    assert.match(svg, /·The door/);
    assert.match(svg, /creaked,&quot;/);
  });

  it('quotes what DOT would read as syntax', () => {
    const tree = node('n0', '', 1, [node('n0_0', ' "a\\b"', 1, [], 'stop')]);
    assert.match(phraseDot(collapseChains(tree)), /label="·\\"a\\\\b\\"\\n100% \[stop\]"/);
  });
});

describe('fitScale', () => {
  it('fits a wide tree to the view, but never below a readable size', () => {
    assert.equal(fitScale(1000, 500), 0.55);
    assert.equal(fitScale(600, 480), 0.8);
    assert.equal(fitScale(200, 800), 1.25);
    assert.equal(fitScale(0, 800), 1);
  });
});
