/**
 * "Weave at Cursor", "Weave Again" and "Weave Deeper": ask the server for beams, let the
 * user pick one in a QuickPick and insert it, or weave again from there: afresh, deeper,
 * from a beam not inserted yet, or a few tokens on from one (Step N More Tokens).
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

import {
  type BeamItem,
  DEFAULT_STEPS,
  MAX_STEPS,
  type PickAction,
  beamText,
  nextWeaveOptions,
  parseSteps,
  pickTitle,
  stepsProblem,
  toBeamItems,
} from './core/beamItems';
import { matchesSelector } from './core/languages';
import { plainText, weaveFailure } from './core/notices';
import {
  ACCEPT,
  CANCEL,
  WEAVE,
  type WeaveBeam,
  type WeaveOptions,
  type WeaveResult,
  acceptArguments,
  endOfInsertion,
  parseAcceptResult,
  parseWeaveResult,
  weaveArguments,
} from './core/protocol';
import type { LLooMClient } from './client';
import { languages } from './settings';

/** What the QuickPick answered: a beam to insert, another weave, or nothing (Escape). */
type Pick = { accept: WeaveBeam } | { action: PickAction; beam?: WeaveBeam } | undefined;

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
  /** The last number of tokens stepped on, offered again for the rest of the session. */
  private steps = DEFAULT_STEPS;

  constructor(
    private readonly server: LLooMClient,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  register(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand('lloom.weaveAtCursor', () => this.weaveAtCursor()),
      vscode.commands.registerCommand('lloom.weaveAgain', () => this.weaveAgain()),
      vscode.commands.registerCommand('lloom.weaveDeeper', () => this.weaveAgain({ deeper: true })),
      vscode.commands.registerCommand('lloom.cancelWeave', () => this.cancelAll()),
      // The list's buttons from the keyboard, while it is open.
      vscode.commands.registerCommand('lloom.beams.weaveAgain', () => openPick?.('again')),
      vscode.commands.registerCommand('lloom.beams.weaveDeeper', () => openPick?.('deeper')),
      vscode.commands.registerCommand('lloom.beams.weaveFromBeam', () => openPick?.('from')),
      vscode.commands.registerCommand('lloom.beams.stepMore', () => openPick?.('stepMore')),
    ];
  }

  /**
   * Weave at the cursor, show the beams, and insert the pick.  The QuickPick's buttons
   * weave again at the same place (afresh, deeper, or from a beam) and show the new beams.
   */
  async weaveAtCursor(editor = vscode.window.activeTextEditor, options: WeaveOptions = {}): Promise<void> {
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
    for (;;) {
      const result = await this.weave(client, site, options);
      if (!result) return;
      if (result.beams.length === 0) {
        void vscode.window.showInformationMessage(`LLooM found no continuation here (${result.speedLine}).`);
        return;
      }
      const next = await this.pickNext(client, site, result);
      if (!next) return;
      options = next;
    }
  }

  /** The options of the next weave the list asks for; undefined when a beam was inserted or the list left. */
  private async pickNext(client: LanguageClient, site: Site, result: WeaveResult): Promise<WeaveOptions | undefined> {
    for (;;) {
      const picked = await pickBeam(result);
      if (!picked) return undefined;
      if ('accept' in picked) {
        await this.accept(client, site, result.version, picked.accept);
        return undefined;
      }
      if (picked.action !== 'stepMore') return nextWeaveOptions(picked.action, result, picked.beam);
      const steps = picked.beam && (await this.askSteps(picked.beam));
      if (steps) return nextWeaveOptions('stepMore', result, picked.beam, steps);
      // Escape in the box: back to the same beams, nothing woven.
    }
  }

  /** How many tokens to step on from `beam`: 1 to 64, the last answer offered. */
  private async askSteps(beam: WeaveBeam): Promise<number | undefined> {
    const text = await vscode.window.showInputBox({
      title: 'LLooM: Step N More Tokens',
      prompt: `Weave this many more tokens (1 to ${MAX_STEPS}) on from “${beamText(beam)}”`,
      value: String(this.steps),
      valueSelection: [0, String(this.steps).length],
      validateInput: stepsProblem,
    });
    const steps = text === undefined ? undefined : parseSteps(text);
    if (steps !== undefined) this.steps = steps;
    return steps;
  }

  /**
   * Weave again at the cursor of the active editor, or of the last document woven in:
   * afresh, since the cached result would show the same beams.
   */
  async weaveAgain(options: WeaveOptions = { fresh: true }): Promise<void> {
    const editor =
      vscode.window.activeTextEditor ??
      vscode.window.visibleTextEditors.find((e) => e.document === this.lastDocument);
    await this.weaveAtCursor(editor, options);
  }

  /** Stop this window's weave and every weave the server runs (inline, completion, prefetch). */
  async cancelAll(): Promise<void> {
    this.inFlight?.cancel();
    const client = this.server.running;
    if (!client) return;
    try {
      await client.sendRequest(ExecuteCommandRequest.type, { command: CANCEL, arguments: [] });
    } catch (err) {
      this.log.warn(`lloom.cancel: ${String(err)}`);
    }
  }

  private async weave(client: LanguageClient, site: Site, options: WeaveOptions): Promise<WeaveResult | undefined> {
    this.inFlight?.cancel();
    const source = new vscode.CancellationTokenSource();
    this.inFlight = source;
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'LLooM', cancellable: true },
        async (progress, userCancel) => {
          const message = options.depth ? `weaving ${options.depth} more tokens…` : options.deeper ? 'weaving deeper…' : 'weaving…';
          progress.report({ message });
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
              { command: WEAVE, arguments: weaveArguments(site.uri, site.position, options), workDoneToken },
              source.token,
            );
            return parseWeaveResult(raw);
          } finally {
            for (const s of subscriptions) s.dispose();
          }
        },
      );
      // Stopped by the menu's Cancel Weave, a settings change: the status bar says so.
      if (result.cancelled) return undefined;
      if (result.error) {
        await this.reportFailure(result.error, true);
        return undefined;
      }
      return result;
    } catch (err) {
      // The status bar follows the server's lloom/status, so a cancel needs nothing here.
      if (isCancellation(err, source.token)) return undefined;
      await this.reportFailure(err instanceof Error ? err.message : String(err), false);
      return undefined;
    } finally {
      if (this.inFlight === source) this.inFlight = undefined;
      source.dispose();
    }
  }

  /** Log a failed weave, and show it unless the server has shown its own message. */
  private async reportFailure(error: string, fromServer: boolean): Promise<void> {
    const failure = weaveFailure(error, fromServer);
    this.log.error(failure.log);
    if (!failure.show) return;
    const choice = await vscode.window.showErrorMessage(failure.show, 'Show Log');
    if (choice) this.log.show();
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
      void vscode.window.showErrorMessage(plainText(`LLooM: ${message}`));
    }
  }

  dispose(): void {
    this.inFlight?.cancel();
  }
}

