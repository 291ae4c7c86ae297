/** "Next beam" on the ghost text: which beam shows, and what the status bar says. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BeamCycle, beamAnnouncement, sharedStart } from '../src/core/beamCycle';

const START = ' She climbed the hundred and twelve steps to the top, and ';
const BEAMS = [START + 'looked down.', START + 'looked back.', ' The door opened.'];

describe('beamAnnouncement', () => {
  it('says which beam of how many, and its beginning', () => {
    assert.equal(beamAnnouncement(BEAMS, 2), 'beam 3 of 3: “The door opened.”');
  });

  it('says where a beam differs from the one shown before, when they share a long start', () => {
    const said = beamAnnouncement(BEAMS, 1, 0);
    assert.match(said, /^beam 2 of 3: “She climbed the hundred and twelve steps to the…”/);
    assert.match(said, / · differs after “…top, and looked ”: “back\.”$/);
  });

  it('says nothing of a difference between beams that differ from the start', () => {
    assert.equal(beamAnnouncement(BEAMS, 2, 1), 'beam 3 of 3: “The door opened.”');
  });

  it('shows line breaks as symbols, and an empty beam as such', () => {
    assert.equal(beamAnnouncement(['a\nb', ''], 0), 'beam 1 of 2: “a⏎b”');
    assert.equal(beamAnnouncement(['a\nb', ''], 1), 'beam 2 of 2: “(empty)”');
  });

  it('never splits a surrogate pair where beams differ', () => {
    assert.equal(sharedStart('x\u{1F600}', 'x\u{1F601}'), 1);
  });
});

describe('BeamCycle', () => {
  it('steps through the distinct beams with wrap-around, both ways', () => {
    const cycle = new BeamCycle();
    cycle.onItems('k', [...BEAMS, BEAMS[0]]);
    assert.deepEqual(cycle.shown, { index: 0, count: 3 });
    assert.match(cycle.step(1, 'k')!, /^beam 2 of 3/);
    assert.match(cycle.step(1, 'k')!, /^beam 3 of 3/);
    assert.match(cycle.step(1, 'k')!, /^beam 1 of 3/);
    assert.match(cycle.step(-1, 'k')!, /^beam 3 of 3/);
  });

  it('keeps the beam on show when the same list comes again at the same place', () => {
    const cycle = new BeamCycle();
    cycle.onItems('k', BEAMS);
    cycle.step(1, 'k');
    cycle.onItems('k', BEAMS); // VS Code asks again when the writer first cycles
    assert.match(cycle.step(1, 'k')!, /^beam 3 of 3/);
    cycle.onItems('k', BEAMS.slice(0, 2)); // another list: from its first beam
    assert.match(cycle.step(1, 'k')!, /^beam 2 of 2/);
  });

  it('says nothing for another place or version (the text changed since the list came)', () => {
    const cycle = new BeamCycle();
    assert.equal(cycle.step(1), undefined, 'no list yet');
    cycle.onItems('file:///a.txt@3:0:17', BEAMS);
    assert.equal(cycle.step(1, 'file:///a.txt@4:0:18'), undefined);
    assert.deepEqual(cycle.shown, { index: 0, count: 3 }, 'a refused step moves nothing');
  });
});
