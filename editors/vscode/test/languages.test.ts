/** The document selector from `lloom.languages`. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DEFAULT_LANGUAGES, documentSelector, matchesSelector, normalizeLanguages } from '../src/core/languages';

describe('languages', () => {
  it('defaults to plaintext and markdown', () => {
    assert.deepEqual(DEFAULT_LANGUAGES, ['plaintext', 'markdown']);
    for (const v of [undefined, 'markdown', [], ['', '  '], [3]]) {
      assert.deepEqual(normalizeLanguages(v), ['plaintext', 'markdown']);
    }
  });

  it('trims and drops duplicates', () => {
    assert.deepEqual(normalizeLanguages([' latex', 'latex', 'markdown']), ['latex', 'markdown']);
  });

  it('selects files and untitled buffers of each language', () => {
    assert.deepEqual(documentSelector(['plaintext']), [
      { language: 'plaintext', scheme: 'file' },
      { language: 'plaintext', scheme: 'untitled' },
    ]);
  });

  it('matches documents the way the selector does', () => {
    const doc = (languageId: string, scheme: string) => ({ languageId, uri: { scheme } });
    assert.ok(matchesSelector(doc('markdown', 'untitled'), ['markdown']));
    assert.ok(!matchesSelector(doc('markdown', 'git'), ['markdown']));
    assert.ok(!matchesSelector(doc('python', 'file'), ['markdown']));
  });
});