const FROM_BEAM: vscode.QuickInputButton = {
  iconPath: new vscode.ThemeIcon('debug-step-into'),
  tooltip: 'Weave From This Beam',
};
const STEP_MORE: vscode.QuickInputButton = {
  iconPath: new vscode.ThemeIcon('debug-continue'),
  tooltip: 'Step N More Tokens…',
};
const AGAIN: vscode.QuickInputButton = { iconPath: new vscode.ThemeIcon('refresh'), tooltip: 'Weave Again' };
const DEEPER: vscode.QuickInputButton = {
  iconPath: new vscode.ThemeIcon('fold-down'),
  tooltip: 'Weave Deeper (beams twice as long)',
};

type PickItem = BeamItem & vscode.QuickPickItem;

/** True while the beams list is open: the keybindings of its buttons need it. */
const BEAMS_CONTEXT = 'lloom.beamsVisible';

/** Presses a button of the open beams list (`from` and `stepMore`: the highlighted row's). */
let openPick: ((action: PickAction) => void) | undefined;

/**
 * The beams as a QuickPick.  Enter inserts the selected beam; the title's buttons weave
 * again or deeper, and each row's buttons weave from that beam or step N tokens on from
 * it (from the keyboard: the `lloom.beams.*` commands, bound while the list is open).
 */
function pickBeam(result: WeaveResult): Promise<Pick> {
  const quickPick = vscode.window.createQuickPick<PickItem>();
  quickPick.title = pickTitle(result);
  quickPick.placeholder = 'Pick a continuation to insert at the cursor (Esc to leave the text as it is)';
  quickPick.items = toBeamItems(result.beams).map((item) => ({ ...item, buttons: [FROM_BEAM, STEP_MORE] }));
  quickPick.matchOnDetail = false;
  quickPick.buttons = [AGAIN, DEEPER];
  return new Promise((resolve) => {
    let answer: Pick;
    quickPick.onDidTriggerButton((button) => {
      answer = { action: button === DEEPER ? 'deeper' : 'again' };
      quickPick.hide();
    });
    quickPick.onDidTriggerItemButton(({ button, item }) => {
      answer = { action: button === STEP_MORE ? 'stepMore' : 'from', beam: item.beam };
      quickPick.hide();
    });
    openPick = (action) => {
      const beam = quickPick.activeItems[0]?.beam;
      const onRow = action === 'from' || action === 'stepMore';
      if (onRow && !beam) return;
      answer = onRow ? { action, beam } : { action };
      quickPick.hide();
    };
    void vscode.commands.executeCommand('setContext', BEAMS_CONTEXT, true);
    quickPick.onDidAccept(() => {
      const beam = quickPick.selectedItems[0]?.beam;
      answer = beam ? { accept: beam } : undefined;
      quickPick.hide();
    });
    quickPick.onDidHide(() => {
      openPick = undefined;
      void vscode.commands.executeCommand('setContext', BEAMS_CONTEXT, false);
      quickPick.dispose();
      resolve(answer);
    });
    quickPick.show();
  });
}
