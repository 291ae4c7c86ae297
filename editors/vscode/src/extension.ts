/**
 * Entry point: wires the log, status bar, language client, shading and commands together.
 */
import * as vscode from 'vscode';

import { BeamCycling } from './beamCycling';
import { LLooMClient } from './client';
import { ContextView } from './contextView';
import { matchesSelector } from './core/languages';
import { inlineAutomatic, languages, needsRestart, toggleInlineAutomatic } from './settings';
import { ProbabilityShading } from './shading';
import { MENU_COMMAND, showStatusMenu } from './statusBar';
import { ThreadsView, WeaveWatchingStatusBar } from './threadsPanel';
import { TreeFiles } from './treeFiles';
import { Weaver } from './weaveCommands';

/** True in editors whose document LLooM weaves in; the inline keybindings need it. */
const ACTIVE_CONTEXT = 'lloom.active';

let server: LLooMClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('LLooM', { log: true });
  const status = new WeaveWatchingStatusBar();
  server = new LLooMClient(log, status);
  const lloom = server;
  const weaver = new Weaver(lloom, log);
  const threads = new ThreadsView(lloom, context.extensionUri, log, status.onDidWeave);
  const shading = new ProbabilityShading(lloom, log);
  const treeFiles = new TreeFiles(lloom, threads, log);
  const beamCycling = new BeamCycling(lloom);
  const contextView = new ContextView(lloom, log);

  const updateActive = () => {
    const doc = vscode.window.activeTextEditor?.document;
    void vscode.commands.executeCommand('setContext', ACTIVE_CONTEXT, doc !== undefined && matchesSelector(doc, languages()));
  };
  const toggleInline = async () => {
    const on = await toggleInlineAutomatic(vscode.window.activeTextEditor?.document.uri);
    void vscode.window.setStatusBarMessage(`LLooM: automatic inline suggestions ${on ? 'on' : 'off'}`, 3000);
  };

  context.subscriptions.push(
    log,
    status,
    weaver,
    ...weaver.register(),
    threads,
    ...threads.register(),
    ...treeFiles.register(),
    shading,
    ...shading.register(),
    beamCycling,
    ...beamCycling.register(),
    contextView,
    ...contextView.register(),
    vscode.commands.registerCommand('lloom.restart', () => lloom.restart()),
    vscode.commands.registerCommand('lloom.showLog', () => log.show()),
    vscode.commands.registerCommand('lloom.toggleInlineAutomatic', toggleInline),
    vscode.commands.registerCommand(MENU_COMMAND, () =>
      showStatusMenu(
        { weaving: status.isWeaving, inlineAutomatic: inlineAutomatic(vscode.window.activeTextEditor?.document.uri) },
        {
          cancel: () => weaver.cancelAll(),
          toggleInline,
          weave: () => weaver.weaveAtCursor(),
          showThreads: () => threads.show(),
          showLog: () => log.show(),
          restart: () => lloom.restart(),
        },
      ),
    ),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('lloom.languages')) updateActive();
      if (event.affectsConfiguration('lloom')) status.settingsChanged();
      lloom.settingsChanged(needsRestart(event));
    }),
    vscode.window.onDidChangeActiveTextEditor(updateActive),
    // Trusted now: the Python extension's interpreter may be used, so start again with it.
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      if (lloom.isActive) void lloom.restart();
    }),
    // A language mode change (plaintext to markdown) reopens the document.
    vscode.workspace.onDidOpenTextDocument(() => {
      updateActive();
      if (!lloom.isActive) lloom.startIfWanted();
    }),
  );
  updateActive();
  lloom.startIfWanted();
}

export async function deactivate(): Promise<void> {
  await server?.shutdown();
  server = undefined;
}
