/**
 * Probability shading of woven text: the `lloom/spans` notification and `lloom.spans`
 * answer read and checked, each span's shading level, and the ranges grouped by level,
 * one decoration type each.
 *
 * Pure: no `vscode` import.  Ranges are LSP ranges in the negotiated encoding (UTF-16 in
 * VS Code, so they are VS Code positions as they are), for the document at `version`.
 */
import type { LspPosition } from './protocol';

export const SPANS_NOTIFICATION = 'lloom/spans';
export const SPANS = 'lloom.spans';
/** The setting that switches shading, under the `lloom` section. */
export const SHADING_SETTING = 'woven.shading';

export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

export interface TokenSpan {
  range: LspRange;
  prob: number;
  text: string;
}

/**
 * Every woven token span of one document at one version: the complete list, which
 * replaces the last one.  `version` null: the server could not tell (never checked).
 */
export interface DocumentSpans {
  uri: string;
  version: number | null;
  spans: TokenSpan[];
}

/** Strongest first; a probable token (0.5 and up) gets no shading at all. */
export const LEVELS = ['low', 'medium', 'faint'] as const;
export type ShadingLevel = (typeof LEVELS)[number];

/** The upper bound (exclusive) of each level's probabilities; the same in every editor. */
const BOUNDS: Record<ShadingLevel, number> = { low: 0.05, medium: 0.2, faint: 0.5 };

/** The theme colour each level's background comes from (package.json `contributes.colors`). */
export function levelColor(level: ShadingLevel): string {
  return `lloom.shading.${level}`;
}

/** The level of a token of probability `prob`, or undefined when it is not shaded. */
export function shadingLevel(prob: number): ShadingLevel | undefined {
  if (!Number.isFinite(prob)) return undefined;
  return LEVELS.find((level) => prob < BOUNDS[level]);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function toPosition(raw: unknown): LspPosition | undefined {
  if (!isRecord(raw)) return undefined;
  const { line, character } = raw;
  if (!Number.isInteger(line) || !Number.isInteger(character)) return undefined;
  if ((line as number) < 0 || (character as number) < 0) return undefined;
  return { line: line as number, character: character as number };
}

function toSpan(raw: unknown): TokenSpan | undefined {
  if (!isRecord(raw) || typeof raw.prob !== 'number' || !isRecord(raw.range)) return undefined;
  const start = toPosition(raw.range.start);
  const end = toPosition(raw.range.end);
  if (!start || !end) return undefined;
  return { range: { start, end }, prob: raw.prob, text: typeof raw.text === 'string' ? raw.text : '' };
}

/**
 * The params of `lloom/spans`, or the answer of `lloom.spans`; undefined when they are
 * not spans (an `{error}` answer among them).  A malformed span is dropped, not the list:
 * the others still shade.
 */
export function parseSpans(raw: unknown): DocumentSpans | undefined {
  if (!isRecord(raw) || typeof raw.uri !== 'string' || !Array.isArray(raw.spans)) return undefined;
  const version = Number.isInteger(raw.version) ? (raw.version as number) : null;
  const spans = raw.spans.map(toSpan).filter((s): s is TokenSpan => s !== undefined);
  return { uri: raw.uri, version, spans };
}

/**
 * Whether spans of `spansVersion` fit the editor's document at `documentVersion`.  A
 * stale list is dropped: the server sends a newer one after the change that moved spans.
 */
export function isCurrent(spansVersion: number | null, documentVersion: number): boolean {
  return spansVersion === null || spansVersion === documentVersion;
}

/** The ranges of each level, in the server's order; empty spans shade nothing and are left out. */
export function rangesByLevel(spans: readonly TokenSpan[]): Record<ShadingLevel, LspRange[]> {
  const grouped: Record<ShadingLevel, LspRange[]> = { low: [], medium: [], faint: [] };
  for (const span of spans) {
    const level = shadingLevel(span.prob);
    const { start, end } = span.range;
    if (!level || (start.line === end.line && start.character >= end.character) || end.line < start.line) continue;
    grouped[level].push(span.range);
  }
  return grouped;
}

