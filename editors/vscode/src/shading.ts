/**
 * Probability shading of woven text: the server's `lloom/spans` drawn as backgrounds, one
 * decoration type per level, coloured by theme colours (`lloom.shading.*`), in every
 * visible editor of the document; and "LLooM: Toggle Probability Shading".
 *
 * The server sends the complete list of a document's spans for one version after each
 * change that moves them; a list for another version than the editor's is dropped, and
 * the spans are asked for with `lloom.spans` when an editor shows a document whose list
 * is older than its text.  The logic lives in `core/shading`.
 */
import * as vscode from 'vscode';
import { ExecuteCommandRequest, type LanguageClient } from 'vscode-languageclient/node';

import {
  type DocumentSpans,
  LEVELS,
  type LspRange,
  SPANS,
  SPANS_NOTIFICATION,
  type ShadingLevel,
  isCurrent,
  levelColor,
  parseSpans,
  rangesByLevel,
} from './core/shading';
import type { LLooMClient } from './client';
import { toggleWovenShading, wovenShading } from './settings';

function toRange(range: LspRange): vscode.Range {
  return new vscode.Range(range.start.line, range.start.character, range.end.line, range.end.character);
}

export class ProbabilityShading implements vscode.Disposable {
  private readonly types: Record<ShadingLevel, vscode.TextEditorDecorationType>;
  /** The last current list of each document, by its URI (VS Code's string form). */
  private readonly shown = new Map<string, DocumentSpans>();
  /** Documents whose spans are being asked for; one request each at a time. */
  private readonly asking = new Set<string>();

  constructor(
    private readonly server: LLooMClient,
    private readonly log: vscode.LogOutputChannel,
  ) {
    const types: Partial<Record<ShadingLevel, vscode.TextEditorDecorationType>> = {};
    for (const level of LEVELS) {
      types[level] = vscode.window.createTextEditorDecorationType({
        backgroundColor: new vscode.ThemeColor(levelColor(level)),
        // Typing at a token's edge is the user's text, not the model's: no shading grows.
        rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
      });
    }
    this.types = types as Record<ShadingLevel, vscode.TextEditorDecorationType>;
    server.onNotification(SPANS_NOTIFICATION, (params, client) => this.onSpans(params, client));
  }

  register(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand('lloom.toggleShading', () => this.toggle()),
      vscode.window.onDidChangeVisibleTextEditors((editors) => {
        for (const editor of editors) this.reapply(editor);
      }),
      vscode.workspace.onDidCloseTextDocument((document) => {
        this.shown.delete(document.uri.toString());
      }),
      // The server clears the spans when shading turns off; clearing here too is at once.
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (!event.affectsConfiguration('lloom.woven.shading')) return;
        for (const key of [...this.shown.keys()]) {
          const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === key);
          if (!document || !wovenShading(document.uri)) this.clear(key);
        }
      }),
      // Spans live in the server: a new one knows of none until text is woven again.
      this.server.onDidStop(() => {
        for (const key of [...this.shown.keys()]) this.clear(key);
      }),
    ];
  }

  private async toggle(): Promise<void> {
    const on = await toggleWovenShading(vscode.window.activeTextEditor?.document.uri);
    void vscode.window.setStatusBarMessage(`LLooM: probability shading ${on ? 'on' : 'off'}`, 3000);
  }

  private onSpans(params: unknown, client: LanguageClient): void {
    const spans = parseSpans(params);
    if (!spans) {
      this.log.warn(`${SPANS_NOTIFICATION}: not a list of spans: ${JSON.stringify(params)}`);
      return;
    }
    const document = this.documentOf(spans.uri, client);
    if (!document) return;
    if (isCurrent(spans.version, document.version)) this.apply(document, spans);
    // Older than the text: the change that moved the spans sends a newer list, but a
    // change that did not move them sends none, so ask for the spans as they are now.
    else if (spans.version !== null && spans.version < document.version) void this.ask(document, client);
  }

  private documentOf(uri: string, client: LanguageClient): vscode.TextDocument | undefined {
    return vscode.workspace.textDocuments.find((d) => client.code2ProtocolConverter.asUri(d.uri) === uri);
  }

  /** Draw `spans` in every visible editor of `document`, and keep them for editors shown later. */
  private apply(document: vscode.TextDocument, spans: DocumentSpans): void {
    const key = document.uri.toString();
    if (spans.spans.length === 0) this.shown.delete(key);
    else this.shown.set(key, { ...spans, version: document.version });
    const grouped = rangesByLevel(spans.spans);
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document !== document) continue;
      for (const level of LEVELS) editor.setDecorations(this.types[level], grouped[level].map(toRange));
    }
  }

  private clear(key: string): void {
    this.shown.delete(key);
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document.uri.toString() !== key) continue;
      for (const level of LEVELS) editor.setDecorations(this.types[level], []);
    }
  }

  /** A newly visible editor: its document's spans, asked for anew when its text moved on. */
  private reapply(editor: vscode.TextEditor): void {
    const spans = this.shown.get(editor.document.uri.toString());
    if (!spans) return;
    if (spans.version === editor.document.version) {
      const grouped = rangesByLevel(spans.spans);
      for (const level of LEVELS) editor.setDecorations(this.types[level], grouped[level].map(toRange));
      return;
    }
    const client = this.server.running;
    if (client) void this.ask(editor.document, client);
  }

  private async ask(document: vscode.TextDocument, client: LanguageClient): Promise<void> {
    const key = document.uri.toString();
    if (this.asking.has(key) || !wovenShading(document.uri)) return;
    this.asking.add(key);
    try {
      const raw: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
        command: SPANS,
        arguments: [client.code2ProtocolConverter.asUri(document.uri)],
      });
      const spans = parseSpans(raw);
      // Changed again meanwhile: the next lloom/spans, or the next ask, brings them.
      if (spans && !document.isClosed && isCurrent(spans.version, document.version) && wovenShading(document.uri)) {
        this.apply(document, spans);
      }
    } catch (err) {
      this.log.warn(`${SPANS}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.asking.delete(key);
    }
  }

  dispose(): void {
    for (const level of LEVELS) this.types[level].dispose();
    this.shown.clear();
  }
}
