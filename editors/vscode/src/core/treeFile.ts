/**
 * A thread tree kept beside its document: `lloom.saveTree` and `lloom.loadTree` answers
 * read and checked (the server draws a loaded tree's DOT too, as it draws a woven one:
 * `LOAD_OPTIONS`), and whether the text at the saved position still is the text the tree
 * was woven from.
 *
 * Pure: no `vscode` import, so unit tests run under plain node.
 */
import type { LspPosition } from './protocol';
import { type TreeNode, parseTreeResult } from './threads';

export const SAVE_TREE = 'lloom.saveTree';
export const LOAD_TREE = 'lloom.loadTree';
/** `lloom.loadTree`'s options: the tree drawn by the server (its `text`), as `lloom.tree` draws one. */
export const LOAD_OPTIONS = { format: 'dot' } as const;

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
  /** The server's DOT of the tree. */
  dot: string;
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
  if (typeof r.text !== 'string' || r.text === '') {
    return { error: `${LOAD_TREE}: the server answered without the tree's drawing` };
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
    dot: r.text,
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
