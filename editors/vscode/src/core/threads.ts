/**
 * The Threads view's logic: the `lloom.tree` wire shapes, the messages between the
 * extension and its webview, and what a click on a node of the tree does.
 *
 * Pure: no `vscode` import, so unit tests run under plain node.  The webview draws the
 * server's DOT with Graphviz (viz.js); the SVG keeps the DOT's node ids, so a click on
 * the SVG element with id "n0_2" is a click on the tree node "n0_2".
 */

import type { LspPosition, WeaveOptions } from './protocol';

export const TREE = 'lloom.tree';

export type TreeFormat = 'json' | 'dot' | 'mermaid' | 'text' | 'svg';

export interface TreeNode {
  /** Stable: "n0" is the root, "n0_2" its third child. */
  id: string;
  /** The token's text ("" at the root). */
  text: string;
  prob: number;
  /** null for an inner node; where a beam ends: "stop" | "depth" | "end" | "cut". */
  finish: string | null;
  /** The model's text from the root to here. */
  path: string;
  /** What to insert at the weave's position to get the text up to here (healed). */
  insertText: string;
  children: TreeNode[];
}

export interface TreeResult {
  format: string;
  /** The document version the weave read. */
  version: number;
  speedLine: string;
  after?: string;
  root?: TreeNode;
  /** The rendering, for every format but json. */
  text?: string;
  error?: string;
}

export type TreeOptions = WeaveOptions & { format?: TreeFormat };

export function treeArguments(uri: string, position: LspPosition, options: TreeOptions = {}): unknown[] {
  return [uri, { line: position.line, character: position.character }, options];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function toNode(raw: unknown, fallbackId: string): TreeNode {
  const n = isRecord(raw) ? raw : {};
  const id = typeof n.id === 'string' && n.id !== '' ? n.id : fallbackId;
  const text = typeof n.text === 'string' ? n.text : '';
  return {
    id,
    text,
    prob: typeof n.prob === 'number' && Number.isFinite(n.prob) ? n.prob : 0,
    finish: typeof n.finish === 'string' && n.finish !== '' ? n.finish : null,
    path: typeof n.path === 'string' ? n.path : text,
    insertText: typeof n.insertText === 'string' ? n.insertText : '',
    children: Array.isArray(n.children) ? n.children.map((c, i) => toNode(c, `${id}_${i}`)) : [],
  };
}

/** A `lloom.tree` answer from whatever the server sent; not an object is an error. */
export function parseTreeResult(raw: unknown): TreeResult {
  if (!isRecord(raw)) throw new Error('lloom.tree: the server answered without a result');
  const result: TreeResult = {
    format: typeof raw.format === 'string' ? raw.format : '',
    version: typeof raw.version === 'number' ? raw.version : -1,
    speedLine: typeof raw.speedLine === 'string' ? raw.speedLine : '',
  };
  if (typeof raw.after === 'string' && raw.after !== '') result.after = raw.after;
  if (typeof raw.text === 'string') result.text = raw.text;
  if (typeof raw.error === 'string' && raw.error !== '') result.error = raw.error;
  const tree = isRecord(raw.tree) ? raw.tree : undefined;
  if (tree && isRecord(tree.root)) result.root = toNode(tree.root, 'n0');
  return result;
}

/** Every node of the tree by id, root included. */
export function indexNodes(root: TreeNode): Map<string, TreeNode> {
  const nodes = new Map<string, TreeNode>();
  const stack = [root];
  for (let node = stack.pop(); node; node = stack.pop()) {
    nodes.set(node.id, node);
    stack.push(...node.children);
  }
  return nodes;
}

/** What a click on a node does: insert its beam, weave from it, or nothing (the root). */
export type NodeAction =
  | { kind: 'accept'; insertText: string }
  | { kind: 'weaveFrom'; after: string }
  | { kind: 'none' };

export function nodeAction(node: TreeNode, after = ''): NodeAction {
  if (node.finish !== null) return { kind: 'accept', insertText: node.insertText };
  // The root: where this tree already starts (its insertText is the weave's `after`).
  if (node.insertText === after) return { kind: 'none' };
  return { kind: 'weaveFrom', after: node.insertText };
}

/** How the webview marks each node: leaves insert, inner nodes weave. */
export type NodeRole = 'leaf' | 'inner' | 'root';

export interface NodeView {
  role: NodeRole;
  /** The hover text: what a click does, and the beam up to here. */
  title: string;
}

function shorten(text: string, max = 200): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `…${flat.slice(flat.length - max + 1)}` : flat;
}

export function nodeViews(root: TreeNode, after = ''): Record<string, NodeView> {
  const views: Record<string, NodeView> = {};
  for (const node of indexNodes(root).values()) {
    const action = nodeAction(node, after);
    const pct = `${(node.prob * 100).toFixed(1)}%`;
    if (action.kind === 'accept') {
      views[node.id] = { role: 'leaf', title: `Insert (${node.finish}, ${pct}): ${shorten(node.insertText)}` };
    } else if (action.kind === 'weaveFrom') {
      views[node.id] = { role: 'inner', title: `Weave from here (${pct}): ${shorten(node.insertText)}` };
    } else {
      views[node.id] = { role: 'root', title: 'Where this weave starts' };
    }
  }
  return views;
}

/** Extension → webview. */
export type ToWebview =
  /** `focus`: the node the view scrolls to when the tree is wider than the view (the likeliest beam's end). */
  | { type: 'tree'; dot: string; nodes: Record<string, NodeView>; caption: string; focus?: string }
  | { type: 'busy'; message: string }
  | { type: 'notice'; message: string };

/** Webview → extension. */
export type FromWebview = { type: 'ready' } | { type: 'refresh' } | { type: 'licences' } | { type: 'click'; id: string };

export function parseFromWebview(raw: unknown): FromWebview | undefined {
  if (!isRecord(raw)) return undefined;
  if (raw.type === 'ready' || raw.type === 'refresh' || raw.type === 'licences') return { type: raw.type };
  if (raw.type === 'click' && typeof raw.id === 'string') return { type: 'click', id: raw.id };
  return undefined;
}

/** The line above the tree: the speed line, and where it was woven from. */
export function treeCaption(result: TreeResult): string {
  const from = result.after ? ` · from "${shorten(result.after, 60)}"` : '';
  return `${result.speedLine || 'LLooM'}${from}`;
}

/**
 * The notice the view shows under the tree: Graphviz (EPL-2.0) is bundled, in object
 * code, in the webview's script; its licence and the others are in ThirdPartyNotices.txt.
 */
export const LICENCE_NOTICE =
  'Drawn by Graphviz (Eclipse Public License 2.0; source: https://gitlab.com/graphviz/graphviz) ' +
  'through Viz.js (MIT) and Expat (MIT), bundled in object code.';
export const NOTICES_FILE = 'ThirdPartyNotices.txt';

/** A nonce for the webview's Content-Security-Policy, from 16 random bytes. */
export function nonceFrom(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The webview's CSP: nothing by default; scripts only by nonce, and WebAssembly
 * (Graphviz) compiled in place; styles from the extension and inline (Graphviz's SVG
 * carries style attributes); images as data URIs.
 */
export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}' 'wasm-unsafe-eval'`,
    `style-src ${cspSource} 'unsafe-inline'`,
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
  ].join('; ');
}
