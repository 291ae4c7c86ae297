/**
 * The status bar item and its menu.  What it shows comes from `core/weaveStatus`: the
 * server's state and the weaves the server reports with `lloom/status`, whichever
 * feature started them.
 */
import * as vscode from 'vscode';

import { type MenuAction, type MenuItem, statusMenuItems } from './core/statusMenu';
import { type ServerState, StatusModel, type WeaveStatus } from './core/weaveStatus';

export const MENU_COMMAND = 'lloom.showMenu';

const BACKGROUNDS = {
  error: 'statusBarItem.errorBackground',
  warning: 'statusBarItem.warningBackground',
} as const;

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('lloom.status', vscode.StatusBarAlignment.Right, 100);
  private readonly model = new StatusModel();

  constructor() {
    this.item.name = 'LLooM';
    this.item.command = MENU_COMMAND;
    this.render();
    this.item.show();
  }

  setState(state: ServerState, detail = ''): void {
    this.model.setServer(state, detail);
    this.render();
  }

  onWeave(status: WeaveStatus): void {
    this.model.onWeave(status);
    this.render();
  }

  /** Settings changed: an old failure is no longer what the status bar says. */
  settingsChanged(): void {
    this.model.settingsChanged();
    this.render();
  }

  get isWeaving(): boolean {
    return this.model.isWeaving;
  }

  private render(): void {
    const view = this.model.view();
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.background ? new vscode.ThemeColor(BACKGROUNDS[view.background]) : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}

/** The menu as a QuickPick; runs the picked item's handler. */
export async function showStatusMenu(
  state: { weaving: boolean; inlineAutomatic: boolean },
  handlers: Record<MenuAction, () => unknown>,
): Promise<void> {
  const picked = await vscode.window.showQuickPick<MenuItem>(statusMenuItems(state), {
    title: 'LLooM',
    placeHolder: state.weaving ? 'Weaving…' : 'LLooM',
  });
  if (picked) await handlers[picked.action]();
}
