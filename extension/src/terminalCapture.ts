/**
 * Terminal capture: listens to shell integration's start and end events, streams each
 * command's output into a bounded collector, and sends one `goldiff/terminalCommand` per
 * finished command while capture is on. Where shell integration is unavailable (an old
 * VS Code, a shell it does not support, or the feature turned off) the extension says so
 * once in the output and once as a message, and edits are still captured.
 */
import type * as host from './host';
import { buildTerminalPayload, OutputCollector } from './terminal';
import type { TerminalCommandParams } from './protocol';

/** How long a new terminal may take to report shell integration before we call it missing. */
export const INTEGRATION_GRACE_MS = 10000;

interface Running {
  startedAt: number;
  collector: OutputCollector;
  reading: Promise<void>;
}

export class TerminalCapture implements host.Disposable {
  private readonly running = new Map<object, Running>();
  private readonly disposables: host.Disposable[] = [];
  private readonly timers = new Map<object, ReturnType<typeof setTimeout>>();
  private warned = false;

  constructor(
    private readonly events: host.TerminalEvents,
    private readonly graceMs: number,
    private readonly enabled: () => boolean,
    private readonly maxOutputBytes: () => number,
    private readonly send: (payload: TerminalCommandParams) => Promise<void>,
    private readonly log: Pick<host.LogOutputChannel, 'warn' | 'debug'>,
    private readonly notify: (message: string) => void,
  ) {
    if (!events.supported) {
      this.degraded('this version of VS Code has no shell integration API');
      return;
    }
    this.disposables.push(
      events.onStart((e) => this.started(e)),
      events.onEnd((e) => void this.ended(e)),
      events.onOpen((terminal, name) => this.watch(terminal, name)),
      events.onIntegration((terminal) => this.clearTimer(terminal)),
      events.onClose((terminal) => this.clearTimer(terminal)),
    );
    for (const { terminal, name } of events.openTerminals()) {
      this.watch(terminal, name);
    }
  }

  private watch(terminal: object, name: string): void {
    if (this.events.hasIntegration(terminal)) {
      return;
    }
    this.timers.set(
      terminal,
      setTimeout(() => {
        this.timers.delete(terminal);
        if (!this.events.hasIntegration(terminal) && this.enabled()) {
          this.degraded(`terminal "${name}" did not activate shell integration`);
        }
      }, this.graceMs),
    );
  }

  private clearTimer(terminal: object): void {
    const t = this.timers.get(terminal);
    if (t !== undefined) {
      clearTimeout(t);
      this.timers.delete(terminal);
    }
  }

  private degraded(why: string): void {
    this.log.warn(`Terminal commands are not captured: ${why}.`);
    if (this.warned) {
      return;
    }
    this.warned = true;
    this.notify(
      `Goldiff cannot capture terminal commands: ${why}. Use bash, zsh, fish or PowerShell with ` +
        '"terminal.integrated.shellIntegration.enabled" on; edits and suggestions are still captured.',
    );
  }

  private started(e: host.ShellExecutionStart): void {
    if (!this.enabled()) {
      return;
    }
    const collector = new OutputCollector(this.maxOutputBytes());
    // read() must begin at the start event, or the first output is lost.
    const reading = (async (): Promise<void> => {
      try {
        for await (const chunk of e.read()) {
          collector.push(chunk);
        }
      } catch (err) {
        this.log.debug(`Reading terminal output stopped: ${String(err)}`);
      }
    })();
    this.running.set(e.execution, { startedAt: Date.now(), collector, reading });
  }

  private async ended(e: host.ShellExecutionEnd): Promise<void> {
    const endedAt = Date.now();
    const run = this.running.get(e.execution);
    this.running.delete(e.execution);
    if (run === undefined || !this.enabled()) {
      return;
    }
    // The output stream ends with the command; give it a moment to flush, never hang on it.
    await Promise.race([run.reading, new Promise((r) => setTimeout(r, 2000))]);
    const payload = buildTerminalPayload({
      commandLine: e.commandLine,
      cwd: e.cwd,
      exitCode: e.exitCode,
      startedAt: run.startedAt,
      endedAt,
      output: run.collector.result(),
    });
    if (payload === undefined) {
      return;
    }
    this.log.debug(`Terminal command "${payload.commandLine}" exited with ${String(payload.exitCode)}`);
    try {
      await this.send(payload);
    } catch (err) {
      this.log.warn(`Could not send a terminal command to the server: ${String(err)}`);
    }
  }

  dispose(): void {
    for (const t of this.timers.values()) {
      clearTimeout(t);
    }
    this.timers.clear();
    this.running.clear();
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}
