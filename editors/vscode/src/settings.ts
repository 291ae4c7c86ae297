/**
 * Reading the `lloom` settings from VS Code.
 *
 * The server reads its own settings through `workspace/configuration`; this module only
 * reads what the client needs before the server runs, the snapshot sent as
 * `initializationOptions`, and the two settings the client toggles.
 */
import * as vscode from 'vscode';

import { normalizeLanguages } from './core/languages';
import { SHADING_SETTING } from './core/shading';
import { toggleTarget } from './core/statusMenu';

export const SECTION = 'lloom';

/** Settings whose change needs a new server process or a new document selector. */
const RESTART_KEYS = ['lloom.server.command', 'lloom.languages'];

const INLINE_AUTOMATIC = 'inline.automatic';

export function languages(): string[] {
  return normalizeLanguages(vscode.workspace.getConfiguration(SECTION).get('languages'));
}

/**
 * The whole `lloom` section as plain JSON, nested as `workspace/configuration` returns
 * it (`{backend: {url: ...}, weave: {...}}`), resolved for `scope` when given.
 */
export function settingsSnapshot(scope?: vscode.ConfigurationScope): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration(SECTION, scope);
  // A WorkspaceConfiguration is a proxy with methods; a JSON round trip keeps the data.
  return JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
}

export function needsRestart(event: vscode.ConfigurationChangeEvent): boolean {
  return RESTART_KEYS.some((key) => event.affectsConfiguration(key));
}

/** `lloom.inline.automatic` in force for `scope` (a document's URI). */
export function inlineAutomatic(scope?: vscode.Uri): boolean {
  return vscode.workspace.getConfiguration(SECTION, scope).get<boolean>(INLINE_AUTOMATIC) === true;
}

/** `lloom.woven.shading` in force for `scope` (a document's URI); on by default. */
export function wovenShading(scope?: vscode.Uri): boolean {
  return vscode.workspace.getConfiguration(SECTION, scope).get<boolean>(SHADING_SETTING) !== false;
}

/**
 * Flip `lloom.inline.automatic` for `scope`, at the level its value comes from (the
 * folder's, the workspace's or the user's settings), so the new value is in force.
 * The server hears of it by the settings push.
 */
export function toggleInlineAutomatic(scope?: vscode.Uri): Promise<boolean> {
  return toggleSetting(INLINE_AUTOMATIC, !inlineAutomatic(scope), scope);
}

/** Flip `lloom.woven.shading` for `scope`, as `toggleInlineAutomatic` does its setting. */
export function toggleWovenShading(scope?: vscode.Uri): Promise<boolean> {
  return toggleSetting(SHADING_SETTING, !wovenShading(scope), scope);
}

async function toggleSetting(key: string, next: boolean, scope?: vscode.Uri): Promise<boolean> {
  const config = vscode.workspace.getConfiguration(SECTION, scope);
  const target = {
    folder: vscode.ConfigurationTarget.WorkspaceFolder,
    workspace: vscode.ConfigurationTarget.Workspace,
    global: vscode.ConfigurationTarget.Global,
  }[toggleTarget(config.inspect(key) ?? {})];
  await config.update(key, next, target);
  return next;
}
