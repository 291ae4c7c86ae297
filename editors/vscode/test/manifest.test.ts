/**
 * package.json's commands, keybindings and activation against the code and the README:
 * a command contributed but never registered, or bound but never documented, fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { DEFAULT_LANGUAGES } from '../src/core/languages';

// Compiled to out/test/, two levels below the extension's root.
const ROOT = path.resolve(__dirname, '..', '..');

interface Keybinding {
  command: string;
  key: string;
  mac?: string;
  when?: string;
}

interface Manifest {
  activationEvents: string[];
  icon?: string;
  categories: string[];
  contributes: {
    commands: { command: string; title: string; category?: string }[];
    keybindings: Keybinding[];
    menus: { commandPalette: { command: string; when?: string }[] };
  };
}

const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Manifest;
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const sources = readdirSync(path.join(ROOT, 'src'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => readFileSync(path.join(ROOT, 'src', f), 'utf8'))
  .join('\n');

const INLINE = [
  'editor.action.inlineSuggest.acceptNextWord',
  'editor.action.inlineSuggest.acceptNextLine',
  'editor.action.inlineSuggest.showNext',
  'editor.action.inlineSuggest.showPrevious',
];

describe('activation', () => {
  it("activates on LLooM's default languages and its commands, not on every window", () => {
    const events = manifest.activationEvents;
    for (const language of DEFAULT_LANGUAGES) assert.ok(events.includes(`onLanguage:${language}`), language);
    assert.ok(!events.includes('onStartupFinished'));
    assert.ok(!events.includes('*'));
    assert.ok(events.includes('onCommand:lloom.weaveAtCursor'));
  });
});

describe('commands', () => {
  it('registers every contributed command in the code', () => {
    for (const { command } of manifest.contributes.commands) {
      assert.ok(
        sources.includes(`'${command}'`) || (command === 'lloom.showMenu' && sources.includes('MENU_COMMAND')),
        `${command} is contributed but never registered`,
      );
    }
  });

  it("never takes the server's own command names, which the client registers for them", () => {
    for (const { command } of manifest.contributes.commands) {
      assert.ok(!['lloom.weave', 'lloom.accept', 'lloom.cancel'].includes(command), command);
    }
  });

  it('documents every command and keybinding in the README', () => {
    for (const { command } of manifest.contributes.commands) assert.ok(readme.includes(command), command);
    for (const { command } of manifest.contributes.keybindings) assert.ok(readme.includes(command), command);
  });
});

describe('keybindings', () => {
  it('binds accept word, accept line and cycling through beams', () => {
    const bound = manifest.contributes.keybindings.map((k) => k.command);
    for (const command of INLINE) assert.ok(bound.includes(command), command);
  });

  it('binds them only in editors LLooM is active in, while a suggestion shows', () => {
    for (const binding of manifest.contributes.keybindings.filter((k) => INLINE.includes(k.command))) {
      assert.match(binding.when ?? '', /\blloom\.active\b/, binding.command);
      assert.match(binding.when ?? '', /\binlineSuggestionVisible\b/, binding.command);
    }
  });
});

describe('packaging', () => {
  it('has a 128x128 PNG icon', () => {
    assert.equal(manifest.icon, 'images/icon.png');
    const png = readFileSync(path.join(ROOT, manifest.icon));
    assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
    assert.equal(png.readUInt32BE(16), 128);
    assert.equal(png.readUInt32BE(20), 128);
  });
});
