/**
 * The Threads view's drawing: the weave's token tree with every chain of single-child
 * tokens collapsed into one phrase, as Graphviz DOT.  A tree of one node per token runs
 * many levels deep and ends in lone punctuation (`,"` 48% [stop]); collapsed, each edge
 * reads as words and the tree has one level per place where the beams part.
 *
 * Pure: no `vscode` import.  A phrase keeps the id of its last token, so a click on it acts
 * as a click on that token did (insert its beam, or weave from it), and the JSON's index
 * of nodes still finds it.
 */
import type { TreeNode } from './threads';

/** A phrase of the collapsed tree: the tokens from a branch point to the next one. */
export interface PhraseNode extends TreeNode {
  /** How many tokens the phrase joins (0 at the root). */
  tokens: number;
  /** The product of its tokens' probabilities (`prob` is its first token's: the branch taken). */
  joint: number;
  children: PhraseNode[];
}

/**
 * `root` with each run of tokens that has one child and no finish joined into its child:
 * the phrase's text is the tokens' texts, its probability its first token's (the branch
 * taken where the tree splits: the product of a long phrase reads 0.00% on a real model,
 * as the Neovim tree found), `joint` their product, and the rest (id, finish, insertText)
 * its last token's.  A token where a beam ends stays the end of its phrase.
 */
export function collapseChains(root: TreeNode): PhraseNode {
  const phrase = (first: TreeNode): PhraseNode => {
    let last = first;
    let text = first.text;
    let joint = first.prob;
    let tokens = 1;
    while (last.finish === null && last.children.length === 1) {
      last = last.children[0];
      text += last.text;
      joint *= last.prob;
      tokens++;
    }
    return { ...last, text, prob: first.prob, joint, tokens, children: last.children.map(phrase) };
  };
  return { ...root, tokens: 0, joint: 1, children: root.children.map(phrase) };
}

/** The leaf a reader starts from: the finished phrase with the most probable path (ties: the first). */
export function likeliestLeaf(root: PhraseNode): PhraseNode | undefined {
  let best: PhraseNode | undefined;
  let bestProb = -1;
  const walk = (node: PhraseNode, prob: number) => {
    if (node.children.length === 0 && node.finish !== null && prob > bestProb) {
      best = node;
      bestProb = prob;
    }
    for (const child of node.children) walk(child, prob * child.joint);
  };
  walk(root, 1);
  return best;
}

/** A phrase as visible text: line breaks and tabs as symbols, edge spaces as middle dots. */
export function shownText(text: string): string {
  const out = text.replace(/\r\n|\r|\n/g, '⏎').replace(/\t/g, '⇥');
  const stripped = out.replace(/^ +| +$/g, '');
  if (stripped === '') return out === '' ? '∅' : '·'.repeat(out.length);
  const lead = out.length - out.trimStart().length;
  const trail = out.length - out.trimEnd().length;
  return '·'.repeat(lead) + stripped + '·'.repeat(trail);
}

/** `text` broken at spaces into lines of at most `width` characters (a longer word stays whole). */
export function wrapLines(text: string, width = 28): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/(?<= )/)) {
    if (line !== '' && [...line].length + [...word.trimEnd()].length > width) {
      lines.push(line.trimEnd());
      line = '';
    }
    line += word;
  }
  if (line !== '' || lines.length === 0) lines.push(line.trimEnd());
  return lines;
}

export function percentText(prob: number): string {
  if (prob >= 0.995) return '100%';
  if (prob >= 0.1) return `${(prob * 100).toFixed(0)}%`;
  if (prob >= 0.001) return `${(prob * 100).toFixed(1)}%`;
  return prob.toExponential(0);
}

/** Grey for unlikely phrases through to a strong blue for certain ones (the server's scale). */
export function probColour(prob: number): string {
  const t = Math.sqrt(Math.max(0, Math.min(1, prob)));
  const low = [0x9a, 0xa0, 0xa6];
  const high = [0x1f, 0x6f, 0xeb];
  return `#${low.map((lo, i) => Math.round(lo + (high[i] - lo) * t).toString(16).padStart(2, '0')).join('')}`;
}

function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** The phrase's label: its words, wrapped, then its probability and where its beam ended. */
export function phraseLabel(node: PhraseNode, width = 28): string {
  const lines = wrapLines(shownText(node.text), width);
  const tail = `${percentText(node.prob)}${node.finish ? ` [${node.finish}]` : ''}`;
  return [...lines, tail].join('\n');
}

/**
 * The collapsed tree as DOT, left to right: each phrase a box with its words and the
 * probability of its branch, edges as wide and as blue as that is probable, finished beams
 * double-framed; `focus` (a node id) gets the class `lloom-focus`, which the view scrolls to.
 */
export function phraseDot(root: PhraseNode, focus?: string): string {
  const lines = [
    'digraph weave {',
    '  rankdir=LR; nodesep=0.15; ranksep=0.3;',
    '  node [shape=box, style="rounded", fontname="sans-serif", fontsize=12, margin="0.08,0.04"];',
    '  edge [arrowhead=none];',
  ];
  const edges: string[] = [];
  const walk = (node: PhraseNode, isRoot: boolean) => {
    const classes = [isRoot ? 'lloom-root' : '', node.id === focus ? 'lloom-focus' : ''].filter(Boolean).join(' ');
    const cls = classes ? `, class=${dotString(classes)}` : '';
    if (isRoot) {
      lines.push(`  ${dotString(node.id)} [id=${dotString(node.id)}, label="story", shape=plaintext${cls}];`);
    } else {
      const finished = node.finish ? ', peripheries=2, style="rounded,bold"' : '';
      lines.push(
        `  ${dotString(node.id)} [id=${dotString(node.id)}, label=${dotString(phraseLabel(node))}, ` +
          `color=${dotString(probColour(node.prob))}${finished}${cls}];`,
      );
    }
    for (const child of node.children) {
      const width = 0.5 + 3.5 * Math.max(0, Math.min(1, child.prob));
      edges.push(`  ${dotString(node.id)} -> ${dotString(child.id)} [penwidth=${width.toFixed(2)}, color=${dotString(probColour(child.prob))}];`);
      walk(child, false);
    }
  };
  walk(root, true);
  return [...lines, ...edges, '}', ''].join('\n');
}

/** Graphviz's size of an SVG (its `width`/`height` in points) and the panel's width: the scale that fits. */
export function fitScale(svgWidth: number, panelWidth: number, min = 0.55, max = 1.25): number {
  if (!(svgWidth > 0) || !(panelWidth > 0)) return 1;
  return Math.max(min, Math.min(max, panelWidth / svgWidth));
}
