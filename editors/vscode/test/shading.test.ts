/** Probability shading: levels, the spans' wire shape, stale lists, and ranges by level. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { type TokenSpan, isCurrent, levelColor, parseSpans, rangesByLevel, shadingLevel } from '../src/core/shading';

function span(line: number, from: number, to: number, prob: number, text = 'x'): TokenSpan {
  return { range: { start: { line, character: from }, end: { line, character: to } }, prob, text };
}

describe('shadingLevel', () => {
  it('shades the less probable the stronger, at the bounds both editors use', () => {
    assert.equal(shadingLevel(0), 'low');
    assert.equal(shadingLevel(0.049), 'low');
    assert.equal(shadingLevel(0.05), 'medium');
    assert.equal(shadingLevel(0.199), 'medium');
    assert.equal(shadingLevel(0.2), 'faint');
    assert.equal(shadingLevel(0.499), 'faint');
  });

  it('leaves probable tokens, and numbers that are not probabilities, unshaded', () => {
    for (const prob of [0.5, 0.9, 1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.equal(shadingLevel(prob), undefined, String(prob));
    }
  });

  it("names each level's theme colour", () => {
    assert.equal(levelColor('low'), 'lloom.shading.low');
    assert.equal(levelColor('faint'), 'lloom.shading.faint');
  });
});

describe('parseSpans', () => {
  const range = { start: { line: 0, character: 17 }, end: { line: 0, character: 22 } };

  it('reads the notification and the command answer alike', () => {
    const parsed = parseSpans({ uri: 'file:///s.txt', version: 3, spans: [{ range, prob: 0.03, text: ' there' }] });
    assert.deepEqual(parsed, { uri: 'file:///s.txt', version: 3, spans: [{ range, prob: 0.03, text: ' there' }] });
  });

  it('keeps a null version, which is never checked', () => {
    const parsed = parseSpans({ uri: 'u', version: null, spans: [] });
    assert.equal(parsed?.version, null);
    assert.equal(isCurrent(null, 7), true);
  });

  it('is undefined for an error answer or something else', () => {
    assert.equal(parseSpans({ error: 'document not open: u' }), undefined);
    assert.equal(parseSpans({ uri: 'u', version: 1 }), undefined);
    assert.equal(parseSpans(null), undefined);
    assert.equal(parseSpans([]), undefined);
  });

  it('drops a malformed span and keeps the others', () => {
    const parsed = parseSpans({
      uri: 'u',
      version: 1,
      spans: [
        { range, prob: 0.1, text: 'a' },
        { range: { start: { line: -1, character: 0 }, end: range.end }, prob: 0.1 },
        { range, prob: '0.1' },
        { prob: 0.1 },
        { range: { start: { line: 0.5, character: 0 }, end: range.end }, prob: 0.1 },
        { range, prob: 0.2 },
      ],
    });
    assert.deepEqual(
      parsed?.spans.map((s) => [s.prob, s.text]),
      [
        [0.1, 'a'],
        [0.2, ''],
      ],
    );
  });
});

describe('isCurrent', () => {
  it('takes only the list of the version the editor has', () => {
    assert.equal(isCurrent(4, 4), true);
    assert.equal(isCurrent(3, 4), false);
    assert.equal(isCurrent(5, 4), false);
  });
});

describe('rangesByLevel', () => {
  it('groups the ranges by level in the server order, and leaves probable tokens out', () => {
    const spans = [span(0, 0, 4, 0.01), span(0, 4, 8, 0.9), span(0, 8, 10, 0.1), span(1, 0, 3, 0.03), span(1, 3, 5, 0.3)];
    const grouped = rangesByLevel(spans);
    assert.deepEqual(grouped.low, [spans[0].range, spans[3].range]);
    assert.deepEqual(grouped.medium, [spans[2].range]);
    assert.deepEqual(grouped.faint, [spans[4].range]);
  });

  it('keeps a token over a line break and drops empty or backward ranges', () => {
    const multiLine: TokenSpan = { range: { start: { line: 0, character: 5 }, end: { line: 1, character: 0 } }, prob: 0.01, text: '\n' };
    const backward: TokenSpan = { range: { start: { line: 2, character: 0 }, end: { line: 1, character: 4 } }, prob: 0.01, text: 'x' };
    const grouped = rangesByLevel([multiLine, span(0, 3, 3, 0.01), backward]);
    assert.deepEqual(grouped.low, [multiLine.range]);
  });

  it('is empty for an empty list, which clears every level', () => {
    assert.deepEqual(rangesByLevel([]), { low: [], medium: [], faint: [] });
  });
});
