/**
 * The menu behind the status bar item: toggle automatic inline suggestions, cancel a
 * weave, weave, show the threads, show the log, restart.
 *
 * Pure: no `vscode` import.  Items are plain objects that satisfy `vscode.QuickPickItem`.
 */

export type MenuAction = 'cancel' | 'toggleInline' | 'weave' | 'showThreads' | 'showLog' | 'restart';

export interface MenuItem {
  label: string;
  description?: string;
  action: MenuAction;
}

export interface MenuState {
  weaving: boolean;
  /** `lloom.inline.automatic` for the active document. */
  inlineAutomatic: boolean;
}

export function statusMenuItems(state: MenuState): MenuItem[] {
  const items: MenuItem[] = [];
  if (state.weaving) {
    items.push({ label: '$(debug-stop) Cancel Weave', description: 'stop every weave running now', action: 'cancel' });
  }
  items.push(
    state.inlineAutomatic
      ? { label: '$(circle-slash) Turn Off Automatic Inline Suggestions', description: 'weave only when asked', action: 'toggleInline' }
      : { label: '$(sparkle) Turn On Automatic Inline Suggestions', description: 'weave while typing', action: 'toggleInline' },
    { label: '$(list-unordered) Weave at Cursor', action: 'weave' },
    { label: '$(type-hierarchy) Show Threads', description: 'the tree of the weave at the cursor', action: 'showThreads' },
    { label: '$(output) Show Server Log', action: 'showLog' },
    { label: '$(debug-restart) Restart Server', action: 'restart' },
  );
  return items;
}

/** What `WorkspaceConfiguration.inspect` reports, as far as a toggle needs it. */
export interface SettingLevels {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/**
 * Where a toggle writes: the most specific level that sets the value, so the new value
 * is the one in force (writing the user settings under a folder's value changes nothing).
 */
export function toggleTarget(levels: SettingLevels): 'folder' | 'workspace' | 'global' {
  if (levels.workspaceFolderValue !== undefined) return 'folder';
  if (levels.workspaceValue !== undefined) return 'workspace';
  return 'global';
}
