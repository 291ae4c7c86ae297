/**
 * "Next beam" and "previous beam" (Alt+] / Alt+[) on the ghost text: which of the inline
 * suggestion's beams shows after a step, and the words that say so.  Two beams of a weave
 * often differ in one word of a long ghost text, which a writer easily misses, so each
 * step is announced: "beam 3 of 12", the beam's beginning, and where it differs from the
 * beam shown before.
 *
 * Pure: no `vscode` import.  VS Code shows inline items in the provider's order, one per
 * distinct text, and steps through them with wrap-around; this follows the same list.
 */
import { visible } from './beamItems';

/** How many characters of a beam the announcement quotes. */
const QUOTE = 48;
/** How much of the shared start is quoted before the first different character. */
const CONTEXT = 16;

function quote(text: string, max = QUOTE): string {
  const chars = [...visible(text)];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : chars.join('');
}

/** Length (in UTF-16 units) of the start `a` and `b` share, never splitting a surrogate pair. */
export function sharedStart(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  if (i > 0 && i < a.length && /[\uD800-\uDBFF]/.test(a[i - 1])) i--;
  return i;
}

/**
 * What a step says: "beam 3 of 12: “She walked …”", and, when it shares a start with the
 * beam shown before, from where it differs: "… differs after “…to the”: “ window and”".
 */
export function beamAnnouncement(texts: readonly string[], index: number, previous?: number): string {
  const text = texts[index] ?? '';
  let line = `beam ${index + 1} of ${texts.length}: “${quote(text.trimStart()) || '(empty)'}”`;
  if (previous === undefined || previous === index) return line;
  const before = texts[previous] ?? '';
  const shared = sharedStart(before, text);
  // A shared start a writer would not see the difference in: say where the change is.
  if (shared > 0 && shared < text.length && [...visible(text.slice(0, shared)).trim()].length >= 8) {
    const lead = [...visible(text.slice(0, shared))];
    const context = lead.length > CONTEXT ? `…${lead.slice(-CONTEXT).join('')}` : lead.join('');
    line += ` · differs after “${context}”: “${quote(text.slice(shared), 32)}”`;
  } else if (shared > 0 && shared === text.length) {
    line += ' · the beam before, cut short here';
  }
  return line;
}

/** The beams of the ghost text on show, and which one shows. */
export class BeamCycle {
  private key = '';
  private texts: string[] = [];
  private index = 0;

  /**
   * The items the server answered an inline request with, at `key` (document, version
   * and position).  The same list again at the same place (VS Code asks again when the
   * writer first cycles) keeps the beam on show; any other list starts at its first.
   */
  onItems(key: string, texts: readonly string[]): void {
    const distinct = [...new Set(texts)];
    if (key === this.key && distinct.length === this.texts.length && distinct.every((t, i) => t === this.texts[i])) return;
    this.key = key;
    this.texts = distinct;
    this.index = 0;
  }

  /** One step on (1) or back (-1), with wrap-around; the announcement, or undefined with no beams. */
  step(delta: 1 | -1, key?: string): string | undefined {
    const n = this.texts.length;
    if (n === 0 || (key !== undefined && key !== this.key)) return undefined;
    const previous = this.index;
    this.index = (this.index + delta + n) % n;
    return beamAnnouncement(this.texts, this.index, previous);
  }

  get shown(): { index: number; count: number } {
    return { index: this.index, count: this.texts.length };
  }
}
