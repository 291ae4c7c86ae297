/**
 * A cloned repository cannot run code through the server launch: the launch the extension
 * computes (`resolveServerCommand` + `serverProcess`, as serverLaunch.ts calls them) is
 * spawned for real, from inside a workspace that holds a malicious `lloom_lsp/` package,
 * and must reach the real server (an LSP `initialize` is answered) without importing it.
 *
 * Needs a Python that can import the real lloom_lsp: $PYTHON, else the repository's .venv.
 * Skips without one, except under scripts/ci.sh (LLOOM_REQUIRE_PYTHON=1), where it fails.
 * The bundled-server case needs bundled/libs (bundled/build.sh, which ci.sh runs first).
 *
 * The launches run on fresh venvs made from $PYTHON, not on $PYTHON itself: the
 * repository's .venv has lloom_lsp as an editable install, whose import hook happens to
 * win over the working directory, while a plain `pip install` puts lloom_lsp in
 * site-packages, behind it.  The "installed" venv is that plain install (a .pth file).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, beforeEach, describe, it } from 'node:test';

import {
  type Environment,
  type FoundPython,
  type ServerCommand,
  parsePythonVersion,
  resolveServerCommand,
  serverProcess,
} from '../src/core/serverCommand';

// Compiled to out/test/: the extension is two levels up, the repository four.
const EXTENSION = path.resolve(__dirname, '..', '..');
const REPO = path.resolve(EXTENSION, '..', '..');
const BUNDLED_SERVER = path.join(EXTENSION, 'bundled', 'tool', 'lsp_server.py');
const BUNDLED_LIBS = path.join(EXTENSION, 'bundled', 'libs', 'lloom_lsp');
const REQUIRED = Boolean(process.env.LLOOM_REQUIRE_PYTHON || process.env.LLOOM_REQUIRE_REAL);
const PYTHON = process.env.PYTHON || path.join(REPO, '.venv', 'bin', 'python');
const INITIALIZE_TIMEOUT_MS = 60_000;

function venvPython(venv: string): string {
  return path.join(venv, process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
}

function purelib(python: string): string {
  return execFileSync(python, ['-I', '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'], {
    cwd: os.tmpdir(),
    encoding: 'utf8',
  }).trim();
}

/** A venv without packages; with `pth`, one whose site-packages lists those folders. */
function makeVenv(venv: string, pth: string[] = []): string {
  execFileSync(PYTHON, ['-m', 'venv', '--without-pip', venv]);
  const python = venvPython(venv);
  if (pth.length > 0) writeFileSync(path.join(purelib(python), 'lloom-installed.pth'), pth.join('\n') + '\n');
  return python;
}

function found(command: string): FoundPython {
  const out = execFileSync(command, ['-I', '-c', 'import sys; print(sys.version.split()[0])'], {
    cwd: os.tmpdir(),
    encoding: 'utf8',
  });
  return { command, origin: 'path', version: parsePythonVersion(out) };
}

/** Whether $PYTHON runs and imports the real server; a reason to skip when it does not. */
function pythonProblem(): string | undefined {
  try {
    execFileSync(PYTHON, ['-I', '-c', 'import lloom_lsp.cli'], { cwd: os.tmpdir(), stdio: 'ignore' });
    return undefined;
  } catch (err) {
    return `${PYTHON} cannot import lloom_lsp (${String(err).split('\n')[0]}): set PYTHON`;
  }
}

/** This machine, but with nothing on PATH: no installed `lloom-lsp` may answer instead. */
const noPath: Environment = { platform: process.platform, env: { PATH: '' }, homedir: os.homedir(), isExecutable: existsSync };

/**
 * A repository that, if any of it is imported, writes `marker`.  Every module a launch
 * could import first is there: `python -m lloom_lsp` runs __main__, the bundled script
 * imports lloom_lsp.cli, and both import the package.
 */
function maliciousWorkspace(root: string, marker: string): string {
  const folder = path.join(root, 'workspace');
  const pkg = path.join(folder, 'lloom_lsp');
  mkdirSync(pkg, { recursive: true });
  const payload = `open(${JSON.stringify(marker)}, "a").write(__name__ + "\\n")\n`;
  for (const name of ['__init__.py', '__main__.py', 'cli.py']) writeFileSync(path.join(pkg, name), payload);
  writeFileSync(path.join(folder, 'story.txt'), 'Once upon a time,');
  return folder;
}

