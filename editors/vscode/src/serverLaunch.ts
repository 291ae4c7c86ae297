/**
 * How the language server process is started: the command (see `resolveServerCommand`
 * for the order of preference), the Pythons found on this machine, and the process's
 * working directory, which is never a workspace folder.
 *
 * Workspace trust: in an untrusted workspace nothing the workspace chose picks the program.
 * `lloom.server.command` is read from user settings only (it is also machine-scoped and
 * listed in `capabilities.untrustedWorkspaces.restrictedConfigurations`), and the Python
 * extension's interpreter, which a workspace selects, is not asked.
 */
import { accessSync, constants, existsSync, mkdtempSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as vscode from 'vscode';
import { type Executable } from 'vscode-languageclient/node';

import {
  type Environment,
  type FoundPython,
  type ServerCommand,
  describeCommand,
  configuredCommand,
  pythonCandidates,
  resolveServerCommand,
  serverProcess,
} from './core/serverCommand';
import { probePython, pythonInterpreter } from './pythonInterpreter';
import { SECTION } from './settings';

function isExecutable(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    if (process.platform !== 'win32') accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function machineEnvironment(): Environment {
  return { platform: process.platform, env: process.env, homedir: os.homedir(), isExecutable };
}

/** The extension's root: dist/extension.js is one level down. */
const EXTENSION_ROOT = path.resolve(__dirname, '..');

/** `bundled/tool/lsp_server.py`, when this build carries the server (scripts/ci.sh makes it). */
function bundledServer(): string | undefined {
  const script = path.join(EXTENSION_ROOT, 'bundled', 'tool', 'lsp_server.py');
  const pkg = path.join(EXTENSION_ROOT, 'bundled', 'libs', 'lloom_lsp', '__init__.py');
  return existsSync(script) && existsSync(pkg) ? script : undefined;
}

let neutral: string | undefined;

/**
 * An empty directory of this extension host's own (mode 0700, under the OS temp dir), made
 * once: the server's working directory.  Not the workspace, which a repository fills;
 * not the extension's folder, which Windows could then not delete on update; not the
 * shared temp dir itself, where another user may put a `lloom_lsp/`.
 */
function neutralDirectory(): string {
  neutral ??= mkdtempSync(path.join(os.tmpdir(), 'lloom-server-'));
  return neutral;
}

/** `lloom.server.command` as the user set it; in an untrusted workspace, user settings only. */
function serverCommandSetting(): unknown {
  const config = vscode.workspace.getConfiguration(SECTION);
  return vscode.workspace.isTrusted ? config.get('server.command') : config.inspect('server.command')?.globalValue;
}

export interface Launch {
  executable: Executable;
  command: ServerCommand;
  description: string;
}

export async function resolveLaunch(log: vscode.LogOutputChannel): Promise<Launch> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  const environment = machineEnvironment();
  const configured = serverCommandSetting();
  const cwd = neutralDirectory();
  let pythons: FoundPython[] | undefined;
  if (!configuredCommand(configured, environment.homedir)) {
    // Only now ask the Python extension: activating it is slow, and a setting needs none.
    const fromExtension = vscode.workspace.isTrusted ? await pythonInterpreter(folder?.uri, log) : undefined;
    pythons = await Promise.all(pythonCandidates(fromExtension, environment).map((c) => probePython(c, cwd)));
    for (const p of pythons) log.info(`Python ${p.version ?? `(${p.problem})`}: ${p.command} (${p.origin})`);
  }
  const command = resolveServerCommand(
    { configured, bundledServer: bundledServer(), ...(pythons ? { pythons } : {}) },
    environment,
  );
  const description = describeCommand(command);
  log.info(`Starting the server (${command.source}) in ${cwd}: ${description}`);
  const proc = serverProcess(command, cwd, process.env);
  return {
    command,
    description,
    // No `transport`: that still means stdio, but TransportKind.stdio would also append
    // `--stdio` to the command line, which lloom-lsp (and `python -m`) do not take.
    executable: { command: proc.command, args: proc.args, options: proc.options },
  };
}
