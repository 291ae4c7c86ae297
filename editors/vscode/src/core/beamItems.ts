/**
 * Beams as QuickPick rows: the seed's suggestion list, with eighth-block probability bars.
 *
 * Pure: no `vscode` import.  Items are plain objects that satisfy `vscode.QuickPickItem`.
 */
import type { WeaveBeam, WeaveOptions, WeaveToken } from './protocol';

const BLOCKS = ' ▏▎▍▌▋▊▉█';

/** A bar `width` cells wide, filled to `fraction` (clamped to 0..1) in eighths of a cell. */
export function bar(fraction: number, width = 10): string {
  const clamped = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const eighths = Math.round(clamped * width * 8);
  const full = Math.floor(eighths / 8);
  const part = eighths % 8;
  const filled = '█'.repeat(full) + (part ? BLOCKS[part] : '');
  return filled + '·'.repeat(width - [...filled].length);
}

/** One line: newlines and tabs as visible symbols, so a row never wraps or hides text. */
export function visible(text: string): string {
  return text.replace(/\r\n|\r|\n/g, '⏎').replace(/\t/g, '⇥');
}

/** QuickPick renders `$(name)` as an icon; a backslash keeps model text literal. */
export function escapeIcons(text: string): string {
  return text.replace(/\$\(/g, '\\$(');
}

export function percent(prob: number): string {
  const p = Math.min(1, Math.max(0, prob)) * 100;
  if (p >= 99.5) return '100%';
  if (p >= 10) return `${p.toFixed(0)}%`;
  if (p >= 1) return `${p.toFixed(1)}%`;
  return `${p.toFixed(2)}%`;
}

/** A token quoted so that it reads as itself (“2” 56%), a line break as ⏎: never an escape. */
function tokenCell(token: WeaveToken): string {
  return `“${visible(token.text)}” ${percent(token.prob)}`;
}

export function jointText(joint: number): string {
  return joint >= 0.001 ? `p=${joint.toFixed(3)}` : `p=${joint.toExponential(1)}`;
}

export interface BeamItem {
  label: string;
  description?: string;
  detail: string;
  beam: WeaveBeam;
}

/** How much of a beam's beginning the detail line quotes when the label starts elsewhere. */
const BEGINNING = 80;

/**
 * The beam from its beginning, when the row's label does not show that beginning (the
 * server's label starts where the beams differ: "…twelve steps"): a writer reads a beam
 * from its start, so the detail line quotes it.  Undefined when the label already does.
 */
export function beamBeginning(beam: WeaveBeam, max = BEGINNING): string | undefined {
  const whole = visible(beam.insertText).trim();
  const label = beamText(beam).trim();
  if (whole === '' || whole.startsWith(label) || label.startsWith(whole)) return undefined;
  const chars = [...whole];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : whole;
}

/**
 * What a row shows of a beam: the server's label, which tells beams with a long shared
 * start apart ("…twelve steps to the top."), or, from a server too old to send one, the
 * text to insert.  The label is the server's; the client never makes its own.
 */
export function beamText(beam: WeaveBeam): string {
  return visible(beam.label ?? beam.insertText) || '(end of text)';
}

/**
 * One row per beam, in the server's order (best first).  The bar is each beam's score
 * relative to the best score, so the top row is always full.
 */
export function toBeamItems(beams: readonly WeaveBeam[], width = 10): BeamItem[] {
  const best = beams.reduce((m, b) => Math.max(m, b.score), 0);
  return beams.map((beam) => {
    const fraction = best > 0 ? beam.score / best : 0;
    const text = beamText(beam);
    const beginning = beamBeginning(beam);
    // Beside the label: the server's description, why the beam sits below beams scored
    // higher (so the order never contradicts the scores unexplained), and what it folded.
    const said = [
      beam.description,
      beam.note,
      beam.variants?.length ? `also: ${beam.variants.join(', ')}` : undefined,
    ].filter((part): part is string => !!part);
    const description = said.length ? { description: escapeIcons(visible(said.join(' · '))) } : {};
    return {
      label: `${bar(fraction, width)} ${beam.score.toFixed(2)}  ${escapeIcons(text)}`,
      ...description,
      detail: escapeIcons(
        [
          jointText(beam.joint),
          ...(beginning ? [`“${beginning}”`] : []),
          ...(beam.tokens.length ? [beam.tokens.map(tokenCell).join(' · ')] : []),
        ].join('  ·  '),
      ),
      beam,
    };
  });
}

/**
 * The QuickPick's other answers: weave again afresh (the cached beams would be the same),
 * weave deeper, weave from a beam not inserted yet, or step a few tokens on from one.
 */
export type PickAction = 'again' | 'deeper' | 'from' | 'stepMore';

/**
 * The options of the weave an action asks for.  `shown` is the weave on screen: one
 * woven from a beam stays after that beam when woven again or deeper.  `beam` is the
 * row whose button was pressed, for `from` and `stepMore`; its insertText already starts
 * with any earlier `after`, so chained weaves build on each other.  `steps`: how many
 * tokens `stepMore` weaves on (`lloom.weave`'s `depth`).
 */
export function nextWeaveOptions(
  action: PickAction,
  shown: { after?: string },
  beam?: WeaveBeam,
  steps?: number,
): WeaveOptions {
  const after = shown.after ? { after: shown.after } : {};
  if (action === 'again') return { fresh: true, ...after };
  if (action === 'deeper') return { deeper: true, ...after };
  const from = beam ? { after: beam.insertText } : { ...after };
  if (action === 'stepMore' && steps !== undefined) return { ...from, depth: steps };
  return from;
}

/** The most tokens one step may weave on: `lloom.weave`'s `depth` takes 1 to 64. */
export const MAX_STEPS = 64;
export const DEFAULT_STEPS = 4;

/** What is wrong with the typed number of tokens to step on, or undefined when nothing. */
export function stepsProblem(text: string): string | undefined {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return `A whole number of tokens, 1 to ${MAX_STEPS}`;
  const steps = Number(trimmed);
  return steps >= 1 && steps <= MAX_STEPS ? undefined : `1 to ${MAX_STEPS} tokens`;
}

/** The typed number of tokens, or undefined when `stepsProblem` finds it wrong. */
export function parseSteps(text: string): number | undefined {
  return stepsProblem(text) === undefined ? Number(text.trim()) : undefined;
}

/** The QuickPick's title: the speed line, and the end of the beam woven from, if any. */
export function pickTitle(result: { speedLine: string; after?: string }, width = 40): string {
  if (!result.after) return `LLooM: ${result.speedLine}`;
  const after = [...visible(result.after)];
  const shown = after.length > width ? `…${after.slice(-(width - 1)).join('')}` : after.join('');
  return `LLooM after “${escapeIcons(shown)}”: ${result.speedLine}`;
}
