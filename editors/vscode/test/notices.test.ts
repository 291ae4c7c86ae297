/** One plain-text message per failure. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { libraryNotification, plainText, startFailureText, weaveFailure } from '../src/core/notices';

describe('plainText', () => {
  it('turns code quotes into plain quotes', () => {
    assert.equal(plainText('set `lloom.server.command` or run `pip install x`'), 'set "lloom.server.command" or run "pip install x"');
    assert.equal(plainText('no quotes here'), 'no quotes here');
  });
});

describe('startFailureText', () => {
  it('says how to fix a missing server, without literal backticks', () => {
    const text = startFailureText('spawn lloom-lsp ENOENT', false);
    assert.match(text, /spawn lloom-lsp ENOENT/);
    assert.match(text, /Python 3\.10 or newer/);
    assert.ok(!/pip install lloom-lsp/.test(text), 'lloom-lsp is not on PyPI');
    assert.match(text, /lloom\.server\.command/);
    assert.ok(!text.includes('`'), text);
  });

  it("passes a bad setting's own message on, in plain text", () => {
    assert.equal(startFailureText('lloom.server.command must be a list of strings', true), 'lloom.server.command must be a list of strings');
    assert.ok(!startFailureText('the `x` setting', true).includes('`'));
  });
});

describe('libraryNotification', () => {
  it("silences the library's pop-up before the server ever ran: start() explains it", () => {
    assert.equal(libraryNotification('force', false), false);
    assert.equal(libraryNotification(true, false), false);
  });

  it("keeps the library's choice once the server has run (a crash after working)", () => {
    assert.equal(libraryNotification('force', true), 'force');
    assert.equal(libraryNotification(false, true), false);
    assert.equal(libraryNotification(undefined, true), undefined);
  });
});

describe('weaveFailure', () => {
  it('shows nothing more when the server has shown its own message (a dead backend)', () => {
    const failure = weaveFailure('backend failed', true);
    assert.equal(failure.show, undefined);
    assert.match(failure.log, /backend failed/);
  });

  it("shows the server's other errors once, as the server wrote them", () => {
    const failure = weaveFailure('document not open: file:///a.txt', true);
    assert.equal(failure.show, 'LLooM: document not open: file:///a.txt');
    assert.ok(!failure.show.includes('could not weave'));
  });

  it('shows a failure on the way, in plain text', () => {
    const failure = weaveFailure('lloom.weave: the server answered without `beams`', false);
    assert.equal(failure.show, 'LLooM: lloom.weave: the server answered without "beams"');
  });
});
