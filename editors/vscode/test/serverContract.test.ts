/**
 * The client's reading of the server, against the real lloom-lsp: the arguments
 * `weaveArguments` builds, the results `parseWeaveResult` reads, and the `lloom/status`
 * notifications the status bar follows; and that a dead backend makes one message (the
 * server's), so the client must add none.
 *
 * Needs a Python that can import lloom_lsp ($PYTHON, else the repository's .venv); skips
 * without one, except under scripts/ci.sh (LLOOM_REQUIRE_PYTHON=1).  The weaves with a
 * model also need the bigram test model in <repo>/.cache (the Python tests build it) and
 * llama-server; they skip without them unless LLOOM_REQUIRE_REAL is set.
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

import { weaveFailure } from '../src/core/notices';
import { type WeaveOptions, parseWeaveResult, weaveArguments } from '../src/core/protocol';
import { STATUS_NOTIFICATION, StatusModel, type WeaveStatus, parseWeaveStatus } from '../src/core/weaveStatus';

const REPO = path.resolve(__dirname, '..', '..', '..', '..');
const PYTHON = process.env.PYTHON || path.join(REPO, '.venv', 'bin', 'python');
const REQUIRE_PYTHON = Boolean(process.env.LLOOM_REQUIRE_PYTHON || process.env.LLOOM_REQUIRE_REAL);
const REQUIRE_MODEL = Boolean(process.env.LLOOM_REQUIRE_REAL);
const URI = 'file:///story/tale.txt';
const TEXT = 'Once upon a time,';
const END = { line: 0, character: TEXT.length };

function testModel(): string | undefined {
  const cache = path.join(REPO, '.cache');
  if (!existsSync(cache)) return undefined;
  const model = readdirSync(cache).find((f) => /^test-model-.*\.gguf$/.test(f));
  return model && path.join(cache, model);
}

/** The real server over stdio, with what it sent the client on the side. */
class Session {
  readonly statuses: WeaveStatus[] = [];
  readonly messages: string[] = [];
  private readonly proc: ChildProcess;
  readonly connection: MessageConnection;
  private statusWaiters: (() => void)[] = [];

  constructor() {
    this.proc = spawn(PYTHON, ['-m', 'lloom_lsp'], { cwd: os.tmpdir(), stdio: ['pipe', 'pipe', 'ignore'] });
    this.connection = createMessageConnection(
      new StreamMessageReader(this.proc.stdout!),
      new StreamMessageWriter(this.proc.stdin!),
    );
    this.connection.onNotification(STATUS_NOTIFICATION, (params: unknown) => {
      const status = parseWeaveStatus(params);
      assert.ok(status, `unreadable lloom/status: ${JSON.stringify(params)}`);
      this.statuses.push(status);
      for (const wake of this.statusWaiters.splice(0)) wake();
    });
    this.connection.onNotification('window/showMessage', (params: { message: string }) => {
      this.messages.push(params.message);
    });
    // workspace/configuration: nothing beyond the initializationOptions.
    this.connection.onRequest('workspace/configuration', (params: { items: unknown[] }) => params.items.map(() => null));
    this.connection.onRequest('window/workDoneProgress/create', () => null);
    this.connection.onRequest('client/registerCapability', () => null);
    this.connection.listen();
  }

  async start(lloom: Record<string, unknown>): Promise<void> {
    await this.connection.sendRequest('initialize', {
      processId: process.pid,
      rootUri: null,
      capabilities: { workspace: { configuration: true } },
      initializationOptions: { lloom },
    });
    await this.connection.sendNotification('initialized', {});
    await this.connection.sendNotification('textDocument/didOpen', {
      textDocument: { uri: URI, languageId: 'plaintext', version: 1, text: TEXT },
    });
  }

  async weave(options?: WeaveOptions) {
    const raw: unknown = await this.connection.sendRequest('workspace/executeCommand', {
      command: 'lloom.weave',
      arguments: weaveArguments(URI, END, options),
    });
    return parseWeaveResult(raw);
  }

  /** Resolves once `count` statuses have arrived: the end of a weave may trail its answer. */
  async statusCount(count: number): Promise<void> {
    while (this.statuses.length < count) {
      await new Promise<void>((resolve) => this.statusWaiters.push(resolve));
    }
  }

  /**
   * The statuses of the weave whose first status is at `from`, once its end arrived: its
   * start, any progress messages (`weaving` or `progress` with a message), and its end.
   */
  async weaveStatuses(from: number): Promise<WeaveStatus[]> {
    const ends = ['done', 'failed', 'cancelled'];
    for (;;) {
      const end = this.statuses.findIndex((s, i) => i >= from && ends.includes(s.state));
      if (end >= 0) return this.statuses.slice(from, end + 1);
      await new Promise<void>((resolve) => this.statusWaiters.push(resolve));
    }
  }

