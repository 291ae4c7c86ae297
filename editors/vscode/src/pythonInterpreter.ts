/**
 * Finding a Python for the bundled server: the Python extension's interpreter, when
 * ms-python.python is installed, and each candidate's version, asked by running it.
 *
 * The extension is optional: every failure here means "no interpreter", never an error.
 */
import { execFile } from 'node:child_process';

import * as vscode from 'vscode';

import { type FoundPython, parsePythonVersion } from './core/serverCommand';

const PYTHON_EXTENSION = 'ms-python.python';
const ACTIVATION_TIMEOUT_MS = 10_000;
const VERSION_TIMEOUT_MS = 10_000;

/** The subset of the Python extension's API used here (`environments` since 2023.x). */
interface PythonApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { id: string; path: string } | undefined;
    resolveEnvironment?(
      env: { id: string; path: string },
    ): Promise<{ executable?: { uri?: vscode.Uri } } | undefined>;
  };
}

function timeout(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
}

async function lookup(resource: vscode.Uri | undefined): Promise<string | undefined> {
  const extension = vscode.extensions.getExtension<PythonApi>(PYTHON_EXTENSION);
  if (!extension) return undefined;
  const api = extension.isActive ? extension.exports : await extension.activate();
  const environments = api?.environments;
  const active = environments?.getActiveEnvironmentPath(resource);
  if (!environments || !active) return undefined;
  // The active path may name an environment folder (conda); resolving gives the binary.
  const resolved = await environments.resolveEnvironment?.(active);
  return resolved?.executable?.uri?.fsPath ?? active.path;
}

export async function pythonInterpreter(
  resource: vscode.Uri | undefined,
  log: vscode.LogOutputChannel,
): Promise<string | undefined> {
  try {
    return await Promise.race([lookup(resource), timeout(ACTIVATION_TIMEOUT_MS)]);
  } catch (err) {
    log.warn(`The Python extension did not name an interpreter: ${String(err)}`);
    return undefined;
  }
}

/**
 * Runs `command -I -c 'print(version)'` in `cwd` (a neutral directory: `-I` already keeps
 * the directory off `sys.path`, and the cwd keeps relative lookups off the workspace).
 */
export function probePython(
  candidate: { command: string; origin: FoundPython['origin'] },
  cwd: string,
): Promise<FoundPython> {
  return new Promise((resolve) => {
    execFile(
      candidate.command,
      ['-I', '-c', 'import sys; print(sys.version.split()[0])'],
      { cwd, timeout: VERSION_TIMEOUT_MS, windowsHide: true },
      (err, stdout) => {
        const version = parsePythonVersion(String(stdout));
        if (version) resolve({ ...candidate, version });
        else resolve({ ...candidate, problem: err ? err.message.split('\n')[0] : 'printed no version' });
      },
    );
  });
}
