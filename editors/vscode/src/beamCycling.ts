/**
 * "LLooM: Next Beam" and "LLooM: Previous Beam" (Alt+] and Alt+[ on LLooM's ghost text):
 * VS Code's own showNext/showPrevious, then a status bar message that says which beam
 * shows and where it differs from the one before, since two beams of a long ghost text may
 * differ in one word.  The inline items come from the language client's middleware
 * (`LLooMClient.onDidProvideInline`); the logic lives in `core/beamCycle`.
 */
import * as vscode from 'vscode';

import { BeamCycle } from './core/beamCycle';
import type { InlineProvided, LLooMClient } from './client';

/** How long the message stays, in milliseconds: long enough to read a line. */
const SHOWN_MS = 6000;

/** Where a list of beams was given: typing changes the version, and the list no longer counts. */
function keyOf(document: vscode.TextDocument, position: vscode.Position): string {
  return `${document.uri.toString()}@${document.version}:${position.line}:${position.character}`;
}

function itemText(item: vscode.InlineCompletionItem): string {
  return typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
}

export class BeamCycling implements vscode.Disposable {
  private readonly cycle = new BeamCycle();
  private message: vscode.Disposable | undefined;

  constructor(server: LLooMClient) {
    server.onDidProvideInline((provided) => this.onProvided(provided));
  }

  register(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand('lloom.nextBeam', () => this.step(1)),
      vscode.commands.registerCommand('lloom.previousBeam', () => this.step(-1)),
    ];
  }

  private onProvided({ document, position, items }: InlineProvided): void {
    this.cycle.onItems(keyOf(document, position), items.map(itemText));
  }

  private async step(delta: 1 | -1): Promise<void> {
    await vscode.commands.executeCommand(
      delta === 1 ? 'editor.action.inlineSuggest.showNext' : 'editor.action.inlineSuggest.showPrevious',
    );
    const editor = vscode.window.activeTextEditor;
    if (!editor) return;
    const said = this.cycle.step(delta, keyOf(editor.document, editor.selection.active));
    if (!said) return;
    this.message?.dispose();
    this.message = vscode.window.setStatusBarMessage(`$(arrow-swap) LLooM ${said}`, SHOWN_MS);
  }

  dispose(): void {
    this.message?.dispose();
  }
}
