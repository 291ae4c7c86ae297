/**
 * The status bar item: backend state and the last weave's speed line.
 */
import * as vscode from 'vscode';

export type BackendState = 'stopped' | 'starting' | 'ready' | 'weaving' | 'error';

const ICONS: Record<BackendState, string> = {
  stopped: '$(circle-slash)',
  starting: '$(loading~spin)',
  ready: '$(check)',
  weaving: '$(loading~spin)',
  error: '$(error)',
};

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('lloom.status', vscode.StatusBarAlignment.Right, 100);
  private state: BackendState = 'stopped';
  private detail = '';
  private speedLine = '';

  constructor() {
    this.item.name = 'LLooM';
    this.item.command = 'lloom.showLog';
    this.render();
    this.item.show();
  }

  setState(state: BackendState, detail = ''): void {
    this.state = state;
    this.detail = detail;
    this.render();
  }

  setSpeedLine(speedLine: string): void {
    this.speedLine = speedLine;
    this.render();
  }

  private render(): void {
    this.item.text = `${ICONS[this.state]} LLooM${this.speedLine && this.state === 'ready' ? `: ${this.speedLine}` : ''}`;
    const lines = [`LLooM server: ${this.state}`];
    if (this.detail) lines.push(this.detail);
    if (this.speedLine) lines.push(`Last weave: ${this.speedLine}`);
    lines.push('Click to show the server log.');
    this.item.tooltip = lines.join('\n');
    this.item.backgroundColor =
      this.state === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
