/**
 * The Threads view's reading of the real lloom-lsp: `lloom.tree`'s JSON through
 * `parseTreeResult`, collapsed into phrases and drawn by viz.js (the webview's Graphviz)
 * with the phrases' ids kept, a leaf inserted with `lloom.accept`, and a weave from an
 * inner node.
 *
 * Needs a Python that can import lloom_lsp ($PYTHON, else the repository's .venv), the
 * bigram test model in <repo>/.cache and llama-server, like test/serverContract.test.ts;
 * skips without them unless LLOOM_REQUIRE_REAL is set.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  type MessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  createMessageConnection,
} from 'vscode-jsonrpc/node';

import { acceptArguments, parseAcceptResult } from '../src/core/protocol';
import {
  TREE,
  type TreeOptions,
  indexNodes,
  nodeAction,
  nodeViews,
  parseTreeResult,
  treeArguments,
} from '../src/core/threads';
import { collapseChains, likeliestLeaf, phraseDot } from '../src/core/threadGraph';

const REPO = path.resolve(__dirname, '..', '..', '..', '..');
const PYTHON = process.env.PYTHON || path.join(REPO, '.venv', 'bin', 'python');
const URI = 'file:///story/threads.txt';
const TEXT = 'Once upon a time,';
const END = { line: 0, character: TEXT.length };

function testModel(): string | undefined {
  const cache = path.join(REPO, '.cache');
  if (!existsSync(cache)) return undefined;
  const model = readdirSync(cache).find((f) => /^test-model-.*\.gguf$/.test(f));
  return model && path.join(cache, model);
}

const model = testModel();
const skip = (!existsSync(PYTHON) || !model) && !process.env.LLOOM_REQUIRE_REAL && 'no Python or no test model in .cache';

describe('the Threads view against the real server', { skip }, () => {
  let proc: ChildProcess;
  let connection: MessageConnection;
  const edits: unknown[] = [];

  before(async () => {
    proc = spawn(PYTHON, ['-m', 'lloom_lsp'], { cwd: os.tmpdir(), stdio: ['pipe', 'pipe', 'ignore'] });
    connection = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    connection.onRequest('workspace/configuration', (params: { items: unknown[] }) => params.items.map(() => null));
    connection.onRequest('window/workDoneProgress/create', () => null);
    connection.onRequest('client/registerCapability', () => null);
    connection.onRequest('workspace/applyEdit', (params: unknown) => {
      edits.push(params);
      return { applied: true };
    });
    connection.listen();
    await connection.sendRequest('initialize', {
      processId: process.pid,
      rootUri: null,
      capabilities: { workspace: { configuration: true, applyEdit: true } },
      initializationOptions: {
        lloom: {
          backend: { modelPath: model, url: 'http://127.0.0.1:1' },
          weave: { strategy: 'chain', cutoff: 0.2 },
          warmup: { enabled: false, prefetch: false },
        },
      },
    });
    await connection.sendNotification('initialized', {});
    await connection.sendNotification('textDocument/didOpen', {
      textDocument: { uri: URI, languageId: 'plaintext', version: 1, text: TEXT },
    });
  });

  after(async () => {
    try {
      await connection.sendRequest('shutdown');
      await connection.sendNotification('exit');
    } catch {
      // already gone
    }
    connection?.dispose();
    proc?.kill();
  });

  const tree = async (options: TreeOptions) =>
    parseTreeResult(await connection.sendRequest('workspace/executeCommand', { command: TREE, arguments: treeArguments(URI, END, options) }));

  it("draws the server's tree as phrases with viz.js, keeping the ids of the JSON's nodes", async () => {
    const json = await tree({});
    assert.equal(json.error, undefined, json.error);
    assert.equal(json.version, 1);
    const nodes = indexNodes(json.root!);
    assert.ok(nodes.size > 1, 'the tree has tokens');
    const phrases = collapseChains(json.root!);
    const views = nodeViews(phrases);
    assert.ok(Object.values(views).some((v) => v.role === 'leaf'), 'a beam ends somewhere');
    // Every phrase is a node of the JSON (its last token), and reads as the tokens it joins.
    for (const [id, phrase] of indexNodes(phrases)) {
      const last = nodes.get(id);
      assert.ok(last, `phrase ${id} is a node of the tree`);
      assert.ok(last.path.endsWith(phrase.text), `${JSON.stringify(last.path)} ends with ${JSON.stringify(phrase.text)}`);
      if (id !== 'n0') assert.ok(last.finish !== null || last.children.length !== 1, `${id} ends at a branch or a beam's end`);
    }
    const focus = likeliestLeaf(phrases)?.id;
    assert.ok(focus, 'a likeliest beam to scroll to');
    // viz.js is an ES module; the tests compile to CommonJS.
    const { instance } = await import('@viz-js/viz');
    const svg = (await instance()).renderString(phraseDot(phrases, focus), { format: 'svg' });
    for (const id of indexNodes(phrases).keys()) assert.ok(svg.includes(`id="${id}"`), `the SVG has node ${id}`);
  });

  it("inserts a leaf's beam with lloom.accept at the tree's version", async () => {
    const json = await tree({});
    const leaf = [...indexNodes(json.root!).values()].find((n) => n.finish !== null)!;
    const action = nodeAction(leaf);
    assert.equal(action.kind, 'accept');
    const raw: unknown = await connection.sendRequest('workspace/executeCommand', {
      command: 'lloom.accept',
      arguments: acceptArguments(URI, json.version, END, leaf.insertText),
    });
    assert.deepEqual(parseAcceptResult(raw), { applied: true });
    assert.ok(JSON.stringify(edits.at(-1)).includes(JSON.stringify(leaf.insertText)), JSON.stringify(edits.at(-1)));
  });

  it('refuses a leaf of a tree older than the document, with a reason', async () => {
    const json = await tree({});
    const leaf = [...indexNodes(json.root!).values()].find((n) => n.finish !== null)!;
    const raw: unknown = await connection.sendRequest('workspace/executeCommand', {
      command: 'lloom.accept',
      arguments: acceptArguments(URI, json.version - 1, END, leaf.insertText),
    });
    const result = parseAcceptResult(raw);
    assert.equal(result.applied, false);
    assert.ok(result.reason, 'the server says why');
  });

  it('weaves from an inner node: the new tree starts with its text', async () => {
    const json = await tree({});
    const inner = [...indexNodes(json.root!).values()].find((n) => nodeAction(n).kind === 'weaveFrom');
    assert.ok(inner, 'the tree has an inner node');
    const action = nodeAction(inner);
    assert.equal(action.kind, 'weaveFrom');
    const onward = await tree({ after: inner.insertText });
    assert.equal(onward.error, undefined, onward.error);
    assert.equal(onward.after, inner.insertText);
    for (const node of indexNodes(onward.root!).values()) {
      assert.ok(node.insertText.startsWith(inner.insertText), node.insertText);
    }
    assert.deepEqual(nodeAction(onward.root!, inner.insertText), { kind: 'none' });
  });
});
