/**
 * package.json's commands, keybindings and activation against the code and the README:
 * a command contributed but never registered, or bound but never documented, fails here.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { DEFAULT_LANGUAGES } from '../src/core/languages';
import { LEVELS, levelColor } from '../src/core/shading';

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
    colors: { id: string; description: string; defaults: Record<string, string> }[];
    configurationDefaults: Record<string, Record<string, unknown>>;
  };
}

const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Manifest;
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const sources = readdirSync(path.join(ROOT, 'src'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => readFileSync(path.join(ROOT, 'src', f), 'utf8'))
  .join('\n');

function pythonFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return name === '__pycache__' ? [] : pythonFiles(file);
    return name.endsWith('.py') ? [file] : [];
  });
}

const INLINE = [
  'editor.action.inlineSuggest.acceptNextWord',
  'editor.action.inlineSuggest.acceptNextLine',
  // VS Code's showNext/showPrevious, with a message that says which beam shows.
  'lloom.nextBeam',
  'lloom.previousBeam',
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
    // vscode-languageclient registers every command the server's executeCommandProvider
    // lists; a contributed command of the same name makes the client fail to start.
    const server = path.join(ROOT, '..', '..', 'lloom_lsp');
    const names = new Set(['lloom.weave', 'lloom.accept', 'lloom.cancel', 'lloom.tree', 'lloom.saveTree', 'lloom.loadTree', 'lloom.spans', 'lloom.showContext']);
    if (existsSync(server)) {
      for (const file of pythonFiles(server)) {
        for (const m of readFileSync(file, 'utf8').matchAll(/@server\.command\("([^"]+)"\)/g)) names.add(m[1]);
      }
    }
    for (const { command } of manifest.contributes.commands) assert.ok(!names.has(command), command);
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

describe('colours', () => {
  it('contributes a theme colour for every shading level, for every kind of theme', () => {
    for (const level of LEVELS) {
      const colour = manifest.contributes.colors.find((c) => c.id === levelColor(level));
      assert.ok(colour, `${levelColor(level)} is not contributed`);
      assert.ok(colour.description.length > 0);
      for (const kind of ['dark', 'light', 'highContrast', 'highContrastLight']) {
        // Translucent (#rrggbbaa): the text and the selection show through.
        assert.match(colour.defaults[kind] ?? '', /^#[0-9a-f]{6}[0-9a-f]{2}$/i, `${colour.id} ${kind}`);
      }
    }
  });

  it('tints the less probable levels more strongly', () => {
    const alpha = (level: string, kind: string) =>
      parseInt(manifest.contributes.colors.find((c) => c.id === levelColor(level as 'low'))!.defaults[kind].slice(7), 16);
    for (const kind of ['dark', 'light', 'highContrast', 'highContrastLight']) {
      assert.ok(alpha('low', kind) > alpha('medium', kind) && alpha('medium', kind) > alpha('faint', kind), kind);
    }
  });
});

/** sRGB channels of `#rrggbb`. */
function rgb(hex: string): number[] {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

/** `#rrggbbaa` drawn over the opaque `background`. */
function over(colour: string, background: string): number[] {
  const alpha = parseInt(colour.slice(7, 9), 16) / 255;
  const bg = rgb(background);
  return rgb(colour).map((c, i) => c * alpha + bg[i] * (1 - alpha));
}

/** WCAG 2 contrast ratio of two sRGB colours. */
function contrast(a: number[], b: number[]): number {
  const luminance = (c: number[]) => {
    const [r, g, bl] = c.map((v) => (v / 255 <= 0.03928 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

describe('shading on the default themes', () => {
  // Editor background and text of VS Code's default theme of each kind (Dark Modern's
  // editor is #1f1f1f; Dark+ #1e1e1e).
  const THEMES: Record<string, { background: string; text: string }> = {
    dark: { background: '#1e1e1e', text: '#d4d4d4' },
    light: { background: '#ffffff', text: '#000000' },
    highContrast: { background: '#000000', text: '#ffffff' },
    highContrastLight: { background: '#ffffff', text: '#292929' },
  };

  it('stands out from the background even at the faintest level (issue 22: "a faint peach")', () => {
    for (const level of LEVELS) {
      const colour = manifest.contributes.colors.find((c) => c.id === levelColor(level))!;
      for (const [kind, theme] of Object.entries(THEMES)) {
        const shaded = over(colour.defaults[kind], theme.background);
        const bg = rgb(theme.background);
        // Euclidean sRGB distance: the old faint light tint (#bc4c0012) was 22 from white.
        const distance = Math.hypot(...shaded.map((c, i) => c - bg[i]));
        assert.ok(distance >= 45, `${colour.id} on ${kind}: ${distance.toFixed(0)} from the background`);
      }
    }
  });

  it('keeps the text on it readable (WCAG AA, 4.5:1)', () => {
    for (const level of LEVELS) {
      const colour = manifest.contributes.colors.find((c) => c.id === levelColor(level))!;
      for (const [kind, theme] of Object.entries(THEMES)) {
        const ratio = contrast(over(colour.defaults[kind], theme.background), rgb(theme.text));
        assert.ok(ratio >= 4.5, `${colour.id} on ${kind}: text contrast ${ratio.toFixed(2)}`);
      }
    }
  });
});

describe('editor defaults', () => {
  it("wraps words in the languages LLooM weaves in, so a paragraph and an inserted beam stay in view", () => {
    for (const language of DEFAULT_LANGUAGES) {
      assert.equal(manifest.contributes.configurationDefaults[`[${language}]`]?.['editor.wordWrap'], 'on', language);
    }
  });
});

describe('packaging', () => {
  it('ships the third-party notices, with the full EPL-2.0 of the Graphviz the Threads view bundles', () => {
    const ignore = readFileSync(path.join(ROOT, '.vscodeignore'), 'utf8').split('\n');
    assert.ok(ignore.includes('!ThirdPartyNotices.txt'), '.vscodeignore ships ThirdPartyNotices.txt');
    const notices = readFileSync(path.join(ROOT, 'ThirdPartyNotices.txt'), 'utf8');
    assert.match(notices, /Eclipse Public License - v 2\.0/);
    assert.match(notices, /Exhibit A - Form of Secondary Licenses Notice/);
    const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version: string }>;
    };
    // The versions named must be the ones bundled: a dependency update updates the notices.
    for (const name of ['@viz-js/viz', 'vscode-languageclient', 'vscode-jsonrpc', 'minimatch', 'semver']) {
      const { version } = lock.packages[`node_modules/${name}`];
      const shown = name === '@viz-js/viz' ? `Viz.js ${version}` : `${name} ${version}`;
      assert.ok(notices.includes(shown), `ThirdPartyNotices.txt names ${shown}`);
    }
  });

  it('has a 128x128 PNG icon', () => {
    assert.equal(manifest.icon, 'images/icon.png');
    const png = readFileSync(path.join(ROOT, manifest.icon));
    assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
    assert.equal(png.readUInt32BE(16), 128);
    assert.equal(png.readUInt32BE(20), 128);
  });
});
