/**
 * The Python extension's interpreter, when ms-python.python is installed.
 *
 * The extension is optional: every failure here means "no interpreter", never an error.
 */
import * as vscode from 'vscode';

const PYTHON_EXTENSION = 'ms-python.python';
const ACTIVATION_TIMEOUT_MS = 10_000;

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
