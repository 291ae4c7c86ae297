/** Which program starts the server. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  type Environment,
  type FoundPython,
  ServerCommandError,
  configuredCommand,
  describeCommand,
  findOnPath,
  isSupportedPython,
  parsePythonVersion,
  pythonCandidates,
  resolveServerCommand,
  serverProcess,
} from '../src/core/serverCommand';

function posix(executables: string[], PATH = '/usr/local/bin:/usr/bin'): Environment {
  return { platform: 'linux', env: { PATH }, homedir: '/home/u', isExecutable: (f) => executables.includes(f) };
}

const py = (command: string, version?: string, origin: FoundPython['origin'] = 'path'): FoundPython =>
  version ? { command, origin, version } : { command, origin, problem: 'spawn ENOENT' };
const BUNDLED = '/ext/bundled/tool/lsp_server.py';

describe('resolveServerCommand', () => {
  it('prefers the setting, split into program and arguments', () => {
    const cmd = resolveServerCommand(
      { configured: ['~/venv/bin/python', '-m', 'lloom_lsp'], bundledServer: BUNDLED, pythons: [py('/py', '3.12.1')] },
      posix(['/usr/bin/lloom-lsp']),
    );
    assert.deepEqual(cmd, { command: '/home/u/venv/bin/python', args: ['-m', 'lloom_lsp'], source: 'setting' });
  });

  it('then the bundled server, isolated, with the first Python 3.10+', () => {
    const pythons = [py('/old/python', '3.9.18', 'python-extension'), py('/usr/bin/python3', '3.10.0')];
    const cmd = resolveServerCommand({ configured: [], bundledServer: BUNDLED, pythons }, posix(['/usr/bin/lloom-lsp']));
    assert.deepEqual(cmd, { command: '/usr/bin/python3', args: ['-I', BUNDLED], source: 'bundled' });
  });

  it('then lloom-lsp on PATH, when no Python is new enough', () => {
    const pythons = [py('/usr/bin/python3', '3.8.10')];
    const cmd = resolveServerCommand({ configured: [], bundledServer: BUNDLED, pythons }, posix(['/usr/bin/lloom-lsp']));
    assert.deepEqual(cmd, { command: '/usr/bin/lloom-lsp', args: [], source: 'path' });
  });

  it('then, without a bundled server, python -I -m lloom_lsp', () => {
    const cmd = resolveServerCommand({ configured: [], pythons: [py('/venv/bin/python', '3.13.0')] }, posix([]));
    assert.deepEqual(cmd, { command: '/venv/bin/python', args: ['-I', '-m', 'lloom_lsp'], source: 'python' });
  });

  it('otherwise explains, naming each Python found and its version', () => {
    const pythons = [py('/usr/bin/python3', '3.8.10'), py('/usr/bin/python')];
    assert.throws(
      () => resolveServerCommand({ configured: [], bundledServer: BUNDLED, pythons }, posix([])),
      (err: unknown) =>
        err instanceof ServerCommandError &&
        err.message.includes('Python 3.10 or newer') &&
        err.message.includes('Python 3.8.10 at /usr/bin/python3 (on PATH)') &&
        err.message.includes('/usr/bin/python (on PATH)') &&
        err.message.includes('lloom.server.command'),
    );
    assert.throws(() => resolveServerCommand({ configured: [] }, posix([])), /found no python3 on PATH/);
  });
});

describe('Python versions', () => {
  it('reads the version a Python prints', () => {
    assert.equal(parsePythonVersion('3.11.2\n'), '3.11.2');
    assert.equal(parsePythonVersion('3.13.0rc1\n'), '3.13.0');
    assert.equal(parsePythonVersion('Traceback'), undefined);
  });

  it('supports 3.10 and newer', () => {
    for (const v of ['3.10.0', '3.11.2', '3.14.1', '4.0.0']) assert.ok(isSupportedPython(v), v);
    for (const v of ['3.9.18', '2.7.18', undefined, 'x']) assert.ok(!isSupportedPython(v), String(v));
  });

  it("asks the Python extension's interpreter first, then python3 and python on PATH, once each", () => {
    const env = posix(['/usr/bin/python3', '/usr/bin/python']);
    assert.deepEqual(pythonCandidates('/venv/bin/python', env), [
      { command: '/venv/bin/python', origin: 'python-extension' },
      { command: '/usr/bin/python3', origin: 'path' },
      { command: '/usr/bin/python', origin: 'path' },
    ]);
    assert.deepEqual(pythonCandidates('/usr/bin/python3', env).length, 2);
  });
});

describe('serverProcess', () => {
  it('runs in the neutral directory, whatever the command', () => {
    const proc = serverProcess({ command: '/py', args: ['-I', BUNDLED], source: 'bundled' }, '/tmp/lloom-server-x', {
      A: '1',
    });
    assert.deepEqual(proc, { command: '/py', args: ['-I', BUNDLED], options: { cwd: '/tmp/lloom-server-x', env: { A: '1' } } });
  });
});

describe('configuredCommand', () => {
  it('treats empty values as "use the default"', () => {
    for (const v of [undefined, null, '', []]) assert.equal(configuredCommand(v, '/h'), undefined);
  });

  it('accepts a single string as the program', () => {
    assert.deepEqual(configuredCommand('/opt/lloom-lsp', '/h'), ['/opt/lloom-lsp']);
  });

  it('refuses non-strings and an empty program', () => {
    assert.throws(() => configuredCommand([1, 2], '/h'), ServerCommandError);
    assert.throws(() => configuredCommand({ a: 1 }, '/h'), ServerCommandError);
    assert.throws(() => configuredCommand(['  ', '-m'], '/h'), /program\) is empty/);
  });
});

describe('findOnPath', () => {
  it('searches PATH in order and skips empty entries', () => {
    const env = posix(['/b/lloom-lsp', '/c/lloom-lsp'], ':/a:/b:/c');
    assert.equal(findOnPath('lloom-lsp', env), '/b/lloom-lsp');
  });

  it('skips relative entries, which would be looked up from the working directory', () => {
    assert.equal(findOnPath('lloom-lsp', posix(['bin/lloom-lsp', 'lloom-lsp'], '.:bin:')), undefined);
  });

  it('checks a name with a slash as it is', () => {
    assert.equal(findOnPath('./lloom-lsp', posix(['./lloom-lsp'])), './lloom-lsp');
    assert.equal(findOnPath('/nope/lloom-lsp', posix([])), undefined);
  });

  it('tries PATHEXT extensions on Windows', () => {
    const env: Environment = {
      platform: 'win32',
      env: { Path: 'C:\\a;C:\\Scripts', PATHEXT: '.COM;.EXE' },
      homedir: 'C:\\Users\\u',
      isExecutable: (f) => f === 'C:\\Scripts\\lloom-lsp.EXE',
    };
    assert.equal(findOnPath('lloom-lsp', env), 'C:\\Scripts\\lloom-lsp.EXE');
  });
});

describe('describeCommand', () => {
  it('quotes only what needs quoting', () => {
    assert.equal(
      describeCommand({ command: '/a b/python', args: ['-m', 'lloom_lsp'], source: 'setting' }),
      '"/a b/python" -m lloom_lsp',
    );
  });
});
