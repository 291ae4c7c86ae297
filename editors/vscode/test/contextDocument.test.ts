/**
 * "LLooM: Show Context": the server's answer read, and the read-only document's URI made
 * from the story's (its tab's name, one per story, and the way back to the story).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  CONTEXT_SCHEME,
  ContextError,
  baseName,
  contextArguments,
  contextUri,
  parseContextResult,
  placeholderText,
  storyUri,
} from '../src/core/contextDocument';

/** An answer as lloom.showContext gives it (context.py's show_context). */
const ANSWER = {
  prompt: 'Memory.\n\nOnce upon a time,',
  held: ' ',
  memory: 'Memory.',
  memorySource: 'front matter',
  note: '',
  noteDepth: 3,
  window: 'Once upon a time,',
  tokens: 9,
  contextTokens: 4096,
  backend: 'http://127.0.0.1:8080',
  problem: '',
  text: 'LLooM context: file:///s.txt at line 1, column 18\nBackend: http://127.0.0.1:8080: 9 tokens of 4096 in its context\n──── the prompt, exactly as sent ────\nMemory.\n\nOnce upon a time,',
};

describe('parseContextResult', () => {
  it('keeps the rendered text word for word, and the counts', () => {
    const result = parseContextResult(ANSWER);
    assert.equal(result.text, ANSWER.text);
    assert.equal(result.prompt, ANSWER.prompt);
    assert.equal(result.tokens, 9);
    assert.equal(result.contextTokens, 4096);
    assert.equal(result.problem, '');
  });

  it('reads null counts (a backend that cannot count) as null', () => {
    const result = parseContextResult({ ...ANSWER, tokens: null, contextTokens: null, problem: 'bad YAML' });
    assert.equal(result.tokens, null);
    assert.equal(result.contextTokens, null);
    assert.equal(result.problem, 'bad YAML');
  });

  it('refuses an answer without the text to show', () => {
    for (const raw of [null, undefined, [], 'text', { ...ANSWER, text: 3 }, { prompt: 'p' }]) {
      assert.throws(() => parseContextResult(raw), ContextError, JSON.stringify(raw));
    }
  });
});

describe('contextArguments', () => {
  it('sends the uri and a plain LSP position', () => {
    const position = { line: 2, character: 5, extra: 'not sent' };
    assert.deepEqual(contextArguments('file:///s.txt', position), ['file:///s.txt', { line: 2, character: 5 }]);
  });
});

describe('the context document', () => {
  it("is named after the story's file, decoded", () => {
    assert.equal(baseName('file:///home/me/story.txt'), 'story.txt');
    assert.equal(baseName('file:///home/me/my%20story%C3%A9.md'), 'my storyé.md');
    assert.equal(baseName('untitled:Untitled-1'), 'Untitled-1');
    assert.equal(baseName('file:///c%3A/tales/a.txt?x=1#frag'), 'a.txt');
    assert.equal(baseName('file:///bad%E0%A4%A.txt'), 'bad%E0%A4%A.txt');
    assert.equal(baseName('file:///'), 'document');
  });

  it('has a URI of its own scheme whose tab reads "<name> context"', () => {
    const uri = contextUri('file:///home/me/story.txt');
    assert.equal(uri.scheme, CONTEXT_SCHEME);
    assert.equal(uri.path, '/story.txt context');
    assert.equal(uri.path.split('/').at(-1), 'story.txt context');
  });

  it('is one per story: two stories of one name get two documents', () => {
    const a = contextUri('file:///a/story.txt');
    const b = contextUri('file:///b/story.txt');
    assert.equal(a.path, b.path);
    assert.notDeepEqual(a, b);
  });

  it('leads back to its story, and other URIs lead nowhere', () => {
    assert.equal(storyUri(contextUri('file:///a/my%20story.txt')), 'file:///a/my%20story.txt');
    assert.equal(storyUri({ scheme: 'file', query: 'file:///a/story.txt' }), undefined);
    assert.equal(storyUri({ scheme: CONTEXT_SCHEME, query: '' }), undefined);
  });

  it('asks for the command before it has been run (a window restored later)', () => {
    const text = placeholderText('file:///a/story.txt');
    assert.match(text, /^LLooM context: file:\/\/\/a\/story\.txt\n/);
    assert.match(text, /LLooM: Show Context/);
  });
});
