/**
 * "LLooM: Show Context": what the next weave at the cursor would send (memory, author's
 * note, window, token count, and the prompt exactly), from the server's `lloom.showContext`,
 * in a read-only document beside the editor.  The documents come from a content provider
 * (so VS Code opens them read-only); running the command again refreshes one.  The answer
 * and the document's URI are made in `core/contextDocument`.
 */
import * as vscode from 'vscode';
import { ExecuteCommandRequest } from 'vscode-languageclient/node';

import {
  CONTEXT_SCHEME,
  SHOW_CONTEXT,
  contextArguments,
  contextUri,
  parseContextResult,
  placeholderText,
  storyUri,
} from './core/contextDocument';
import { matchesSelector } from './core/languages';
import { plainText } from './core/notices';
import type { LLooMClient } from './client';
import { languages } from './settings';

export class ContextView implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  /** The last text shown, by the context document's URI. */
  private readonly texts = new Map<string, string>();

  constructor(
    private readonly server: LLooMClient,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  register(): vscode.Disposable[] {
    return [
      vscode.workspace.registerTextDocumentContentProvider(CONTEXT_SCHEME, this),
      vscode.commands.registerCommand('lloom.showContextDocument', () => this.show()),
      vscode.workspace.onDidCloseTextDocument((doc) => this.texts.delete(doc.uri.toString())),
    ];
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? placeholderText(storyUri(uri) ?? uri.toString());
  }

  /** Ask the server for the context at the cursor and show it beside the editor. */
  async show(editor = this.storyEditor()): Promise<void> {
    if (!editor) {
      void vscode.window.showInformationMessage('LLooM: open a text editor to show the context a weave there sends.');
      return;
    }
    const langs = languages();
    if (!matchesSelector(editor.document, langs)) {
      void vscode.window.showWarningMessage(
        `LLooM weaves in ${langs.join(', ')} files; this one is "${editor.document.languageId}", so it has no context to show.`,
      );
      return;
    }
    const client = await this.server.ensureStarted();
    if (!client) return;
    const uri = client.code2ProtocolConverter.asUri(editor.document.uri);
    let text: string;
    try {
      // In the status bar: counting the tokens may wait for a backend that is starting.
      const raw: unknown = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: 'LLooM: reading the context…' },
        () =>
          client.sendRequest(ExecuteCommandRequest.type, {
            command: SHOW_CONTEXT,
            arguments: contextArguments(uri, editor.selection.active),
          }),
      );
      text = parseContextResult(raw).text;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error(`${SHOW_CONTEXT} failed: ${message}`);
      void vscode.window.showErrorMessage(plainText(`LLooM could not show the context: ${message}`));
      return;
    }
    const target = vscode.Uri.from(contextUri(uri));
    this.texts.set(target.toString(), text);
    this.changed.fire(target);
    const doc = await vscode.workspace.openTextDocument(target);
    // Where it shows already: run from the context document, Beside would open a second one.
    const shown = vscode.window.visibleTextEditors.find((e) => e.document === doc)?.viewColumn;
    await vscode.window.showTextDocument(doc, { viewColumn: shown ?? vscode.ViewColumn.Beside, preserveFocus: true, preview: false });
  }

  /** The active editor; when that is a context document, the editor of its story. */
  private storyEditor(): vscode.TextEditor | undefined {
    const active = vscode.window.activeTextEditor;
    const story = active && storyUri(active.document.uri);
    if (story === undefined) return active;
    return vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === vscode.Uri.parse(story).toString());
  }

  dispose(): void {
    this.changed.dispose();
  }
}
