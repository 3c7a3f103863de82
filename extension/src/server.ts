/**
 * The language client around `goldiff serve`: finds the interpreter, checks that Goldiff
 * is importable in it, starts the server over stdio with the user's settings as
 * `initializationOptions`, restarts it with backoff when it crashes, and offers typed
 * helpers for the server's commands and notifications. The server's log goes to the
 * "Goldiff" output channel.
 *
 * The client's generic executeCommand feature is left out on purpose: it would register a
 * VS Code command for every command the server advertises, and several server commands
 * (`goldiff.exportTraces`, `goldiff.distill`) share their id with this extension's own
 * UI commands, which VS Code refuses. The extension registers `goldiff.accepted` (the
 * command every inline completion item carries) itself and forwards it to the server.
 */
import {
  CloseAction,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  State,
  WorkDoneProgress,
  type CloseHandlerResult,
  type ErrorHandlerResult,
  type LanguageClientOptions,
  type ServerOptions,
  type StaticFeature,
  type DynamicFeature,
} from 'vscode-languageclient/node';
import * as host from './host';
import { RestartBackoff } from './backoff';
import { unlessCancelled } from './cancel';
import { diagnoseProbe, probePython, resolvePython, SERVER_ARGS, type PythonChoice } from './python';
import type { ServerSettings } from './protocol';
import type { WorkDoneValue } from './progress';
import { withoutApiKey } from './settings';
import { parseServerLogLine } from './serverLog';
import * as readline from 'node:readline';
import type { Readable } from 'node:stream';

function forEachLine(input: Readable, each: (line: string) => void): void {
  readline.createInterface({ input, crlfDelay: Infinity, terminal: false }).on('line', each);
}
import type { ClientState } from './status';

class GoldiffLanguageClient extends LanguageClient {
  override registerFeature(feature: StaticFeature | DynamicFeature<unknown>): void {
    const method = (feature as Partial<DynamicFeature<unknown>>).registrationType?.method;
    if (method === ExecuteCommandRequest.method) {
      return;
    }
    super.registerFeature(feature);
  }
}

export interface ServerHooks {
  settings(): ServerSettings;
  environment(): Record<string, string>;
  onState(state: ClientState, reason?: string): void;
  /** Why no completion may be offered in this document now (undefined: offer one). */
  completionBlocked?(doc: { languageId: string; path: string }, invoked: boolean): string | undefined;
  /** The interpreter to use instead of resolving one (the extension's own server set-up). */
  managedPython?(): Promise<string | undefined>;
}

// vscode.InlineCompletionTriggerKind.Invoke: the user asked for a completion.
const TRIGGER_INVOKE = 0;

export class GoldiffServer {
  private client: GoldiffLanguageClient | undefined;
  private readonly backoff = new RestartBackoff();
  private startedAt = 0;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private stopping = false;
  private python: PythonChoice | undefined;

  constructor(
    private readonly log: host.LogOutputChannel,
    private readonly hooks: ServerHooks,
  ) {}

  /** The interpreter the server runs on (for CLI commands in a terminal). */
  get pythonCommand(): string | undefined {
    return this.python?.command;
  }

  get running(): boolean {
    return this.client?.state === State.Running;
  }

  /** Starts the server; failures are shown to the user and leave the state 'failed'. */
  async start(): Promise<boolean> {
    this.cancelRestart();
    this.stopping = false;
    this.startedAt = 0;
    this.hooks.onState('starting');
    const env = this.hooks.environment();
    const managed = await this.hooks.managedPython?.();
    const choice: PythonChoice =
      managed !== undefined
        ? { command: managed, source: 'managed' }
        : resolvePython(host.getSetting('pythonPath'), await host.pythonExtensionInterpreter(), process.platform);
    this.python = choice;
    this.log.info(`Starting ${choice.command} ${SERVER_ARGS.join(' ')} (interpreter from ${choice.source})`);
    const problem = diagnoseProbe(choice, await probePython(choice.command, env));
    if (problem !== undefined) {
      this.fail(problem, choice);
      return false;
    }
    const serverOptions: ServerOptions = {
      command: choice.command,
      args: [...SERVER_ARGS],
      // No `transport`: TransportKind.stdio would append `--stdio`, which `goldiff serve`
      // does not take (stdio is its default).
      options: { env },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.log,
      // The server logs "TIME LEVEL logger: message" to stderr; keep its level instead of
      // the client's default of tagging every stderr line as an error.
      stdioOptions: {
        stdout: (input, channel) => forEachLine(input, (line) => channel.info(line)),
        stderr: (input, channel) =>
          forEachLine(input, (line) => {
            const { level, message } = parseServerLogLine(line);
            channel[level](message);
          }),
      },
      // pygls logs the whole InitializeParams at INFO, so the API key must not travel in
      // them; it follows in a didChangeConfiguration right after initialize.
      initializationOptions: withoutApiKey(this.hooks.settings()),
      // Per-language enable, disabled files, snooze and manual trigger mode are decided
      // here, before a request reaches the server; recording is not affected by them.
      middleware: {
        provideInlineCompletionItems: (document, position, context, token, next) => {
          const blocked = this.hooks.completionBlocked?.(
            { languageId: document.languageId, path: document.uri.fsPath || document.uri.path },
            (context.triggerKind as number) === TRIGGER_INVOKE,
          );
          if (blocked !== undefined) {
            this.log.trace(`no completion: ${blocked}`);
            return null;
          }
          return next(document, position, context, token);
        },
      },
      // A failed initialize is reported once, by fail() below, with actions that fix it.
      initializationFailedHandler: () => false,
      errorHandler: {
        error: (_error, _message, count): ErrorHandlerResult => ({
          // A few malformed messages are survivable; a stream of them means a broken server.
          action: (count ?? 0) < 5 ? ErrorAction.Continue : ErrorAction.Shutdown,
          handled: false,
        }),
        closed: (): CloseHandlerResult => {
          // Before the server came up, start() reports the failure; only a running
          // server that dies is restarted.
          if (this.startedAt !== 0 && this.client === client) {
            this.onCrash();
          }
          return {
            action: CloseAction.DoNotRestart,
            handled: true,
            message: 'The Goldiff server exited; the extension restarts it with backoff.',
          };
        },
      },
    };
    const client = new GoldiffLanguageClient('goldiff', 'Goldiff', serverOptions, clientOptions);
    // Inline completion is a built-in feature in vscode-languageclient 10+, proposed before;
    // registering the proposed set keeps it on with either.
    client.registerProposedFeatures();
    this.client = client;
    try {
      await client.start();
    } catch (err) {
      if (this.client === client) {
        this.client = undefined;
      }
      this.fail(`Goldiff's server did not start: ${String(err)}. See the Goldiff output for its log.`, choice);
      return false;
    }
    this.startedAt = Date.now();
    await this.sendSettings();
    this.hooks.onState('running');
    this.log.info('Server running');
    return true;
  }

