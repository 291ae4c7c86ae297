/**
 * The wire shapes of lloom-lsp's `workspace/executeCommand` commands, and checks for them.
 *
 * Pure: no `vscode` import, so unit tests run under plain node.  Positions are LSP
 * positions (0-based line, UTF-16 `character`), which is also what VS Code uses.
 */

export const WEAVE = 'lloom.weave';
export const ACCEPT = 'lloom.accept';
export const CANCEL = 'lloom.cancel';

export interface LspPosition {
  line: number;
  character: number;
}

export interface WeaveToken {
  text: string;
  prob: number;
  id: number | null;
}

export interface WeaveBeam {
  /** The continuation as the model wrote it. */
  text: string;
  /** What to insert at the cursor: `text` with whitespace the document already has removed. */
  insertText: string;
  /**
   * A short one-line label that shows where this beam differs from the others of the
   * weave ("…twelve steps to the top."), made by the server.  Absent from older servers.
   */
  label?: string;
  /**
   * More about the beam, from the server, shown beside the label (its beginning, when the
   * label starts where beams differ).  Absent from older servers.
   */
  description?: string;
  /**
   * Why the beam sits below beams scored higher ("stops mid-phrase", "repeats the story"),
   * from the server.  Absent where its place matches its score.
   */
  note?: string;
  /** The words near-duplicates folded into this beam had in its place ("2020,", "2021,"). */
  variants?: string[];
  /** The rank value LLooM sorts by (sum of token probabilities by default). */
  score: number;
  /** Product of the token probabilities. */
  joint: number;
  meanLogprob: number;
  finish: string;
  tokens: WeaveToken[];
}

export interface WeaveStats {
  requests: number;
  tokens: number;
  elapsed: number;
  tokensPerSecond: number;
}

export interface WeaveResult {
  /** Best first. */
  beams: WeaveBeam[];
  stats: WeaveStats;
  speedLine: string;
  /** The document version the weave read. */
  version: number;
  /** Set when the server could not weave (document not open, backend failed). */
  error?: string;
  /** The text this weave continued from (options.after); each beam's insertText starts with it. */
  after?: string;
  /** Something else stopped the weave (lloom.cancel, a settings change): not a failure. */
  cancelled?: boolean;
}

/**
 * How `lloom.weave` weaves.  `fresh`: anew, replacing the cached result (Weave Again).
 * `deeper`: beams twice as long.  `after`: from the story plus this text, a beam not
 * inserted yet (Weave From This Beam).  `depth`: beams this many tokens long (with
 * `after`: Step N More Tokens).
 */
export interface WeaveOptions {
  fresh?: boolean;
  deeper?: boolean;
  after?: string;
  depth?: number;
}

export interface AcceptResult {
  applied: boolean;
  reason?: string;
}

export class ProtocolError extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function num(value: unknown, fallback = 0): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function str(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

function toToken(raw: unknown): WeaveToken {
  const t = isRecord(raw) ? raw : {};
  return { text: str(t.text), prob: num(t.prob), id: typeof t.id === 'number' ? t.id : null };
}

function toBeam(raw: unknown, index: number): WeaveBeam {
  if (!isRecord(raw) || typeof raw.text !== 'string') {
    throw new ProtocolError(`lloom.weave: beam ${index} has no text`);
  }
  const label = typeof raw.label === 'string' && raw.label !== '' ? { label: raw.label } : {};
  const description =
    typeof raw.description === 'string' && raw.description !== '' ? { description: raw.description } : {};
  const note = typeof raw.note === 'string' && raw.note !== '' ? { note: raw.note } : {};
  const variants = Array.isArray(raw.variants)
    ? raw.variants.filter((v): v is string => typeof v === 'string' && v !== '')
    : [];
  return {
    text: raw.text,
    insertText: str(raw.insertText, raw.text),
    ...label,
    ...description,
    ...note,
    ...(variants.length ? { variants } : {}),
    score: num(raw.score),
    joint: num(raw.joint),
    meanLogprob: num(raw.meanLogprob, Number.NEGATIVE_INFINITY),
    finish: str(raw.finish),
    tokens: Array.isArray(raw.tokens) ? raw.tokens.map(toToken) : [],
  };
}

/**
 * A weave result from whatever the server sent.  Missing numbers become 0 so a
 * server that omits a statistic still shows its beams; missing beams is an error.
 */
export function parseWeaveResult(raw: unknown): WeaveResult {
  if (!isRecord(raw) || !Array.isArray(raw.beams)) {
    throw new ProtocolError('lloom.weave: the server answered without a list of beams');
  }
  const stats = isRecord(raw.stats) ? raw.stats : {};
  const error = typeof raw.error === 'string' && raw.error !== '' ? { error: raw.error } : {};
  const after = typeof raw.after === 'string' && raw.after !== '' ? { after: raw.after } : {};
  const cancelled = raw.cancelled === true ? { cancelled: true } : {};
  return {
    ...error,
    ...after,
    ...cancelled,
    beams: raw.beams.map(toBeam),
    stats: {
      requests: num(stats.requests),
      tokens: num(stats.tokens),
      elapsed: num(stats.elapsed),
      tokensPerSecond: num(stats.tokensPerSecond),
    },
    speedLine: str(raw.speedLine),
    version: num(raw.version, -1),
  };
}

export function parseAcceptResult(raw: unknown): AcceptResult {
  if (!isRecord(raw) || typeof raw.applied !== 'boolean') {
    throw new ProtocolError('lloom.accept: the server answered without `applied`');
  }
  return typeof raw.reason === 'string'
    ? { applied: raw.applied, reason: raw.reason }
    : { applied: raw.applied };
}

/** `[uri, position]`, plus the options that are set: an older server takes two arguments only. */
export function weaveArguments(
  uri: string,
  position: LspPosition,
  options: WeaveOptions = {},
): [string, LspPosition] | [string, LspPosition, WeaveOptions] {
  const pos = { line: position.line, character: position.character };
  const set: WeaveOptions = {
    ...(options.fresh ? { fresh: true } : {}),
    ...(options.deeper ? { deeper: true } : {}),
    ...(options.after ? { after: options.after } : {}),
    ...(options.depth !== undefined ? { depth: options.depth } : {}),
  };
  return Object.keys(set).length > 0 ? [uri, pos, set] : [uri, pos];
}

export function acceptArguments(
  uri: string,
  version: number,
  position: LspPosition,
  text: string,
): [string, number, LspPosition, string] {
  return [uri, version, { line: position.line, character: position.character }, text];
}

/** Where the cursor ends up after inserting `text` at `start` (UTF-16 columns, as LSP). */
export function endOfInsertion(start: LspPosition, text: string): LspPosition {
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.length === 1) {
    return { line: start.line, character: start.character + text.length };
  }
  return { line: start.line + lines.length - 1, character: lines[lines.length - 1].length };
}
