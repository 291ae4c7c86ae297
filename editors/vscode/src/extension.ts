/**
 * Entry point: wires the log, status bar, language client and commands together.
 */
import * as vscode from 'vscode';

import { LLooMClient } from './client';
import { needsRestart } from './settings';
import { StatusBar } from './statusBar';
import { Weaver } from './weaveCommands';

let server: LLooMClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('LLooM', { log: true });
  const status = new StatusBar();
  server = new LLooMClient(log, status);
  const lloom = server;
  const weaver = new Weaver(lloom, status, log);

  context.subscriptions.push(
    log,
    status,
    weaver,
    ...weaver.register(),
    vscode.commands.registerCommand('lloom.restart', () => lloom.restart()),
    vscode.commands.registerCommand('lloom.showLog', () => log.show()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!needsRestart(event)) return;
      if (lloom.isActive) void lloom.restart();
      else lloom.startIfWanted();
    }),
    // The server starts with the first document it weaves in, not with the window.
    vscode.workspace.onDidOpenTextDocument(() => {
      if (!lloom.isActive) lloom.startIfWanted();
    }),
  );
  lloom.startIfWanted();
}

export async function deactivate(): Promise<void> {
  await server?.shutdown();
  server = undefined;
}
