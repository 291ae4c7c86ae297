/** The status bar from the server's lloom/status notifications. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { StatusModel, parseWeaveStatus } from '../src/core/weaveStatus';

const A = 'file:///a.txt';
const B = 'file:///b.md';

function running(): StatusModel {
  const model = new StatusModel();
  model.setServer('ready');
  return model;
}

describe('parseWeaveStatus', () => {
  it('reads uri, state and message', () => {
    assert.deepEqual(parseWeaveStatus({ uri: A, state: 'done', message: '3 suggestions in 0.2 s' }), {
      uri: A,
      state: 'done',
      message: '3 suggestions in 0.2 s',
    });
    assert.deepEqual(parseWeaveStatus({ uri: A, state: 'weaving' }), { uri: A, state: 'weaving', message: '' });
  });

  it('ignores what it cannot read', () => {
    for (const raw of [null, 'done', { uri: A, state: 'odd' }, { state: 'done' }, [A, 'done']]) {
      assert.equal(parseWeaveStatus(raw), undefined, JSON.stringify(raw));
    }
  });
});

describe('StatusModel', () => {
  it('shows a weave from any source (inline, completion, prefetch) while it runs', () => {
    const model = running();
    model.onWeave({ uri: A, state: 'weaving', message: '' });
    assert.ok(model.isWeaving);
    assert.equal(model.view().text, '$(loading~spin) LLooM: weaving…');
    model.onWeave({ uri: A, state: 'done', message: '4 suggestions in 0.3 s @ 80 tok/s' });
    assert.ok(!model.isWeaving);
    assert.equal(model.view().text, '$(check) LLooM: 4 suggestions in 0.3 s @ 80 tok/s');
    assert.match(model.view().tooltip, /Last weave: 4 suggestions/);
  });

  it("drops a stale failure on the server's idle, and leaves a running weave running", () => {
    const model = running();
    model.onWeave({ uri: A, state: 'weaving', message: '' });
    model.onWeave({ uri: A, state: 'failed', message: 'cannot connect' });
    assert.equal(model.view().background, 'warning');
    model.onWeave({ uri: B, state: 'weaving', message: '' });
    model.onWeave({ uri: A, state: 'idle', message: 'settings changed' });
    assert.equal(model.view().background, undefined);
    assert.doesNotMatch(model.view().tooltip, /failed/);
    assert.ok(model.isWeaving, "B's weave still runs");
  });

  it('keeps weaving until every weave has ended', () => {
    const model = running();
    model.onWeave({ uri: A, state: 'weaving', message: '' });
    model.onWeave({ uri: B, state: 'weaving', message: '' });
    model.onWeave({ uri: A, state: 'cancelled', message: '' });
    assert.ok(model.isWeaving);
    model.onWeave({ uri: B, state: 'done', message: 'fast' });
    assert.ok(!model.isWeaving);
    // An end without a start (a notification from before a restart) never goes negative.
    model.onWeave({ uri: B, state: 'done', message: 'again' });
    model.onWeave({ uri: B, state: 'weaving', message: '' });
    assert.ok(model.isWeaving);
  });

  it('shows a failed weave until the next one succeeds, without a pop-up of its own', () => {
    const model = running();
    model.onWeave({ uri: A, state: 'weaving', message: '' });
    model.onWeave({ uri: A, state: 'failed', message: 'backend http://127.0.0.1:8080 failed' });
    const view = model.view();
    assert.equal(view.text, '$(warning) LLooM');
    assert.equal(view.background, 'warning');
    assert.match(view.tooltip, /Last weave failed: backend http/);
    model.onWeave({ uri: A, state: 'weaving', message: '' });
    model.onWeave({ uri: A, state: 'done', message: 'ok' });
    assert.equal(model.view().background, undefined);
  });

  it("shows the server's progress message while a slow weave runs, not just 'weaving…'", () => {
    const model = running();
    model.onWeave({ uri: A, state: 'weaving', message: '' });
    model.onWeave({ uri: A, state: 'progress', message: 'evaluating the story (812 tokens)' });
    assert.equal(model.view().text, '$(loading~spin) LLooM: evaluating the story (812 tokens)');
    assert.match(model.view().tooltip, /Weaving: evaluating the story/);
    // A progress message sent as another `weaving` updates the weave; it is not a second one.
    model.onWeave({ uri: A, state: 'weaving', message: '3 of 12 beams' });
    assert.equal(model.view().text, '$(loading~spin) LLooM: 3 of 12 beams');
    model.onWeave({ uri: A, state: 'done', message: '12 suggestions in 9.1 s' });
    assert.ok(!model.isWeaving, 'one done ends the one weave');
    assert.equal(model.view().text, '$(check) LLooM: 12 suggestions in 9.1 s');
    // A late progress message of an ended weave does not start one.
    model.onWeave({ uri: A, state: 'progress', message: '12 of 12 beams' });
    assert.ok(!model.isWeaving);
  });

  it('starts with the message a weave starts with, and forgets it when the weave ends', () => {
    const model = running();
    model.onWeave({ uri: A, state: 'weaving', message: 'waiting for a busy server' });
    assert.equal(model.view().text, '$(loading~spin) LLooM: waiting for a busy server');
    model.onWeave({ uri: A, state: 'cancelled', message: '' });
    model.onWeave({ uri: A, state: 'weaving', message: '' });
    assert.equal(model.view().text, '$(loading~spin) LLooM: weaving…');
  });

  it('clears a failure when the settings change (a fixed URL is not still failing)', () => {
    const model = running();
    model.onWeave({ uri: A, state: 'done', message: 'before' });
    model.onWeave({ uri: A, state: 'weaving', message: '' });
    model.onWeave({ uri: A, state: 'failed', message: 'cannot reach http://127.0.0.1:9' });
    assert.equal(model.view().background, 'warning');
    model.settingsChanged();
    const view = model.view();
    assert.equal(view.background, undefined);
    assert.doesNotMatch(view.tooltip, /failed/);
    assert.equal(view.text, '$(check) LLooM: before');
  });

  it('a cancelled weave keeps the last speed line', () => {
    const model = running();
    model.onWeave({ uri: A, state: 'done', message: 'first' });
    model.onWeave({ uri: A, state: 'weaving', message: '' });
    model.onWeave({ uri: A, state: 'cancelled', message: '' });
    assert.equal(model.view().text, '$(check) LLooM: first');
  });

  it('forgets running weaves when the server stops or restarts', () => {
    const model = running();
    model.onWeave({ uri: A, state: 'weaving', message: '' });
    model.setServer('starting');
    assert.ok(!model.isWeaving);
    model.setServer('error', 'The server stopped.');
    const view = model.view();
    assert.equal(view.text, '$(error) LLooM');
    assert.equal(view.background, 'error');
    assert.match(view.tooltip, /The server stopped\./);
    assert.match(view.tooltip, /Click for the LLooM menu/);
  });
});
