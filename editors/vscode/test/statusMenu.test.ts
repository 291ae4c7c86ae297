/** The status bar menu. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { statusMenuItems, toggleTarget } from '../src/core/statusMenu';

describe('statusMenuItems', () => {
  it('offers to cancel only while a weave runs', () => {
    const idle = statusMenuItems({ weaving: false, inlineAutomatic: false });
    assert.ok(!idle.some((i) => i.action === 'cancel'));
    const busy = statusMenuItems({ weaving: true, inlineAutomatic: false });
    assert.equal(busy[0].action, 'cancel');
  });

  it('says what the toggle will do', () => {
    const off = statusMenuItems({ weaving: false, inlineAutomatic: false }).find((i) => i.action === 'toggleInline');
    const on = statusMenuItems({ weaving: false, inlineAutomatic: true }).find((i) => i.action === 'toggleInline');
    assert.match(off!.label, /Turn On Automatic Inline Suggestions/);
    assert.match(on!.label, /Turn Off Automatic Inline Suggestions/);
  });

  it('always has the log and a restart', () => {
    const actions = statusMenuItems({ weaving: false, inlineAutomatic: false }).map((i) => i.action);
    assert.ok(actions.includes('showLog'));
    assert.ok(actions.includes('restart'));
    assert.ok(actions.includes('weave'));
  });
});

describe('toggleTarget', () => {
  it('writes where the value in force comes from, so the toggle takes effect', () => {
    assert.equal(toggleTarget({ workspaceFolderValue: true, workspaceValue: false, globalValue: false }), 'folder');
    assert.equal(toggleTarget({ workspaceValue: false, globalValue: true }), 'workspace');
    assert.equal(toggleTarget({ globalValue: true }), 'global');
    assert.equal(toggleTarget({}), 'global');
  });
});
