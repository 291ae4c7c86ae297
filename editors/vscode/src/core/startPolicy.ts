/**
 * When the client may start the server by itself.
 *
 * Pure: no `vscode` import.  A start that failed is not repeated for every file opened
 * (it would only fail the same way and repeat its error), but anything the user does to
 * fix it (a restart, a change of a setting that picks the server) allows a new start.
 */

/** What a change of settings asks the client to do. */
export type SettingsChangeAction = 'restart' | 'start' | 'none';

export class StartPolicy {
  private gaveUp = false;

  startFailed(): void {
    this.gaveUp = true;
  }

  started(): void {
    this.gaveUp = false;
  }

  restartRequested(): void {
    this.gaveUp = false;
  }

  /** Opening a document LLooM weaves in may start the server. */
  get mayStartOnOpen(): boolean {
    return !this.gaveUp;
  }

  /**
   * A settings change: `restartKeys` says whether it changed a setting that needs a new
   * server process (`lloom.server.command`, `lloom.languages`); `active` whether a
   * client exists.
   */
  settingsChanged(restartKeys: boolean, active: boolean): SettingsChangeAction {
    if (!restartKeys) return 'none';
    // The user changed what starts the server: the old failure says nothing about it.
    this.gaveUp = false;
    return active ? 'restart' : 'start';
  }
}
