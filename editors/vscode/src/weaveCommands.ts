/**
 * "Weave at Cursor" and "Weave Again": ask the server for beams, let the user pick one
 * in a QuickPick, and insert it.
 */
import { randomUUID } from 'node:crypto';

import * as vscode from 'vscode';
import {
  ExecuteCommandRequest,
  type LanguageClient,
  LSPErrorCodes,
  ResponseError,
  WorkDoneProgress,
} from 'vscode-languageclient/node';

import { type BeamItem, toBeamItems } from './core/beamItems';
import { matchesSelector } from './core/languages';
import {
  ACCEPT,
  CANCEL,
  WEAVE,
  type WeaveBeam,
  type WeaveResult,
  acceptArguments,
  endOfInsertion,
  parseAcceptResult,
  parseWeaveResult,
  weaveArguments,
} from './core/protocol';
import type { LLooMClient } from './client';
import { languages } from './settings';
import type { StatusBar } from './statusBar';

const WEAVE_AGAIN = 'again';

/** Where a weave ran, so the pick can be inserted there. */
interface Site {
  document: vscode.TextDocument;
  position: vscode.Position;
  uri: string;
}

function isCancellation(err: unknown, token: vscode.CancellationToken): boolean {
  return (
    token.isCancellationRequested ||
    err instanceof vscode.CancellationError ||
    (err instanceof ResponseError && err.code === LSPErrorCodes.RequestCancelled)
  );
}

export class Weaver implements vscode.Disposable {
  private inFlight: vscode.CancellationTokenSource | undefined;
  private lastDocument: vscode.TextDocument | undefined;

  constructor(
    private readonly server: LLooMClient,
    private readonly status: StatusBar,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  register(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand('lloom.weaveAtCursor', () => this.weaveAtCursor()),
      vscode.commands.registerCommand('lloom.weaveAgain', () => this.weaveAgain()),
    ];
  }

  async weaveAtCursor(editor = vscode.window.activeTextEditor): Promise<void> {
    if (!editor) {
      void vscode.window.showInformationMessage('LLooM: open a text editor to weave in.');
      return;
    }
    this.lastDocument = editor.document;
    const langs = languages();
    if (!matchesSelector(editor.document, langs)) {
      const choice = await vscode.window.showWarningMessage(
        `LLooM weaves in ${langs.join(', ')} files; this one is "${editor.document.languageId}". ` +
          'Add it to the lloom.languages setting to weave here.',
        'Open Settings',
      );
      if (choice) await vscode.commands.executeCommand('workbench.action.openSettings', 'lloom.languages');
      return;
    }
    const client = await this.server.ensureStarted();
    if (!client) return;
    const site: Site = {
      document: editor.document,
      position: editor.selection.active,
      uri: client.code2ProtocolConverter.asUri(editor.document.uri),
    };
    const result = await this.weave(client, site);
    if (!result) return;
    if (result.beams.length === 0) {
      void vscode.window.showInformationMessage(`LLooM found no continuation here (${result.speedLine}).`);
      return;
    }
    const picked = await pickBeam(result);
    if (picked === WEAVE_AGAIN) {
      await this.weaveAgain();
    } else if (picked) {
      await this.accept(client, site, result.version, picked);
    }
  }

  /** Weave again at the cursor of the active editor, or of the last document woven in. */
  async weaveAgain(): Promise<void> {
    const editor =
      vscode.window.activeTextEditor ??
      vscode.window.visibleTextEditors.find((e) => e.document === this.lastDocument);
    await this.weaveAtCursor(editor);
  }

