/** The server's stderr lines as log records. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseServerLogLine } from '../src/core/serverLog';

describe('parseServerLogLine', () => {
  it('reads the level of a Python logging record and drops the timestamp', () => {
    assert.deepEqual(
      parseServerLogLine('2026-11-25 12:52:20,795 INFO lloom_lsp.server.lifecycle: started', undefined),
      { level: 'info', text: 'lloom_lsp.server.lifecycle: started' },
    );
    assert.equal(parseServerLogLine('2026-11-25 12:52:20,795 WARNING x', 'info').level, 'warn');
    assert.equal(parseServerLogLine('CRITICAL: boom', 'info').level, 'error');
    assert.equal(parseServerLogLine('DEBUG x', undefined).level, 'debug');
  });

  it('files a continuation line under the record it continues', () => {
    assert.deepEqual(parseServerLogLine('  File "x.py", line 3', 'error'), { level: 'error', text: '  File "x.py", line 3' });
    assert.equal(parseServerLogLine('more detail', 'info').level, 'info');
  });

  it('treats text before any record as an error', () => {
    assert.equal(parseServerLogLine('lloom-lsp: error: unrecognized arguments: --stdio', undefined).level, 'error');
  });

  it('does not take a level word inside a message for a level', () => {
    assert.equal(parseServerLogLine('the INFO key was missing', 'warn').level, 'warn');
  });
});