  private fail(message: string, _choice: PythonChoice): void {
    this.log.error(message);
    this.hooks.onState('failed', message);
    const actions = ['Open Settings', 'Show Log', 'Restart Server'] as const;
    const withCopy = message.includes('not installed') ? (['Set Up Server', ...actions] as const) : actions;
    void host.error(message, ...withCopy).then(async (picked) => {
      if (picked === 'Set Up Server') {
        await host.executeCommand('goldiff.setUpServer');
      } else if (picked === 'Open Settings') {
        await host.openSettings('goldiff.pythonPath');
      } else if (picked === 'Show Log') {
        this.log.show();
      } else if (picked === 'Restart Server') {
        await this.restart();
      }
    });
  }

  private onCrash(): void {
    if (this.stopping) {
      return;
    }
    const uptime = Date.now() - this.startedAt;
    const delay = this.backoff.onCrash(uptime);
    this.client = undefined;
    if (delay === undefined) {
      const message =
        `Goldiff's server stopped ${this.backoff.crashes} times in a row and was not restarted. ` +
        'See the Goldiff output for the reason, then run "Goldiff: Restart Server".';
      this.fail(message, this.python ?? { command: 'python3', source: 'default' });
      return;
    }
    this.log.warn(`Server exited after ${Math.round(uptime / 1000)} s; restarting in ${delay / 1000} s`);
    this.hooks.onState('starting');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.start();
    }, delay);
  }

  private cancelRestart(): void {
    if (this.restartTimer !== undefined) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.cancelRestart();
    const client = this.client;
    this.client = undefined;
    if (client !== undefined && client.state !== State.Stopped) {
      try {
        await client.stop(5000);
      } catch (err) {
        this.log.warn(`Stopping the server: ${String(err)}`);
      }
    }
    this.hooks.onState('stopped');
  }

  async restart(): Promise<boolean> {
    this.backoff.reset();
    await this.stop();
    return this.start();
  }

  /** Sends the current settings (after a settings or API key change). */
  async sendSettings(): Promise<void> {
    if (this.client !== undefined && this.running) {
      await this.client.sendNotification('workspace/didChangeConfiguration', { settings: this.hooks.settings() });
    }
  }

  /** Runs a server command; throws a sentence for the user when the server is not running. */
  async execute<R = unknown>(command: string, args?: unknown, token?: host.CancellationToken): Promise<R> {
    const client = this.client;
    if (client === undefined || !this.running) {
      throw new Error('The Goldiff server is not running. Run "Goldiff: Restart Server" and try again.');
    }
    const params = { command, arguments: args === undefined ? [] : [args] };
    // The token sends $/cancelRequest; the server stops the command (see lsp.py).
    return (await unlessCancelled(token, () => client.sendRequest(ExecuteCommandRequest.type, params, token))) as R;
  }

  /**
   * Runs a long server command (an export, a download) whose progress goes to `onProgress`:
   * the extension creates the work-done token and passes it as `progressToken`, so its own
   * notification shows the server's percentages and its Cancel cancels the request.
   */
  async executeWithProgress<R = unknown>(
    command: string,
    args: object,
    onProgress: (value: WorkDoneValue) => void,
    token?: host.CancellationToken,
  ): Promise<R> {
    const client = this.client;
    if (client === undefined || !this.running) {
      return this.execute<R>(command, args, token); // throws the "not running" sentence
    }
    const progressToken = `goldiff-${command}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    const subscription = client.onProgress(WorkDoneProgress.type, progressToken, (value) => onProgress(value));
    try {
      return await this.execute<R>(command, { ...args, progressToken }, token);
    } finally {
      subscription.dispose();
    }
  }

  async notify(method: string, params: object): Promise<void> {
    if (this.client !== undefined && this.running) {
      await this.client.sendNotification(method, params);
    }
  }

  dispose(): Promise<void> {
    return this.stop();
  }
}