  private async weave(client: LanguageClient, site: Site): Promise<WeaveResult | undefined> {
    this.inFlight?.cancel();
    const source = new vscode.CancellationTokenSource();
    this.inFlight = source;
    this.status.setState('weaving');
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'LLooM', cancellable: true },
        async (progress, userCancel) => {
          progress.report({ message: 'weaving…' });
          const workDoneToken = randomUUID();
          const subscriptions = [
            userCancel.onCancellationRequested(() => source.cancel()),
            source.token.onCancellationRequested(() => {
              client
                .sendRequest(ExecuteCommandRequest.type, { command: CANCEL, arguments: [site.uri] })
                .catch((err: unknown) => this.log.warn(`lloom.cancel: ${String(err)}`));
            }),
            client.onProgress(WorkDoneProgress.type, workDoneToken, (value) => {
              if (value.kind !== 'end' && value.message) progress.report({ message: value.message });
            }),
          ];
          try {
            const raw: unknown = await client.sendRequest(
              ExecuteCommandRequest.type,
              { command: WEAVE, arguments: weaveArguments(site.uri, site.position), workDoneToken },
              source.token,
            );
            const result = parseWeaveResult(raw);
            if (result.error) throw new Error(`the server could not weave: ${result.error}`);
            return result;
          } finally {
            for (const s of subscriptions) s.dispose();
          }
        },
      );
      this.status.setSpeedLine(result.speedLine);
      this.status.setState('ready');
      return result;
    } catch (err) {
      if (isCancellation(err, source.token)) {
        // A newer weave that cancelled this one owns the status bar now.
        if (this.inFlight === source) this.status.setState('ready');
        return undefined;
      }
      const message = err instanceof Error ? err.message : String(err);
      this.log.error(`lloom.weave failed: ${message}`);
      this.status.setState('error', message);
      const choice = await vscode.window.showErrorMessage(`LLooM: ${message}`, 'Show Log');
      if (choice) this.log.show();
      return undefined;
    } finally {
      if (this.inFlight === source) this.inFlight = undefined;
      source.dispose();
    }
  }

  /**
   * Insert the pick.  While the document is unchanged and on screen, a plain edit does it
   * (one undo step, no round trip).  Otherwise the server applies it with `lloom.accept`,
   * which refuses when the document moved on since the weave.
   */
  private async accept(client: LanguageClient, site: Site, version: number, beam: WeaveBeam): Promise<void> {
    const { document, position } = site;
    const editor = vscode.window.visibleTextEditors.find((e) => e.document === document);
    if (editor && !document.isClosed && document.version === version) {
      const done = await editor.edit((edit) => edit.insert(position, beam.insertText));
      if (done) {
        const end = endOfInsertion(position, beam.insertText);
        const cursor = new vscode.Position(end.line, end.character);
        editor.selection = new vscode.Selection(cursor, cursor);
        editor.revealRange(new vscode.Range(cursor, cursor));
        return;
      }
    }
    try {
      const raw: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
        command: ACCEPT,
        arguments: acceptArguments(site.uri, version, position, beam.insertText),
      });
      const result = parseAcceptResult(raw);
      if (!result.applied) {
        const choice = await vscode.window.showWarningMessage(
          `LLooM did not insert the suggestion: ${result.reason ?? 'the document changed'}.`,
          'Weave Again',
        );
        if (choice) await this.weaveAgain();
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error(`lloom.accept failed: ${message}`);
      void vscode.window.showErrorMessage(`LLooM: ${message}`);
    }
  }

  dispose(): void {
    this.inFlight?.cancel();
  }
}

/** The beams as a QuickPick; resolves to the pick, WEAVE_AGAIN, or undefined on Escape. */
function pickBeam(result: WeaveResult): Promise<WeaveBeam | typeof WEAVE_AGAIN | undefined> {
  const quickPick = vscode.window.createQuickPick<BeamItem>();
  quickPick.title = `LLooM: ${result.speedLine}`;
  quickPick.placeholder = 'Pick a continuation to insert at the cursor (Esc to leave the text as it is)';
  quickPick.items = toBeamItems(result.beams);
  quickPick.matchOnDetail = false;
  const again: vscode.QuickInputButton = {
    iconPath: new vscode.ThemeIcon('refresh'),
    tooltip: 'Weave Again',
  };
  quickPick.buttons = [again];
  return new Promise((resolve) => {
    let answer: WeaveBeam | typeof WEAVE_AGAIN | undefined;
    quickPick.onDidTriggerButton(() => {
      answer = WEAVE_AGAIN;
      quickPick.hide();
    });
    quickPick.onDidAccept(() => {
      answer = quickPick.selectedItems[0]?.beam;
      quickPick.hide();
    });
    quickPick.onDidHide(() => {
      quickPick.dispose();
      resolve(answer);
    });
    quickPick.show();
  });
}
