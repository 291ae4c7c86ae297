/** When the client starts the server by itself. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { StartPolicy } from '../src/core/startPolicy';

describe('StartPolicy', () => {
  it('starts when a document is opened, until a start fails', () => {
    const policy = new StartPolicy();
    assert.ok(policy.mayStartOnOpen);
    policy.startFailed();
    assert.ok(!policy.mayStartOnOpen, 'a failed start is not repeated for every file opened');
  });

  it('tries again after a failed start once the server command changes', () => {
    const policy = new StartPolicy();
    policy.startFailed();
    assert.equal(policy.settingsChanged(true, false), 'start');
    assert.ok(policy.mayStartOnOpen, 'the next document opened may start it too');
  });

  it('restarts a client that exists, and ignores settings the server reads itself', () => {
    const policy = new StartPolicy();
    assert.equal(policy.settingsChanged(true, true), 'restart');
    assert.equal(policy.settingsChanged(false, true), 'none');
    policy.startFailed();
    assert.equal(policy.settingsChanged(false, false), 'none');
    assert.ok(!policy.mayStartOnOpen, 'an unrelated change does not lift the stop');
  });

  it('a restart or a successful start lifts the stop', () => {
    const policy = new StartPolicy();
    policy.startFailed();
    policy.restartRequested();
    assert.ok(policy.mayStartOnOpen);
    policy.startFailed();
    policy.started();
    assert.ok(policy.mayStartOnOpen);
  });
});
