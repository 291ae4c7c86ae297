#!/usr/bin/env node
/**
 * Fills `contributes.configuration` in package.json from the server's settings schema.
 *
 * The server's `config.py` is the one place a setting is declared; this script copies
 * `python -m lloom_lsp schema` into the shape VS Code wants, adds a `scope` to each
 * setting, and appends the settings only this client reads.  `--check` exits 1 when
 * package.json differs from what would be written, so CI catches a forgotten run.
 *
 * The interpreter is $PYTHON, else the repository's .venv, else `python3`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const extensionRoot = resolve(here, '..');
const repoRoot = resolve(extensionRoot, '..', '..');
const packagePath = join(extensionRoot, 'package.json');
const readmePath = join(extensionRoot, 'README.md');
const README_START = '<!-- settings:start -->';
const README_END = '<!-- settings:end -->';

/** Section titles, in the order the Settings editor shows them. */
const GROUP_TITLES = {
  backend: 'Backend',
  weave: 'Weave',
  story: 'Story',
  inline: 'Inline Suggestions',
  completion: 'Completion List',
  warmup: 'Warm-up',
  woven: 'Woven Text',
};

/*
 * Scopes.  Anything that picks an executable, a file, or which secret is sent is
 * `machine`: only user settings can set it, so opening a folder can never run a program
 * or mail an API key to a server of its choosing.  Other backend settings describe
 * the machine's model server but may be overridden per workspace.  How a weave grows
 * may differ per folder, so those are `resource`.
 */
const MACHINE = new Set([
  'lloom.backend.apiKeyEnv',
  'lloom.backend.modelPath',
  'lloom.backend.serverCommand',
]);

function scopeOf(key) {
  if (MACHINE.has(key)) return 'machine';
  if (key.startsWith('lloom.backend.')) return 'machine-overridable';
  return 'resource';
}

/** Settings the client reads itself; the server ignores them. */
const CLIENT_SETTINGS = {
  'lloom.server.command': {
    type: 'array',
    items: { type: 'string' },
    default: [],
    scope: 'machine',
    markdownDescription:
      'Command line that starts the language server, e.g. `["/path/to/venv/bin/lloom-lsp"]`. ' +
      'Empty: the server the extension ships, run by the Python extension\'s interpreter ' +
      '(trusted workspaces only) or `python3` on PATH, if it is 3.10 or newer; else ' +
      '`lloom-lsp` on PATH. Read from user settings only. A change restarts the server.',
  },
  'lloom.languages': {
    type: 'array',
    items: { type: 'string', minLength: 1 },
    uniqueItems: true,
    default: ['plaintext', 'markdown'],
    scope: 'window',
    markdownDescription:
      'Language identifiers of the documents LLooM weaves in (empty: `plaintext` and `markdown`). ' +
      'A change restarts the server.',
  },
  'lloom.trace.server': {
    type: 'string',
    enum: ['off', 'messages', 'verbose'],
    default: 'off',
    scope: 'window',
    description: 'Traces the communication between VS Code and the LLooM language server.',
  },
};

/** Keys whose value a workspace must not set while it is untrusted. */
const RESTRICTED = [
  'lloom.backend.url',
  'lloom.backend.apiKeyEnv',
  'lloom.backend.modelPath',
  'lloom.backend.serverCommand',
  'lloom.server.command',
];

function python() {
  if (process.env.PYTHON) return process.env.PYTHON;
  const venv = join(repoRoot, '.venv', process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
  return existsSync(venv) ? venv : 'python3';
}

function readSchema() {
  const interpreter = python();
  let out;
  try {
    out = execFileSync(interpreter, ['-m', 'lloom_lsp', 'schema'], {
      cwd: repoRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  } catch (err) {
    throw new Error(`could not run \`${interpreter} -m lloom_lsp schema\`: ${err.message}`, { cause: err });
  }
  return JSON.parse(out);
}

/** A server property as VS Code wants it: the schema's fields, plus scope and order. */
function toContribution(key, prop, order) {
  const out = { ...prop, scope: scopeOf(key), order };
  // The Settings editor renders Markdown only from markdownDescription.
  out.markdownDescription = prop.description;
  return out;
}

function buildConfiguration(schema) {
  const groups = new Map();
  let order = 0;
  for (const [key, prop] of Object.entries(schema.properties)) {
    const group = key.split('.')[1];
    if (!(group in GROUP_TITLES)) throw new Error(`no section title for settings group "${group}"`);
    if (!groups.has(group)) groups.set(group, {});
    groups.get(group)[key] = toContribution(key, prop, order++);
  }
  const sections = [...groups].map(([group, properties]) => ({
    id: `lloom.${group}`,
    title: GROUP_TITLES[group],
    properties,
  }));
  const client = Object.fromEntries(
    Object.entries(CLIENT_SETTINGS).map(([key, prop]) => [key, { ...prop, order: order++ }]),
  );
  sections.push({ id: 'lloom.client', title: 'Client', properties: client });
  return sections;
}

function render(pkg, schema) {
  const next = structuredClone(pkg);
  next.contributes = { ...next.contributes, configuration: buildConfiguration(schema) };
  next.capabilities = {
    ...next.capabilities,
    untrustedWorkspaces: {
      supported: 'limited',
      description: 'In an untrusted workspace, the backend URL and every setting that picks a program, a model file or an API key come from user settings only.',
      restrictedConfigurations: RESTRICTED,
    },
  };
  return JSON.stringify(next, null, 2) + '\n';
}

function cell(text) {
  return String(text).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function defaultText(value) {
  return value === '' ? '(empty)' : '`' + JSON.stringify(value) + '`';
}

function rangeText(prop) {
  if (prop.enum) return prop.enum.map((v) => '`' + v + '`').join(', ');
  if (prop.minimum !== undefined && prop.maximum !== undefined) return `${prop.minimum} to ${prop.maximum}`;
  return prop.type;
}

/** The README's settings table, between its markers. */
function renderReadme(readme, sections) {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) throw new Error(`README.md lacks ${README_START} ... ${README_END}`);
  const rows = ['| Setting | Default | Values | Description |', '| --- | --- | --- | --- |'];
  for (const section of sections) {
    for (const [key, prop] of Object.entries(section.properties)) {
      const text = prop.markdownDescription ?? prop.description;
      rows.push(`| \`${key}\` | ${cell(defaultText(prop.default))} | ${cell(rangeText(prop))} | ${cell(text)} |`);
    }
  }
  return readme.slice(0, start + README_START.length) + '\n' + rows.join('\n') + '\n' + readme.slice(end);
}

function main() {
  const check = process.argv.includes('--check');
  const schema = readSchema();
  const files = [];
  const currentPackage = readFileSync(packagePath, 'utf8');
  const wantedPackage = render(JSON.parse(currentPackage), schema);
  files.push([packagePath, currentPackage, wantedPackage]);
  const currentReadme = readFileSync(readmePath, 'utf8');
  files.push([readmePath, currentReadme, renderReadme(currentReadme, JSON.parse(wantedPackage).contributes.configuration)]);
  const stale = files.filter(([, current, wanted]) => current !== wanted);
  if (stale.length === 0) {
    console.log('package.json and README.md settings match the server schema');
    return;
  }
  const names = stale.map(([path]) => path.slice(extensionRoot.length + 1)).join(' and ');
  if (check) {
    console.error(`${names} out of date with the server settings schema: run \`npm run gen-settings\``);
    process.exitCode = 1;
    return;
  }
  for (const [path, , wanted] of stale) writeFileSync(path, wanted);
  console.log(`${names} updated from the server schema`);
}

main();
