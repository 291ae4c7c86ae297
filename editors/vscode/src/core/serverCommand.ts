/**
 * Which program to start as the language server.
 *
 * Pure apart from the injected file check, so it runs under plain node: no `vscode`
 * import.  Order: the `lloom.server.command` setting, then `lloom-lsp` on PATH, then
 * `python -m lloom_lsp` with the Python extension's interpreter, then `python3`.
 */
import * as path from 'node:path';

export type CommandSource = 'setting' | 'path' | 'python-extension' | 'python';

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

/** The full path of `name` on PATH, or undefined.  Names with a slash are not searched. */
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
    if (!dir) continue;
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

export interface ResolveInputs {
  /** The raw `lloom.server.command` value. */
  configured: unknown;
  /** The Python extension's interpreter for this workspace, if it is installed and has one. */
  pythonInterpreter?: string;
}

export function resolveServerCommand(inputs: ResolveInputs, environment: Environment): ServerCommand {
  const configured = configuredCommand(inputs.configured, environment.homedir);
  if (configured) {
    return { command: configured[0], args: configured.slice(1), source: 'setting' };
  }
  const onPath = findOnPath('lloom-lsp', environment);
  if (onPath) {
    return { command: onPath, args: [], source: 'path' };
  }
  if (inputs.pythonInterpreter) {
    return { command: inputs.pythonInterpreter, args: ['-m', 'lloom_lsp'], source: 'python-extension' };
  }
  const python = environment.platform === 'win32' ? 'python' : 'python3';
  return { command: python, args: ['-m', 'lloom_lsp'], source: 'python' };
}

/** The command line as a user would type it, for logs and error messages. */
export function describeCommand(cmd: ServerCommand): string {
  const quote = (s: string) => (/^[\w@%+=:,./\\-]+$/.test(s) ? s : JSON.stringify(s));
  return [cmd.command, ...cmd.args].map(quote).join(' ');
}
