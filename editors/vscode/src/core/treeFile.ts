/**
 * A thread tree kept beside its document: `lloom.saveTree` and `lloom.loadTree` answers
 * read and checked, the saved tree drawn as DOT (in the server's style, since a loaded
 * tree is not woven again and so has no `lloom.tree` rendering), and whether the text at
 * the saved position still is the text the tree was woven from.
 *
 * Pure: no `vscode` import, so unit tests run under plain node.
 */
import type { LspPosition } from './protocol';
import { type TreeNode, parseTreeResult } from './threads';

export const SAVE_TREE = 'lloom.saveTree';
export const LOAD_TREE = 'lloom.loadTree';

export type Failed = { error: string };

export interface SavedTree {
  path: string;
  nodes: number;
}

/** A tree as `lloom.loadTree` gives it: the JSON of `lloom.tree`, and where and when it was woven. */
export interface LoadedTree {
  path: string;
  document: string;
  savedAt: string;
  position: LspPosition;
  /** Text the weave continued from, not in the document; every node's insertText starts with it. */
  after: string;
  speedLine: string;
  /** The story the root stands for, without its trailing spaces and tabs (`held`). */
  prompt: string;
  held: string;
  root: TreeNode;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function failure(raw: unknown, command: string): Failed | undefined {
  if (!isRecord(raw)) return { error: `${command}: the server answered without a result` };
  if (typeof raw.error === 'string' && raw.error !== '') return { error: raw.error };
  return undefined;
}

export function parseSaveResult(raw: unknown): SavedTree | Failed {
  const failed = failure(raw, SAVE_TREE);
  if (failed) return failed;
  const r = raw as Record<string, unknown>;
  if (typeof r.path !== 'string') return { error: `${SAVE_TREE}: the server answered without a path` };
  return { path: r.path, nodes: typeof r.nodes === 'number' ? r.nodes : 0 };
}

export function parseLoadResult(raw: unknown): LoadedTree | Failed {
  const failed = failure(raw, LOAD_TREE);
  if (failed) return failed;
  const r = raw as Record<string, unknown>;
  const root = parseTreeResult(r).root;
  const position = isRecord(r.position) ? r.position : {};
  const { line, character } = position;
  if (!root || !Number.isInteger(line) || !Number.isInteger(character)) {
    return { error: `${LOAD_TREE}: the server answered without a tree and its position` };
  }
  const tree = r.tree as Record<string, unknown>;
  const str = (value: unknown) => (typeof value === 'string' ? value : '');
  return {
    path: str(r.path),
    document: str(r.document),
    savedAt: str(r.savedAt),
    position: { line: line as number, character: character as number },
    after: str(r.after),
    speedLine: str(r.speedLine),
    prompt: str(tree.prompt),
    held: str(tree.held),
    root,
  };
}

/**
 * Whether the document still reads, up to the saved position, as the story the tree was
 * woven from.  `textBefore`: the document's text before that position.  The story is that
 * text plus `after`, cut to its last characters, so its end is what must still match.
 */
export function treeFitsText(tree: Pick<LoadedTree, 'after' | 'prompt' | 'held'>, textBefore: string): boolean {
  return (textBefore + tree.after).endsWith(tree.prompt + tree.held);
}

/** The line above a loaded tree: when it was saved, its speed line, and where it was woven from. */
export function loadedCaption(tree: LoadedTree): string {
  const from = tree.after ? ` · from "${oneLine(tree.after, 60)}"` : '';
  const speed = tree.speedLine ? ` · ${tree.speedLine}` : '';
  return `Saved ${tree.savedAt || 'tree'}${speed}${from}`;
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `…${flat.slice(flat.length - max + 1)}` : flat;
}

// -- DOT, as the server's engine/render.py draws it --------------------------------------------

/**
 * `x` with `digits` decimals as Python's format does: the exact binary value, correctly
 * rounded, ties to even (`toFixed` takes ties up: 12.5 -> "13" where Python says "12").
 */
export function pyFixed(x: number, digits: number): string {
  const exact = x.toFixed(60);
  const dot = exact.indexOf('.');
  const kept = exact.slice(0, dot + 1 + digits).replace(/\.$/, '');
  if (/^50*$/.test(exact.slice(dot + 1 + digits)) && Number(kept.slice(-1)) % 2 === 0) return kept;
  return x.toFixed(digits);
}

/** A token as one visible line, as the server's `shown`: breaks and tabs as symbols, edge spaces as dots. */
export function shownToken(text: string): string {
  let out = text.replace(/\r\n|\n|\r/g, '⏎').replace(/\t/g, '⇥');
  const stripped = out.replace(/^ +| +$/g, '');
  if (stripped !== out) {
    const lead = out.length - out.replace(/^ +/, '').length;
    const trail = out.length - out.replace(/ +$/, '').length;
    out = '·'.repeat(lead) + stripped + '·'.repeat(trail);
  }
  return out || '∅';
}

/** A probability as the server's tree labels print it. */
export function treePercent(prob: number): string {
  if (prob >= 0.995) return '100%';
  if (prob >= 0.1) return `${pyFixed(prob * 100, 0)}%`;
  if (prob >= 0.001) return `${pyFixed(prob * 100, 1)}%`;
  // Python's "{:.0e}": two exponent digits at least (5e-04).
  return prob.toExponential(0).replace(/e([+-])(\d)$/, 'e$10$2');
}

function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** Grey for unlikely tokens through to a strong blue for certain ones. */
function colour(prob: number): string {
  const t = Math.max(0, Math.min(1, prob)) ** 0.5;
  const low = [0x9a, 0xa0, 0xa6];
  const high = [0x1f, 0x6f, 0xeb];
  const hex = low.map((lo, i) => Number(pyFixed(lo + (high[i] - lo) * t, 0)).toString(16).padStart(2, '0'));
  return `#${hex.join('')}`;
}

function* walk(node: TreeNode): Generator<TreeNode> {
  yield node;
  for (const child of node.children) yield* walk(child);
}

/** The last `n` characters (code points, as Python slices). */
function tail(text: string, n: number): string {
  const chars = Array.from(text);
  return chars.slice(Math.max(0, chars.length - n)).join('');
}

/**
 * Graphviz DOT of a saved tree, node for node what the server's `to_dot` draws for a woven
 * one (the same ids, so the webview maps a click to a node as it does for a live tree).
 */
export function treeToDot(prompt: string, root: TreeNode): string {
  const lines = [
    'digraph weave {',
    '  rankdir=LR;',
    '  node [shape=box, style="rounded", fontname="sans-serif", fontsize=11];',
    '  edge [arrowhead=none, fontname="sans-serif", fontsize=9];',
  ];
  for (const node of walk(root)) {
    let label: string;
    let attrs: string;
    if (node.id === 'n0') {
      label = 'story';
      attrs = 'shape=plaintext';
    } else {
      label = `${shownToken(node.text)}\n${treePercent(node.prob)}`;
      attrs = `color=${dotString(colour(node.prob))}`;
      if (node.finish) {
        label += `\n[${node.finish}]`;
        attrs += ', peripheries=2, style="rounded,bold"';
      }
    }
    const tooltip = dotString(tail(`${tail(prompt, 40)}|${node.path}`, 200));
    lines.push(`  ${node.id} [id=${dotString(node.id)}, label=${dotString(label)}, tooltip=${tooltip}, ${attrs}];`);
  }
  for (const node of walk(root)) {
    for (const child of node.children) {
      const width = 0.5 + 3.5 * Math.max(0, Math.min(1, child.prob));
      lines.push(`  ${node.id} -> ${child.id} [penwidth=${pyFixed(width, 2)}, color=${dotString(colour(child.prob))}];`);
    }
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
