/**
 * The language client's lifecycle: start on demand, restart, stop, and state for the
 * status bar.  Starts and stops run one at a time, so a restart during a start waits.
 *
 * Settings: the server pulls each document's settings with `workspace/configuration`
 * (scopeUri = the document), which vscode-languageclient answers with
 * `getConfiguration(undefined, scopeUri).get('lloom')`: the folder's values over the
 * workspace's over the user's.  The push (`synchronize`) is window-level, which is fine:
 * the server ranks the pulled settings above it, and a push tells it to pull afresh.
 */
import * as readline from 'node:readline';
import type { Readable } from 'node:stream';

import * as vscode from 'vscode';
import {
  CloseAction,
  type ErrorHandler,
  LanguageClient,
  type LanguageClientOptions,
  RevealOutputChannelOn,
  State,
} from 'vscode-languageclient/node';

import { documentSelector, matchesSelector } from './core/languages';
import { libraryNotification, startFailureText } from './core/notices';
import { type LogLevel, parseServerLogLine } from './core/serverLog';
import { ServerCommandError } from './core/serverCommand';
import { StartPolicy } from './core/startPolicy';
import { STATUS_NOTIFICATION, parseWeaveStatus } from './core/weaveStatus';
import { resolveLaunch } from './serverLaunch';
import { SECTION, languages, settingsSnapshot } from './settings';
import type { StatusBar } from './statusBar';

/** An inline request the server answered: where, and the items it gave. */
export interface InlineProvided {
  document: vscode.TextDocument;
  position: vscode.Position;
  items: vscode.InlineCompletionItem[];
}

export class LLooMClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private stopping = false;
  private readonly policy = new StartPolicy();
  /** Handlers of the server's other notifications, set on every client this starts. */
  private readonly notificationHandlers: [string, (params: unknown, client: LanguageClient) => void][] = [];
  private readonly stopped = new vscode.EventEmitter<void>();
  /** The server stopped (asked to, or died): what it sent about documents is gone with it. */
  readonly onDidStop = this.stopped.event;
  private readonly inlineProvided = new vscode.EventEmitter<InlineProvided>();
  /** The server answered an inline suggestion request (for "next beam"'s announcement). */
  readonly onDidProvideInline = this.inlineProvided.event;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly status: StatusBar,
  ) {}

  /** The running client, started first if need be; undefined when it cannot start. */
  ensureStarted(): Promise<LanguageClient | undefined> {
    return this.serially(async () => {
      if (this.client?.isRunning()) return this.client;
      await this.stop(); // a client whose server died: dispose it before starting anew
      return this.start();
    });
  }

  /**
   * Handle a server notification on this client and every later one.  A language client
   * keeps one handler per method, so each method is registered here once.
   */
  onNotification(method: string, handler: (params: unknown, client: LanguageClient) => void): void {
    this.notificationHandlers.push([method, handler]);
    const client = this.client;
    if (client) {
      client.onNotification(method, (params: unknown) => {
        if (this.client === client) handler(params, client);
      });
    }
  }

  /** The client when its server runs now; never starts one. */
  get running(): LanguageClient | undefined {
    return this.client?.isRunning() ? this.client : undefined;
  }

  restart(): Promise<LanguageClient | undefined> {
    this.policy.restartRequested();
    return this.serially(async () => {
      await this.stop();
      return this.start();
    });
  }

  shutdown(): Promise<void> {
    return this.serially(() => this.stop());
  }

  /** Start when any open document is one LLooM weaves in, unless the last start failed. */
  startIfWanted(): void {
    if (!this.policy.mayStartOnOpen) return;
    const langs = languages();
    if (vscode.workspace.textDocuments.some((doc) => matchesSelector(doc, langs))) {
      void this.ensureStarted();
    }
  }

  /**
   * A settings change.  One that picks the server or the languages restarts the client,
   * or starts one, even after a failed start: the user may just have fixed the command.
   */
  settingsChanged(restartKeys: boolean): void {
    const action = this.policy.settingsChanged(restartKeys, this.isActive);
    if (action === 'restart') void this.restart();
    else if (action === 'start') this.startIfWanted();
  }

  /** A client exists: running, starting, or restarting its server after a crash. */
  get isActive(): boolean {
    return this.client !== undefined;
  }

  private serially<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async start(): Promise<LanguageClient | undefined> {
    this.status.setState('starting');
    let client: LanguageClient | undefined;
    try {
      const launch = await resolveLaunch(this.log);
      const errorHandler = new FirstStartErrorHandler(() => client?.createDefaultErrorHandler());
      const options: LanguageClientOptions = {
        documentSelector: documentSelector(languages()),
        outputChannel: this.log,
        traceOutputChannel: this.log,
        revealOutputChannelOn: RevealOutputChannelOn.Never,
        // Sends workspace/didChangeConfiguration now and on every `lloom.*` change; the
        // server may also pull the section with workspace/configuration.
        synchronize: { configurationSection: SECTION },
        // A function, so a restart sends the settings of that moment.
        initializationOptions: () => settingsSnapshot(),
        errorHandler,
        // Initialize errors reject start(), which explains them once; without a handler
        // the library would show its own pop-up as well.
        initializationFailedHandler: () => false,
        stdioOptions: { stdout: forwardLog, stderr: forwardLog },
        middleware: {
          provideInlineCompletionItems: async (document, position, context, token, next) => {
            const result = await next(document, position, context, token);
            if (result && !token.isCancellationRequested) {
              const items = Array.isArray(result) ? result : result.items;
              this.inlineProvided.fire({ document, position, items });
            }
            return result;
          },
        },
      };
      const current = new QuietStartClient('lloom', 'LLooM', launch.executable, options);
      client = current;
      this.client = current;
      current.onNotification(STATUS_NOTIFICATION, (params: unknown) => {
        const status = parseWeaveStatus(params);
        if (status && this.client === current) this.status.onWeave(status);
      });
      for (const [method, handler] of this.notificationHandlers) {
        current.onNotification(method, (params: unknown) => {
          if (this.client === current) handler(params, current);
        });
      }
      current.onDidChangeState(({ newState }) => {
        if (newState === State.Running) {
          errorHandler.running = true;
          current.hasRun = true;
        }
        // A client being replaced or disposed reports too; only the current one counts.
        if (this.client === current) this.onState(newState);
      });
      await current.start();
      this.policy.started();
      this.status.setState('ready', launch.description);
      return client;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error(`The LLooM server did not start: ${message}`);
      this.status.setState('error', message);
      this.policy.startFailed();
      this.client = undefined;
      await client?.dispose().catch(() => undefined);
      void this.explainStartFailure(err, message);
      return undefined;
    }
  }

  private async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    this.stopping = true;
    try {
      await client.dispose(2000);
    } catch (err) {
      this.log.warn(`Stopping the server: ${String(err)}`);
    } finally {
      this.stopping = false;
      this.status.setState('stopped');
      this.stopped.fire();
    }
  }

  private onState(state: State): void {
    if (state === State.Starting) this.status.setState('starting');
    else if (state === State.Running) this.status.setState('ready');
    else if (!this.stopping) {
      // Stopped without being asked: the process died and the client gave up on it.
      // The next command or restart disposes it and starts a new one.
      this.status.setState('error', 'The server stopped. Run "LLooM: Restart Server".');
      this.stopped.fire();
    }
  }

  /** The one message for a failed start: the library's own pop-ups are silenced. */
  private async explainStartFailure(err: unknown, message: string): Promise<void> {
    const hint = startFailureText(message, err instanceof ServerCommandError);
    const choice = await vscode.window.showErrorMessage(hint, 'Open Settings', 'Show Log');
    if (choice === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'lloom.server.command');
    } else if (choice === 'Show Log') {
      this.log.show();
    }
  }

  dispose(): void {
    this.inlineProvided.dispose();
    void this.shutdown().finally(() => this.stopped.dispose());
  }
}

