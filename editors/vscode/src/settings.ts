/**
 * Reading the `lloom` settings from VS Code.
 *
 * The server reads its own settings through `workspace/configuration`; this module only
 * reads what the client needs before the server runs, and the snapshot sent as
 * `initializationOptions`.
 */
import * as vscode from 'vscode';

import { normalizeLanguages } from './core/languages';

export const SECTION = 'lloom';

/** Settings whose change needs a new server process or a new document selector. */
const RESTART_KEYS = ['lloom.server.command', 'lloom.languages'];

export function languages(): string[] {
  return normalizeLanguages(vscode.workspace.getConfiguration(SECTION).get('languages'));
}

export function serverCommandSetting(): unknown {
  return vscode.workspace.getConfiguration(SECTION).get('server.command');
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