  async close(): Promise<void> {
    try {
      await this.connection.sendRequest('shutdown');
      await this.connection.sendNotification('exit');
    } catch {
      // already gone
    }
    this.connection.dispose();
    this.proc.kill();
  }
}

const havePython = existsSync(PYTHON);

describe('against the real server: a dead backend', { skip: !havePython && !REQUIRE_PYTHON && `no Python at ${PYTHON}` }, () => {
  let session: Session;

  before(async () => {
    session = new Session();
    // Port 1 refuses connections: the backend is down.
    await session.start({ backend: { url: 'http://127.0.0.1:1', type: 'llamacpp' } });
  });

  after(() => session?.close());

  it("makes one message, the server's, so the client shows none of its own", async () => {
    const result = await session.weave();
    assert.ok(result.error, 'the weave reports an error');
    assert.equal(weaveFailure(result.error, true).show, undefined, `the client would add: ${result.error}`);
    assert.equal(session.messages.length, 1, session.messages.join('\n'));
    assert.ok(!session.messages[0].includes('could not weave'));
  });

  it('reports the weave and its failure with lloom/status, which the status bar shows', async () => {
    await session.statusCount(2);
    assert.deepEqual(
      session.statuses.slice(0, 2).map((s) => [s.uri, s.state]),
      [
        [URI, 'weaving'],
        [URI, 'failed'],
      ],
    );
    const model = new StatusModel();
    model.setServer('ready');
    for (const status of session.statuses) model.onWeave(status);
    assert.equal(model.view().background, 'warning');
    assert.match(model.view().tooltip, /Last weave failed: \S/);
  });
});

const model = testModel();

describe(
  'against the real server: weave options with the test model',
  { skip: (!havePython || !model) && !REQUIRE_MODEL && 'no Python or no test model in .cache' },
  () => {
    let session: Session;

    before(async () => {
      session = new Session();
      await session.start({
        backend: { modelPath: model, url: 'http://127.0.0.1:1' },
        weave: { strategy: 'chain', cutoff: 0.2 },
        warmup: { enabled: false, prefetch: false },
      });
    });

    after(() => session?.close());

    it('weaves, and lloom/status carries the speed line to the status bar', async () => {
      const first = await session.weave();
      assert.equal(first.error, undefined, first.error);
      assert.ok(first.beams.length > 0);
      const statuses = await session.weaveStatuses(0);
      const [start, end] = [statuses[0], statuses.at(-1)!];
      assert.deepEqual([start.state, end.state], ['weaving', 'done']);
      assert.equal(end.message, first.speedLine);
      // Between them only progress: how far it is, in words ("3 of 12 beams").
      for (const update of statuses.slice(1, -1)) {
        assert.ok(['weaving', 'progress'].includes(update.state) && update.message !== '', JSON.stringify(update));
      }
      const status = new StatusModel();
      status.setServer('ready');
      status.onWeave(start);
      for (const update of statuses.slice(1, -1)) {
        status.onWeave(update);
        assert.equal(status.view().text, `$(loading~spin) LLooM: ${update.message}`);
      }
      status.onWeave(end);
      assert.ok(!status.isWeaving, 'one weave, however many messages');
      assert.equal(status.view().text, `$(check) LLooM: ${first.speedLine}`);
    });

    it('weaves afresh with fresh: a new weave, where a plain one answers from the cache', async () => {
      const before = session.statuses.length;
      const cached = await session.weave();
      const again = await session.weave({ fresh: true });
      assert.equal(again.error, undefined, again.error);
      const statuses = await session.weaveStatuses(before);
      assert.deepEqual([statuses[0].state, statuses.at(-1)!.state], ['weaving', 'done']);
      // The cached answer started no weave: these statuses are the fresh weave's.
      assert.equal(statuses.at(-1)!.message, again.speedLine);
      assert.ok(cached.beams.length > 0);
    });

    it('weaves from a beam with after: every insertText starts with it', async () => {
      const first = await session.weave();
      const chosen = first.beams[0].insertText;
      const onward = await session.weave({ after: chosen });
      assert.equal(onward.error, undefined, onward.error);
      assert.equal(onward.after, chosen);
      for (const beam of onward.beams) assert.ok(beam.insertText.startsWith(chosen), beam.insertText);
    });

    it('weaves deeper with deeper', async () => {
      const deeper = await session.weave({ deeper: true });
      assert.equal(deeper.error, undefined, deeper.error);
      assert.ok(deeper.beams.length > 0);
    });
  },
);
