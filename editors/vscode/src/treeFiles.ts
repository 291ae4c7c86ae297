/**
 * "LLooM: Save Thread Tree" and "LLooM: Load Thread Tree": the server keeps a document's
 * tree beside it (`<file>.lloom.json`, with `lloom.saveTree` and `lloom.loadTree`); a
 * loaded tree is shown in the Threads view.  The answers are read in `core/treeFile`; the
 * server's errors are shown word for word.
 */
import * as vscode from 'vscode';
import { ExecuteCommandRequest, type LanguageClient } from 'vscode-languageclient/node';

import { plainText } from './core/notices';
import { LOAD_OPTIONS, LOAD_TREE, SAVE_TREE, parseLoadResult, parseSaveResult } from './core/treeFile';
import type { LLooMClient } from './client';
import type { ThreadsView } from './threadsPanel';

export class TreeFiles {
  constructor(
    private readonly server: LLooMClient,
    private readonly threads: ThreadsView,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  register(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand('lloom.saveThreadTree', () => this.save()),
      vscode.commands.registerCommand('lloom.loadThreadTree', () => this.load()),
    ];
  }

  /** Save the tree of the weave at the cursor (woven first, unless the cache has it). */
  async save(editor = vscode.window.activeTextEditor): Promise<void> {
    const target = await this.target(editor, 'save its thread tree');
    if (!target) return;
    const { client, uri } = target;
    const position = target.editor.selection.active;
    const raw = await this.execute(client, SAVE_TREE, [uri, { line: position.line, character: position.character }], 'Saving the thread tree…');
    if (raw === undefined) return;
    const result = parseSaveResult(raw);
    if ('error' in result) {
      this.fail(result.error);
      return;
    }
    void vscode.window.showInformationMessage(`LLooM saved the thread tree (${result.nodes} nodes) to ${result.path}`);
  }

  /** Load the tree saved beside the active document and show it in the Threads view. */
  async load(editor = vscode.window.activeTextEditor): Promise<void> {
    const target = await this.target(editor, 'load its thread tree');
    if (!target) return;
    const raw = await this.execute(target.client, LOAD_TREE, [target.uri, LOAD_OPTIONS], 'Loading the thread tree…');
    if (raw === undefined) return;
    const result = parseLoadResult(raw);
    if ('error' in result) {
      this.fail(result.error);
      return;
    }
    this.threads.showLoaded(target.editor.document, target.uri, result);
  }

  private async target(
    editor: vscode.TextEditor | undefined,
    what: string,
  ): Promise<{ editor: vscode.TextEditor; client: LanguageClient; uri: string } | undefined> {
    if (!editor) {
      void vscode.window.showInformationMessage(`LLooM: open a text editor to ${what}.`);
      return undefined;
    }
    const client = await this.server.ensureStarted();
    if (!client) return undefined;
    return { editor, client, uri: client.code2ProtocolConverter.asUri(editor.document.uri) };
  }

  private async execute(client: LanguageClient, command: string, args: unknown[], title: string): Promise<unknown> {
    try {
      return await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `LLooM: ${title}` }, () =>
        client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }),
      );
    } catch (err) {
      this.fail(`${command}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  private fail(error: string): void {
    this.log.error(error);
    void vscode.window.showErrorMessage(plainText(error));
  }
}
