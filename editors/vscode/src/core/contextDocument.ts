/**
 * "LLooM: Show Context": the `lloom.showContext` answer read and checked, and the
 * `lloom-context:` URI of the read-only document that shows it, one per story document.
 *
 * The URI's path ends in `<basename> context`, which VS Code shows as the tab's name; its
 * query is the story's own URI, so two stories of the same name get two documents, and a
 * context document leads back to its story.
 *
 * Pure: no `vscode` import, so unit tests run under plain node.
 */
import type { LspPosition } from './protocol';

/**
 * The server's command.  The client's is `lloom.showContextDocument`: one of this name
 * would clash with the one vscode-languageclient registers for the server.
 */
export const SHOW_CONTEXT = 'lloom.showContext';
export const CONTEXT_SCHEME = 'lloom-context';

/** What the next weave at a position would send, as `lloom.showContext` answers it. */
export interface ContextResult {
  /** The prompt, exactly as sent. */
  prompt: string;
  /** All of it as a document: a few lines about it, then the prompt. */
  text: string;
  /** The backend's count of the prompt's tokens; null where it cannot count. */
  tokens: number | null;
  /** The backend's context size; null where it does not say. */
  contextTokens: number | null;
  /** Why the memory could not be read, or empty. */
  problem: string;
}

/** The parts of a `vscode.Uri` that `Uri.from` takes. */
export interface UriParts {
  scheme: string;
  path: string;
  query: string;
}

export class ContextError extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function count(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

export function parseContextResult(raw: unknown): ContextResult {
  if (!isRecord(raw) || typeof raw.text !== 'string') {
    throw new ContextError(`${SHOW_CONTEXT}: the server answered without the context's text`);
  }
  return {
    prompt: typeof raw.prompt === 'string' ? raw.prompt : '',
    text: raw.text,
    tokens: count(raw.tokens),
    contextTokens: count(raw.contextTokens),
    problem: typeof raw.problem === 'string' ? raw.problem : '',
  };
}

export function contextArguments(uri: string, position: LspPosition): [string, LspPosition] {
  return [uri, { line: position.line, character: position.character }];
}

/** The last segment of a URI's path, `%`-escapes decoded (`untitled:Untitled-1` too). */
export function baseName(documentUri: string): string {
  const path = documentUri.replace(/^[a-z][a-z0-9+.-]*:/i, '').replace(/[?#].*$/s, '');
  const last = path.split('/').filter((s) => s !== '').at(-1) ?? 'document';
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/** The context document of the story at `documentUri`: its tab reads "<basename> context". */
export function contextUri(documentUri: string): UriParts {
  return { scheme: CONTEXT_SCHEME, path: `/${baseName(documentUri)} context`, query: documentUri };
}

/** The story a context document shows the context of, or undefined for any other URI. */
export function storyUri(uri: { scheme: string; query: string }): string | undefined {
  return uri.scheme === CONTEXT_SCHEME && uri.query !== '' ? uri.query : undefined;
}

/** What a context document shows before it has been asked for (a window restored later). */
export function placeholderText(documentUri: string): string {
  return `LLooM context: ${documentUri}\nRun "LLooM: Show Context" in the story to show what the next weave there sends.\n`;
}
