/** Which program starts the server. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  type Environment,
  ServerCommandError,
  configuredCommand,
  describeCommand,
  findOnPath,
  resolveServerCommand,
} from '../src/core/serverCommand';

function posix(executables: string[], PATH = '/usr/local/bin:/usr/bin'): Environment {
  return { platform: 'linux', env: { PATH }, homedir: '/home/u', isExecutable: (f) => executables.includes(f) };
}

describe('resolveServerCommand', () => {
  it('prefers the setting, split into program and arguments', () => {
    const cmd = resolveServerCommand(
      { configured: ['~/venv/bin/python', '-m', 'lloom_lsp'], pythonInterpreter: '/py' },
      posix(['/usr/bin/lloom-lsp']),
    );
    assert.deepEqual(cmd, { command: '/home/u/venv/bin/python', args: ['-m', 'lloom_lsp'], source: 'setting' });
  });

  it('then lloom-lsp on PATH', () => {
    const cmd = resolveServerCommand({ configured: [], pythonInterpreter: '/py' }, posix(['/usr/bin/lloom-lsp']));
    assert.deepEqual(cmd, { command: '/usr/bin/lloom-lsp', args: [], source: 'path' });
  });

  it("then the Python extension's interpreter", () => {
    const cmd = resolveServerCommand({ configured: [], pythonInterpreter: '/venv/bin/python' }, posix([]));
    assert.deepEqual(cmd, { command: '/venv/bin/python', args: ['-m', 'lloom_lsp'], source: 'python-extension' });
  });

  it('then python3 (python on Windows)', () => {
    assert.deepEqual(resolveServerCommand({ configured: undefined }, posix([])), {
      command: 'python3',
      args: ['-m', 'lloom_lsp'],
      source: 'python',
    });
    const win: Environment = { platform: 'win32', env: { Path: 'C:\\x' }, homedir: 'C:\\u', isExecutable: () => false };
    assert.equal(resolveServerCommand({ configured: [] }, win).command, 'python');
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
