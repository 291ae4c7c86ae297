/** Probability bars and beam rows. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  DEFAULT_STEPS,
  bar,
  beamBeginning,
  beamText,
  escapeIcons,
  nextWeaveOptions,
  parseSteps,
  percent,
  pickTitle,
  stepsProblem,
  toBeamItems,
  visible,
} from '../src/core/beamItems';
import type { WeaveBeam } from '../src/core/protocol';

function beam(text: string, score: number, extra: Partial<WeaveBeam> = {}): WeaveBeam {
  return { text, insertText: text, score, joint: 0.25, meanLogprob: -0.7, finish: 'stop', tokens: [], ...extra };
}

describe('bar', () => {
  it('is always `width` cells', () => {
    for (const f of [0, 0.01, 0.33, 0.5, 0.999, 1, 2, -1, Number.NaN]) {
      assert.equal([...bar(f)].length, 10, `fraction ${f}`);
      assert.equal([...bar(f, 4)].length, 4);
    }
  });

  it('fills in eighths of a cell', () => {
    assert.equal(bar(1), '██████████');
    assert.equal(bar(0), '··········');
    assert.equal(bar(0.5), '█████·····');
    assert.equal(bar(0.65), '██████▌···');
    assert.equal(bar(1 / 80), '▏·········');
  });

  it('clamps out-of-range and non-finite fractions', () => {
    assert.equal(bar(3), bar(1));
    assert.equal(bar(-0.5), bar(0));
    assert.equal(bar(Number.POSITIVE_INFINITY), bar(0));
  });
});

describe('text helpers', () => {
  it('shows newlines and tabs as symbols', () => {
    assert.equal(visible('a\nb\r\nc\td'), 'a⏎b⏎c⇥d');
  });

  it('keeps $(…) from becoming an icon', () => {
    assert.equal(escapeIcons('cost $(x) and $(y)'), 'cost \\$(x) and \\$(y)');
  });

  it('prints probabilities as short percentages', () => {
    assert.deepEqual([1, 0.999, 0.52, 0.031, 0.00042].map(percent), ['100%', '100%', '52%', '3.1%', '0.04%']);
  });
});

describe('toBeamItems', () => {
  it('draws each bar relative to the best score, in server order', () => {
    const items = toBeamItems([beam(' there was a girl', 1.52), beam(' a king', 0.76)]);
    assert.equal(items[0].label, '██████████ 1.52   there was a girl');
    assert.equal(items[1].label, '█████····· 0.76   a king');
    assert.equal(items[1].beam.text, ' a king');
  });

  it('labels the text that will be inserted, on one line', () => {
    const [item] = toBeamItems([beam(' Once\nmore', 1, { insertText: 'Once\nmore' })]);
    assert.match(item.label, /1\.00 {2}Once⏎more$/);
  });

  it('puts joint and per-token probabilities in the detail', () => {
    const [item] = toBeamItems([
      beam(' there', 0.9, {
        joint: 0.42,
        tokens: [
          { text: ' the', prob: 0.6, id: 5 },
          { text: 're', prob: 0.7, id: 9 },
        ],
      }),
    ]);
    assert.equal(item.detail, 'p=0.420  ·  “ the” 60% · “re” 70%');
  });

  it('writes tiny joint probabilities in exponent form and a line break as ⏎, not an escape', () => {
    const [item] = toBeamItems([
      beam('x', 1, { joint: 0.000012, tokens: [{ text: '\n', prob: 0.5, id: null }] }),
    ]);
    assert.equal(item.detail, 'p=1.2e-5  ·  “⏎” 50%');
  });

  it("shows the server's label, which tells beams with a shared start apart", () => {
    const start = 'She had to climb the hundred and twelve ';
    const items = toBeamItems([
      beam(start + 'steps to the top.', 1, { label: '…twelve steps to the top.' }),
      beam(start + 'stairs, counting.', 0.5, { label: '…twelve stairs, counting.' }),
    ]);
    assert.equal(items[0].label, '██████████ 1.00  …twelve steps to the top.');
    assert.equal(items[1].label, '█████····· 0.50  …twelve stairs, counting.');
    // Picking a row still inserts the whole beam.
    assert.equal(items[1].beam.insertText, start + 'stairs, counting.');
    // The detail line reads the beam from its beginning, which the label leaves out.
    assert.equal(items[1].detail, 'p=0.250  ·  “She had to climb the hundred and twelve stairs, counting.”');
  });

  it('quotes no beginning when the label shows it already', () => {
    const [item] = toBeamItems([beam(' the door opened', 1, { label: 'the door opened' })]);
    assert.equal(item.detail, 'p=0.250');
    assert.equal(beamBeginning(beam('x', 1)), undefined);
  });

  it('says why a beam sits below beams scored higher, and the words it folded', () => {
    const items = toBeamItems([
      beam(' a whale.', 4.33),
      beam(' the lighthouse keeper', 5.26, { note: 'stops mid-phrase', variants: ['boat', 'ship'] }),
    ]);
    assert.equal(items[0].description, undefined);
    assert.equal(items[1].description, 'stops mid-phrase · also: boat, ship');
  });

  it("cuts a long beginning at 80 characters, and shows the server's description beside the label", () => {
    const long = 'word '.repeat(40);
    const [item] = toBeamItems([beam(long, 1, { label: '…word end', description: 'from “word word” · $(x)' })]);
    assert.equal(item.description, 'from “word word” · \\$(x)');
    const quoted = /“(.*)”/.exec(item.detail)![1];
    assert.equal([...quoted].length, 80);
    assert.ok(quoted.startsWith('word word') && quoted.endsWith('…'));
  });

  it('falls back to the text to insert when the server sends no label (older servers)', () => {
    const items = toBeamItems([
      beam(' a\tking', 1, { insertText: 'a\tking' }),
      beam(' a queen', 1, { label: undefined }),
    ]);
    assert.match(items[0].label, / {2}a⇥king$/);
    assert.match(items[1].label, / {2} a queen$/);
  });

  it('keeps a label on one line and its $(…) literal', () => {
    const [item] = toBeamItems([beam('x', 1, { label: '…costs $(x)\nmore' })]);
    assert.match(item.label, / {2}…costs \\\$\(x\)⏎more$/);
    assert.equal(beamText(beam('', 0)), '(end of text)');
    assert.equal(beamText(beam('y', 0, { label: '…y' })), '…y');
  });

  it('survives an empty beam and all-zero scores', () => {
    const [item] = toBeamItems([beam('', 0)]);
    assert.equal(item.label, '·········· 0.00  (end of text)');
    assert.deepEqual(toBeamItems([]), []);
  });
});

describe('nextWeaveOptions', () => {
  const picked = beam(' there was a girl', 1);

  it('weaves again afresh, not from the cache that gave the same beams', () => {
    assert.deepEqual(nextWeaveOptions('again', {}), { fresh: true });
  });

  it('weaves deeper: beams twice as long', () => {
    assert.deepEqual(nextWeaveOptions('deeper', {}), { deeper: true });
  });

  it("weaves from a beam: the story plus the beam's text, inserted later with each new beam", () => {
    assert.deepEqual(nextWeaveOptions('from', {}, picked), { after: ' there was a girl' });
  });

  it('stays after the beam it was woven from when woven again or deeper', () => {
    const fromBeam = { after: ' there' };
    assert.deepEqual(nextWeaveOptions('again', fromBeam), { fresh: true, after: ' there' });
    assert.deepEqual(nextWeaveOptions('deeper', fromBeam), { deeper: true, after: ' there' });
    // A beam of that weave already starts with ` there`.
    assert.deepEqual(nextWeaveOptions('from', fromBeam, beam(' there was', 1)), { after: ' there was' });
  });

  it('steps N more tokens on a beam: after its text, beams N tokens long', () => {
    assert.deepEqual(nextWeaveOptions('stepMore', {}, picked, 4), { after: ' there was a girl', depth: 4 });
    // From a list that was itself woven after a beam: the row's text already holds it.
    assert.deepEqual(nextWeaveOptions('stepMore', { after: ' there' }, beam(' there was', 1), 64), {
      after: ' there was',
      depth: 64,
    });
  });

  it('steps from the healed text the row inserts, not the raw model text', () => {
    const healed = beam(' there', 1, { insertText: 'there' });
    assert.deepEqual(nextWeaveOptions('stepMore', {}, healed, 2), { after: 'there', depth: 2 });
  });
});

describe('the number of tokens to step on', () => {
  it('takes a whole number from 1 to 64, spaces around it allowed', () => {
    assert.equal(DEFAULT_STEPS, 4);
    for (const [text, steps] of [['1', 1], ['4', 4], [' 16 ', 16], ['64', 64]] as const) {
      assert.equal(stepsProblem(text), undefined, text);
      assert.equal(parseSteps(text), steps, text);
    }
  });

  it('says what is wrong with anything else, and parses it to nothing', () => {
    for (const text of ['', '0', '65', '1000', '-3', '2.5', '1e2', 'four', '0x10', '4 tokens']) {
      assert.match(stepsProblem(text) ?? '', /1 to 64/, text);
      assert.equal(parseSteps(text), undefined, text);
    }
  });
});

describe('pickTitle', () => {
  it('shows the speed line, and the beam a weave continues from', () => {
    assert.equal(pickTitle({ speedLine: '3 suggestions in 0.2 s' }), 'LLooM: 3 suggestions in 0.2 s');
    assert.equal(
      pickTitle({ speedLine: 'fast', after: ' there was\na girl' }),
      'LLooM after “ there was⏎a girl”: fast',
    );
  });

  it('keeps the end of a long beam, where the weave goes on', () => {
    const title = pickTitle({ speedLine: 'x', after: 'a'.repeat(50) + ' the end' });
    assert.equal(title, `LLooM after “…${'a'.repeat(31)} the end”: x`);
  });
});
