/** Parsing the server's command results and building their arguments. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  ProtocolError,
  acceptArguments,
  endOfInsertion,
  parseAcceptResult,
  parseWeaveResult,
  weaveArguments,
} from '../src/core/protocol';

const sample = {
  beams: [
    {
      text: ' there',
      insertText: 'there',
      score: 1.5,
      joint: 0.4,
      meanLogprob: -0.3,
      finish: 'stop',
      tokens: [{ text: ' there', prob: 0.4, id: 12 }],
    },
  ],
  tree: { prompt: 'Once upon a time,', root: {} },
  stats: { requests: 3, tokens: 20, elapsed: 0.5, tokensPerSecond: 40 },
  speedLine: '1 suggestions in 0.5 s @ 40 tok/s',
  version: 7,
};

describe('parseWeaveResult', () => {
  it('reads a full result', () => {
    const result = parseWeaveResult(sample);
    assert.equal(result.version, 7);
    assert.equal(result.speedLine, sample.speedLine);
    assert.deepEqual(result.beams[0], sample.beams[0]);
    assert.deepEqual(result.stats, sample.stats);
  });

  it('reads a weave that something else stopped as cancelled, not as a failure', () => {
    const result = parseWeaveResult({ beams: [], cancelled: true, error: 'cancelled', version: 3 });
    assert.equal(result.cancelled, true);
    assert.equal(parseWeaveResult(sample).cancelled, undefined);
  });

  it('fills gaps instead of failing on a sparse server', () => {
    const result = parseWeaveResult({ beams: [{ text: 'x' }] });
    assert.deepEqual(result.beams[0].insertText, 'x');
    assert.deepEqual(result.beams[0].tokens, []);
    assert.equal(result.version, -1);
    assert.equal(result.stats.tokens, 0);
  });

  it("reads each beam's label, and leaves it out where an older server sends none", () => {
    const labelled = { ...sample.beams[0], label: '…there' };
    const result = parseWeaveResult({ ...sample, beams: [labelled, sample.beams[0]] });
    assert.equal(result.beams[0].label, '…there');
    assert.equal('label' in result.beams[1], false);
    for (const label of ['', 7, null]) {
      const [parsed] = parseWeaveResult({ beams: [{ text: 'x', label }] }).beams;
      assert.equal(parsed.label, undefined, `label ${String(label)}`);
    }
  });

  it("reads each beam's note and folded variants, dropping what is not text", () => {
    const noted = { ...sample.beams[0], note: 'stops mid-phrase', variants: ['2020,', 7, '', '2021,'] };
    const [beam, plain] = parseWeaveResult({ ...sample, beams: [noted, sample.beams[0]] }).beams;
    assert.equal(beam.note, 'stops mid-phrase');
    assert.deepEqual(beam.variants, ['2020,', '2021,']);
    assert.equal('note' in plain, false);
    assert.equal('variants' in plain, false);
  });

  it('keeps the error of a weave the server could not run', () => {
    const result = parseWeaveResult({ beams: [], error: 'backend failed', version: 3 });
    assert.equal(result.error, 'backend failed');
    assert.equal(result.version, 3);
    assert.equal(parseWeaveResult(sample).error, undefined);
  });

  it('rejects answers without beams', () => {
    assert.throws(() => parseWeaveResult(null), ProtocolError);
    assert.throws(() => parseWeaveResult({ beams: 'no' }), ProtocolError);
    assert.throws(() => parseWeaveResult({ beams: [{ score: 1 }] }), /beam 0 has no text/);
  });
});

describe('parseAcceptResult', () => {
  it('reads applied and reason', () => {
    assert.deepEqual(parseAcceptResult({ applied: true }), { applied: true });
    assert.deepEqual(parseAcceptResult({ applied: false, reason: 'stale' }), { applied: false, reason: 'stale' });
    assert.throws(() => parseAcceptResult({}), ProtocolError);
  });
});

describe('arguments', () => {
  it('sends only line and character', () => {
    const pos = { line: 2, character: 5, extra: true };
    assert.deepEqual(weaveArguments('file:///a.txt', pos), ['file:///a.txt', { line: 2, character: 5 }]);
    assert.deepEqual(acceptArguments('file:///a.txt', 3, pos, 'hi'), [
      'file:///a.txt',
      3,
      { line: 2, character: 5 },
      'hi',
    ]);
  });
});

describe('endOfInsertion', () => {
  it('moves along the line for single-line text', () => {
    assert.deepEqual(endOfInsertion({ line: 1, character: 4 }, ' there'), { line: 1, character: 10 });
  });

  it('lands on the last line for multi-line text, whatever the line ending', () => {
    assert.deepEqual(endOfInsertion({ line: 1, character: 4 }, 'a\nbc\r\ndef'), { line: 3, character: 3 });
    assert.deepEqual(endOfInsertion({ line: 0, character: 9 }, 'end\n'), { line: 1, character: 0 });
  });

  it('counts UTF-16 code units, as LSP and VS Code do', () => {
    assert.deepEqual(endOfInsertion({ line: 0, character: 0 }, '😀é'), { line: 0, character: 3 });
  });
});

describe('weave options', () => {
  it('sends fresh, deeper and after as the third argument', () => {
    const pos = { line: 2, character: 5 };
    assert.deepEqual(weaveArguments('file:///a.txt', pos, { fresh: true }), ['file:///a.txt', pos, { fresh: true }]);
    assert.deepEqual(weaveArguments('file:///a.txt', pos, { deeper: true, after: ' the' }), [
      'file:///a.txt',
      pos,
      { deeper: true, after: ' the' },
    ]);
  });

  it('sends depth with after: Step N More Tokens', () => {
    const pos = { line: 0, character: 3 };
    assert.deepEqual(weaveArguments('file:///a.txt', pos, { after: ' the', depth: 8 }), [
      'file:///a.txt',
      pos,
      { after: ' the', depth: 8 },
    ]);
  });

  it('leaves the options out when none is set, as older servers take two arguments', () => {
    const pos = { line: 0, character: 0 };
    assert.equal(weaveArguments('file:///a.txt', pos, {}).length, 2);
    assert.equal(weaveArguments('file:///a.txt', pos, { fresh: false, after: '' }).length, 2);
  });

  it('reads the text a weave continued from', () => {
    assert.equal(parseWeaveResult({ ...sample, after: ' there' }).after, ' there');
    assert.equal(parseWeaveResult(sample).after, undefined);
  });
});