function frame(message: object): string {
  const body = JSON.stringify(message);
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** Resolves with the response to request `id`, read from LSP-framed `stdout`. */
function response(child: ChildProcess, id: number, stderr: () => string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const timer = setTimeout(
      () => reject(new Error(`no answer to request ${id} in ${INITIALIZE_TIMEOUT_MS} ms; stderr:\n${stderr()}`)),
      INITIALIZE_TIMEOUT_MS,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before answering; stderr:\n${stderr()}`));
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const headerEnd = buffer.indexOf('\r\n\r\n');
        if (headerEnd < 0) return;
        const length = Number(/Content-Length: (\d+)/i.exec(buffer.subarray(0, headerEnd).toString())?.[1]);
        if (buffer.length < headerEnd + 4 + length) return;
        const message = JSON.parse(buffer.subarray(headerEnd + 4, headerEnd + 4 + length).toString()) as Record<
          string,
          unknown
        >;
        buffer = buffer.subarray(headerEnd + 4 + length);
        if (message.id === id) {
          clearTimeout(timer);
          resolve(message);
        }
      }
    });
  });
}

/**
 * Spawns the launch from inside `workspace` (the extension host's working directory when
 * VS Code was started there with `code .`), initializes, and shuts the server down.
 */
async function initialize(cmd: ServerCommand, workspace: string, neutralDir: string): Promise<Record<string, unknown>> {
  const proc = serverProcess(cmd, neutralDir, process.env);
  const hostCwd = process.cwd();
  process.chdir(workspace);
  let child: ChildProcess;
  try {
    child = spawn(proc.command, proc.args, { ...proc.options, stdio: ['pipe', 'pipe', 'pipe'] });
  } finally {
    process.chdir(hostCwd);
  }
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const answer = response(child, 1, () => stderr);
    const uri = pathToFileURL(workspace).href;
    child.stdin!.write(
      frame({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { processId: process.pid, rootUri: uri, capabilities: {}, workspaceFolders: [{ uri, name: 'w' }] },
      }),
    );
    const message = await answer;
    const shutdown = response(child, 2, () => stderr);
    child.stdin!.write(frame({ jsonrpc: '2.0', id: 2, method: 'shutdown' }));
    await shutdown;
    child.stdin!.write(frame({ jsonrpc: '2.0', method: 'exit' }));
    await exited;
    return message;
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

/** The workspace's package did not run (checked first, even when the start failed), and the real server answered. */
async function assertRealServer(answer: Promise<Record<string, unknown>>, marker: string): Promise<void> {
  const outcome = await answer.catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  assert.equal(existsSync(marker), false, "the workspace's lloom_lsp package ran");
  if (outcome instanceof Error) throw outcome;
  const message = outcome;
  const result = message.result as { serverInfo?: { name?: string }; capabilities?: object } | undefined;
  assert.ok(result?.capabilities, `initialize answered with capabilities: ${JSON.stringify(message)}`);
  assert.match(result.serverInfo?.name ?? '', /lloom/i);
}

describe('the server launch ignores a workspace that holds a lloom_lsp package', () => {
  const problem = pythonProblem();
  const skip = problem !== undefined && !REQUIRED ? problem : false;
  let root: string;
  let workspace: string;
  let marker: string;
  let neutralDir: string;
  /** lloom_lsp and its dependencies installed as `pip install` would, in site-packages. */
  let installed: string;
  /** Nothing installed. */
  let plain: string;

  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'lloom-isolation-'));
    marker = path.join(root, 'PWNED');
    workspace = maliciousWorkspace(root, marker);
    neutralDir = mkdtempSync(path.join(root, 'neutral-'));
    if (problem) return; // the first test fails with it, under ci.sh; the rest skip or fail
    installed = makeVenv(path.join(root, 'installed'), [REPO, purelib(PYTHON)]);
    plain = makeVenv(path.join(root, 'plain'));
  });

  beforeEach(() => rmSync(marker, { force: true }));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('has a Python that imports the real server (required under scripts/ci.sh)', { skip }, () => {
    assert.equal(problem, undefined, problem);
  });

  it('python -I -m lloom_lsp, the launch without a bundled server', { skip }, async () => {
    const cmd = resolveServerCommand({ configured: [], pythons: [found(installed)] }, noPath);
    assert.equal(cmd.source, 'python');
    await assertRealServer(initialize(cmd, workspace, neutralDir), marker);
  });

  it("the user's own `python -m lloom_lsp` in lloom.server.command", { skip }, async () => {
    // Not isolated: only the neutral working directory keeps the workspace off sys.path.
    const cmd = resolveServerCommand({ configured: [installed, '-m', 'lloom_lsp'] }, noPath);
    await assertRealServer(initialize(cmd, workspace, neutralDir), marker);
  });

  it('the bundled server, on a Python with no packages at all', { skip }, async () => {
    assert.ok(existsSync(BUNDLED_LIBS), `${BUNDLED_LIBS} is missing: run bundled/build.sh`);
    assert.throws(
      () => execFileSync(plain, ['-I', '-c', 'import lloom_lsp'], { cwd: neutralDir, stdio: 'ignore' }),
      'the plain venv cannot import lloom_lsp, so only bundled/libs can answer',
    );
    const cmd = resolveServerCommand(
      { configured: [], bundledServer: BUNDLED_SERVER, pythons: [found(plain)] },
      noPath,
    );
    assert.deepEqual(cmd, { command: plain, args: ['-I', BUNDLED_SERVER], source: 'bundled' });
    await assertRealServer(initialize(cmd, workspace, neutralDir), marker);
  });
});