/**
 * A client whose library pop-ups wait until the server has run once: before that,
 * `LLooMClient.start` explains a failure itself, and the library's "couldn't create
 * connection to server" would be a second message for the same failure.
 */
class QuietStartClient extends LanguageClient {
  hasRun = false;

  override error(message: string, data?: unknown, showNotification?: boolean | 'force'): void {
    super.error(message, data, libraryNotification(showNotification, this.hasRun));
  }
}

/**
 * The default handler restarts a server whose connection closed, up to 4 times in
 * 3 minutes.  That helps a server that crashed after working; a server that never came
 * up (wrong command, module not installed) would only fail the same way again, so
 * before the first successful start a close is final and `start()` explains it.
 */
class FirstStartErrorHandler implements ErrorHandler {
  running = false;
  private fallback: ErrorHandler | undefined;

  constructor(private readonly makeDefault: () => ErrorHandler | undefined) {}

  private get delegate(): ErrorHandler | undefined {
    this.fallback ??= this.makeDefault();
    return this.fallback;
  }

  error(...args: Parameters<ErrorHandler['error']>): ReturnType<ErrorHandler['error']> {
    return this.delegate!.error(...args);
  }

  closed(): ReturnType<ErrorHandler['closed']> {
    if (!this.running) return { action: CloseAction.DoNotRestart, handled: true };
    return this.delegate!.closed();
  }
}

/** Server output into the log channel, each line at the level the server logged it. */
function forwardLog(input: Readable, channel: vscode.LogOutputChannel): void {
  let level: LogLevel | undefined;
  readline
    .createInterface({ input, crlfDelay: Infinity, terminal: false, historySize: 0 })
    .on('line', (line: string) => {
      const record = parseServerLogLine(line, level);
      level = record.level;
      channel[record.level](record.text);
    });
}
