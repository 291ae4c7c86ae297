/**
 * How the language server process is started: command resolution against this machine.
 */
import { accessSync, constants, statSync } from 'node:fs';
import * as os from 'node:os';

import * as vscode from 'vscode';
import { type Executable } from 'vscode-languageclient/node';

import {
  type Environment,
  type ServerCommand,
  describeCommand,
  resolveServerCommand,
} from './core/serverCommand';
import { pythonInterpreter } from './pythonInterpreter';
import { serverCommandSetting } from './settings';

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

export interface Launch {
  executable: Executable;
  command: ServerCommand;
  description: string;
}

export async function resolveLaunch(log: vscode.LogOutputChannel): Promise<Launch> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  const environment = machineEnvironment();
  const configured = serverCommandSetting();
  let command = resolveServerCommand({ configured }, environment);
  if (command.source === 'python') {
    // Only now ask the Python extension: activating it is slow and usually not needed.
    const interpreter = await pythonInterpreter(folder?.uri, log);
    command = resolveServerCommand({ configured, pythonInterpreter: interpreter }, environment);
  }
  const description = describeCommand(command);
  log.info(`Starting the server (${command.source}): ${description}`);
  return {
    command,
    description,
    executable: {
      command: command.command,
      args: command.args,
      // No `transport`: that still means stdio, but TransportKind.stdio would also append
      // `--stdio` to the command line, which lloom-lsp (and `python -m`) do not take.
      options: { cwd: folder?.uri.scheme === 'file' ? folder.uri.fsPath : undefined, env: process.env },
    },
  };
}
