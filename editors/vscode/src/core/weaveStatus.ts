/**
 * The status bar's state: the server's, and the weaves it reports with `lloom/status`.
 *
 * Pure: no `vscode` import.  The server sends `lloom/status` at the start and the end of
 * every weave (completion, inline suggestion, code action, command, prefetch), so the
 * status bar shows weaves the client did not ask for itself.  While a weave runs, its
 * message says how far it is ("evaluating the story (812 tokens)", "3 of 12 beams"): a
 * `progress` state, or a `weaving` with a message while that document's weave runs,
 * updates the message without counting another weave.
 */

export const STATUS_NOTIFICATION = 'lloom/status';

/** `idle`: no weave runs or ended; the server dropped a failure the settings may have fixed. */
export type WeaveState = 'weaving' | 'progress' | 'done' | 'failed' | 'cancelled' | 'idle';

export interface WeaveStatus {
  uri: string;
  state: WeaveState;
  /** How far it is while weaving, the speed line when done, the error when failed. */
  message: string;
}

export type ServerState = 'stopped' | 'starting' | 'ready' | 'error';

const STATES: readonly string[] = ['weaving', 'progress', 'done', 'failed', 'cancelled', 'idle'];

/** The notification's params, or undefined when they are not a status. */
export function parseWeaveStatus(raw: unknown): WeaveStatus | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const { uri, state, message } = raw as Record<string, unknown>;
  if (typeof uri !== 'string' || typeof state !== 'string' || !STATES.includes(state)) return undefined;
  return { uri, state: state as WeaveState, message: typeof message === 'string' ? message : '' };
}

export interface StatusView {
  text: string;
  tooltip: string;
  background?: 'error' | 'warning';
}

const SERVER_ICONS: Record<ServerState, string> = {
  stopped: '$(circle-slash)',
  starting: '$(loading~spin)',
  ready: '$(check)',
  error: '$(error)',
};

export class StatusModel {
  private server: ServerState = 'stopped';
  private detail = '';
  /** Weaves running, per document: a document may have a prefetch and a request at once. */
  private readonly running = new Map<string, number>();
  /** The last progress message of each document's running weave. */
  private readonly progress = new Map<string, string>();
  private speedLine = '';
  private failure = '';

  setServer(state: ServerState, detail = ''): void {
    this.server = state;
    this.detail = detail;
    // A server that stopped or starts anew will not end the weaves it had.
    if (state !== 'ready') {
      this.running.clear();
      this.progress.clear();
    }
  }

  onWeave(status: WeaveStatus): void {
    if (status.state === 'idle') {
      this.failure = ''; // "settings changed": the next weave tells whether it still fails
      return;
    }
    const count = this.running.get(status.uri) ?? 0;
    // An update of a weave that runs: a server may send it as `progress`, or as another
    // `weaving` with a message (counting that as a new weave would spin forever).
    const update = status.state === 'progress' || (status.state === 'weaving' && status.message !== '' && count > 0);
    if (update) {
      if (count > 0 && status.message) this.progress.set(status.uri, status.message);
      return;
    }
    if (status.state === 'weaving') {
      this.running.set(status.uri, count + 1);
      if (status.message) this.progress.set(status.uri, status.message);
      else this.progress.delete(status.uri);
      return;
    }
    if (count > 1) this.running.set(status.uri, count - 1);
    else {
      this.running.delete(status.uri);
      this.progress.delete(status.uri);
    }
    if (status.state === 'done') {
      this.speedLine = status.message;
      this.failure = '';
    } else if (status.state === 'failed') {
      this.failure = status.message || 'the weave failed';
    }
  }

  /**
   * The settings changed: a failure they may have fixed (a wrong URL, a missing model)
   * is no longer news; the next weave tells whether it still fails.
   */
  settingsChanged(): void {
    this.failure = '';
  }

  get isWeaving(): boolean {
    return this.running.size > 0;
  }

  view(): StatusView {
    const lines = [`LLooM server: ${this.server}`];
    if (this.detail) lines.push(this.detail);
    let text: string;
    let background: StatusView['background'];
    if (this.server !== 'ready') {
      text = `${SERVER_ICONS[this.server]} LLooM`;
      if (this.server === 'error') background = 'error';
    } else if (this.isWeaving) {
      const message = [...this.progress.values()].pop();
      text = `$(loading~spin) LLooM: ${message ?? 'weaving…'}`;
      lines.push(message ? `Weaving: ${message}` : 'Weaving…');
    } else if (this.failure) {
      text = '$(warning) LLooM';
      background = 'warning';
    } else {
      text = `$(check) LLooM${this.speedLine ? `: ${this.speedLine}` : ''}`;
    }
    if (this.failure) lines.push(`Last weave failed: ${this.failure}`);
    else if (this.speedLine) lines.push(`Last weave: ${this.speedLine}`);
    lines.push('Click for the LLooM menu.');
    return { text, tooltip: lines.join('\n'), ...(background ? { background } : {}) };
  }
}
