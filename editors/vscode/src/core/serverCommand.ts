/**
 * Which program to start as the language server.
 *
 * Pure apart from the injected file check, so it runs under plain node: no `vscode`
 * import.  The order of preference is documented on `resolveServerCommand`; the caller
 * (serverLaunch.ts) finds the Pythons and runs them once to learn their versions.
 */
import * as path from 'node:path';

export type CommandSource = 'setting' | 'bundled' | 'path' | 'python';

export interface ServerCommand {
  command: string;
  args: string[];
  source: CommandSource;
}

export class ServerCommandError extends Error {}

export interface Environment {
  platform: NodeJS.Platform;
  /** PATH, and on Windows PATHEXT. */
  env: Readonly<Record<string, string | undefined>>;
  homedir: string;
  /** True when `file` exists and may be executed. */
  isExecutable: (file: string) => boolean;
}

/** The full path of `name` on PATH's absolute entries, or undefined.  Names with a slash are not searched. */
export function findOnPath(name: string, environment: Environment): string | undefined {
  const { platform, env, isExecutable } = environment;
  const win = platform === 'win32';
  const fs = win ? path.win32 : path.posix;
  if (name.includes('/') || (win && name.includes('\\'))) {
    return isExecutable(name) ? name : undefined;
  }
  const pathVar = (win ? env.Path ?? env.PATH : env.PATH) ?? '';
  const exts = win
    ? ['', ...(env.PATHEXT ?? '.COM;.EXE;.BAT;.CMD').split(';').filter(Boolean)]
    : [''];
  for (const dir of pathVar.split(win ? ';' : ':')) {
    // A relative entry (`.`, `bin`) would be looked up from the extension host's working
    // directory, which may be the workspace: a repository must not choose the program.
    if (!dir || !fs.isAbsolute(dir)) continue;
    for (const ext of exts) {
      const candidate = fs.join(dir, name + ext);
      if (isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** `~` and `~/x` become the home directory; nothing else is expanded. */
export function expandHome(part: string, homedir: string): string {
  if (part === '~') return homedir;
  if (part.startsWith('~/') || part.startsWith('~\\')) return homedir + part.slice(1);
  return part;
}

/** The setting's value as a command line, or undefined when it asks for the default. */
export function configuredCommand(value: unknown, homedir: string): string[] | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const parts = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(parts) || !parts.every((p) => typeof p === 'string')) {
    throw new ServerCommandError('lloom.server.command must be a list of strings');
  }
  if (parts.length === 0) return undefined;
  if (parts[0].trim() === '') {
    throw new ServerCommandError('lloom.server.command: the first entry (the program) is empty');
  }
  return parts.map((p) => expandHome(p, homedir));
}

/** A Python interpreter that was found, and what it said when asked for its version. */
export interface FoundPython {
  /** The interpreter's path (or name, as found on PATH). */
  command: string;
  /** Where it came from, for messages: the Python extension, or PATH. */
  origin: 'python-extension' | 'path';
  /** `major.minor.micro`, or undefined when it did not answer. */
  version?: string;
  /** Why it did not answer (spawn error, exit status), when it did not. */
  problem?: string;
}

/** The oldest Python that lloom-lsp (pyproject's `requires-python`) runs on. */
export const MIN_PYTHON: readonly [number, number] = [3, 10];

/** `print(sys.version.split()[0])` output as a version, or undefined. */
export function parsePythonVersion(output: string): string | undefined {
  return /^\s*(\d+\.\d+\.\d+)/.exec(output)?.[1];
}

export function isSupportedPython(version: string | undefined): boolean {
  const [major, minor] = (version ?? '').split('.').map(Number);
  if (!Number.isInteger(major) || !Number.isInteger(minor)) return false;
  return major > MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor >= MIN_PYTHON[1]);
}

/** The interpreters to ask, in order: the Python extension's, then PATH's python3/python. */
export function pythonCandidates(
  fromExtension: string | undefined,
  environment: Environment,
): { command: string; origin: FoundPython['origin'] }[] {
  const names = environment.platform === 'win32' ? ['python', 'python3'] : ['python3', 'python'];
  const out: { command: string; origin: FoundPython['origin'] }[] = [];
  if (fromExtension) out.push({ command: fromExtension, origin: 'python-extension' });
  for (const name of names) {
    const found = findOnPath(name, environment);
    if (found && !out.some((c) => c.command === found)) out.push({ command: found, origin: 'path' });
  }
  return out;
}

export interface ResolveInputs {
  /** The raw `lloom.server.command` value (user settings only in an untrusted workspace). */
  configured: unknown;
  /** `bundled/tool/lsp_server.py`, when the .vsix carries the server in `bundled/libs`. */
  bundledServer?: string;
  /** The Pythons that were asked, in order of preference (see `pythonCandidates`). */
  pythons?: readonly FoundPython[];
}

/**
 * Which program to start, in this order:
 *
 * 1. `lloom.server.command`: the user's override, taken as it is.
 * 2. The server bundled in the .vsix, run by the first Python 3.10+ found: the one the
 *    Python extension selected (trusted workspaces only), else python3 on PATH.  It comes
 *    first because it is the version this extension was built and tested with.
 * 3. `lloom-lsp` on PATH: a server installed by hand, when no Python 3.10+ is found for
 *    the bundled one (the console script carries its own interpreter).
 * 4. `python -I -m lloom_lsp` with the first Python 3.10+: only when the extension has no
 *    bundled server (a build from source), for a Python that has lloom_lsp installed.
 *
 * Every Python runs isolated (`-I`): neither the working directory nor PYTHONPATH nor the
 * user's site-packages come onto `sys.path`, so no folder's `lloom_lsp/` can stand in.
 */
export function resolveServerCommand(inputs: ResolveInputs, environment: Environment): ServerCommand {
  const configured = configuredCommand(inputs.configured, environment.homedir);
  if (configured) {
    return { command: configured[0], args: configured.slice(1), source: 'setting' };
  }
  const pythons = inputs.pythons ?? [];
  const python = pythons.find((p) => isSupportedPython(p.version));
  if (inputs.bundledServer && python) {
    return { command: python.command, args: ['-I', inputs.bundledServer], source: 'bundled' };
  }
  const onPath = findOnPath('lloom-lsp', environment);
  if (onPath) {
    return { command: onPath, args: [], source: 'path' };
  }
  if (python) {
    return { command: python.command, args: ['-I', '-m', 'lloom_lsp'], source: 'python' };
  }
  throw new ServerCommandError(noPythonMessage(pythons));
}

/** Why no server could be started, naming every Python that was found and its version. */
export function noPythonMessage(pythons: readonly FoundPython[]): string {
  const found = pythons.map((p) => {
    const what = p.version ? `Python ${p.version}` : `a Python that did not answer (${p.problem ?? 'no version'})`;
    const where = p.origin === 'python-extension' ? "the Python extension's interpreter" : 'on PATH';
    return `${what} at ${p.command} (${where})`;
  });
  const need = `Python ${MIN_PYTHON.join('.')} or newer`;
  const saw = found.length > 0 ? `found only ${found.join('; ')}` : 'found no python3 on PATH';
  return (
    `LLooM runs its bundled language server with ${need}, and ${saw}. ` +
    `Install ${need} (or select one with the Python extension), ` +
    'or set lloom.server.command in your user settings.'
  );
}

/** How the server process is started: the command, and where and with what it runs. */
export interface ServerProcess {
  command: string;
  args: string[];
  options: { cwd: string; env: NodeJS.ProcessEnv };
}

/**
 * The process for `cmd`.  It always runs in `neutralDir` (a directory of the extension's
 * own, never a workspace folder), so that a relative path or a Python that puts its
 * working directory on `sys.path` cannot pick up a file that a cloned repository holds.
 */
export function serverProcess(cmd: ServerCommand, neutralDir: string, env: NodeJS.ProcessEnv): ServerProcess {
  return { command: cmd.command, args: [...cmd.args], options: { cwd: neutralDir, env: { ...env } } };
}

/** The command line as a user would type it, for logs and error messages. */
export function describeCommand(cmd: ServerCommand): string {
  const quote = (s: string) => (/^[\w@%+=:,./\\-]+$/.test(s) ? s : JSON.stringify(s));
  return [cmd.command, ...cmd.args].map(quote).join(' ');
}
