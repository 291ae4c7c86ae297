/**
 * What the user is told when something fails: one message per failure, in plain text.
 *
 * Pure: no `vscode` import.  VS Code shows notification text as it is, so Markdown code
 * quotes would appear as literal backticks.
 */

/** Markdown code quotes as plain quotes: `pip install x` becomes "pip install x". */
export function plainText(text: string): string {
  return text.replace(/`([^`]*)`/g, '"$1"').replace(/`/g, '');
}

/**
 * The one message for a server that did not start.  `commandProblem`: the failure is the
 * `lloom.server.command` setting itself, whose message already says what to fix.
 */
export function startFailureText(message: string, commandProblem: boolean): string {
  if (commandProblem) return plainText(message);
  return plainText(
    `LLooM could not start its language server (${message}). The extension runs the ` +
      'server it ships with Python 3.10 or newer (python3 on PATH, or the Python ' +
      "extension's interpreter); install one, or set lloom.server.command in your user " +
      'settings to a lloom-lsp installed from a checkout (pip install <checkout>).',
  );
}

/**
 * Whether the language client library may show its own notification.  Before the server
 * ever ran, the client explains a failed start itself, so the library's pop-up
 * ("couldn't create connection to server") would be a second one for the same failure.
 * Afterwards the library's messages (a server that crashed too often) are the only ones.
 */
export function libraryNotification(
  showNotification: boolean | 'force' | undefined,
  hasRun: boolean,
): boolean | 'force' | undefined {
  return hasRun ? showNotification : false;
}

/**
 * Errors in a `lloom.weave` answer that the server has already shown with
 * `window/showMessage` (a backend that is down, refuses the key, answers nonsense): it
 * shows those once per backend and kind of failure, with the fix.
 */
const SHOWN_BY_SERVER = /^backend failed\b/;

export interface WeaveFailure {
  /** For the log. */
  log: string;
  /** For a notification; absent when the user was told already. */
  show?: string;
}

/**
 * A weave the server answered with an error (`fromServer`), or one that failed on the
 * way (a broken answer, a dead connection).
 */
export function weaveFailure(error: string, fromServer: boolean): WeaveFailure {
  const log = `lloom.weave failed: ${error}`;
  if (fromServer && SHOWN_BY_SERVER.test(error)) return { log };
  return { log, show: plainText(`LLooM: ${error}`) };
}
