import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { ShellExecutionEnd, ShellExecutionStart, TerminalEvents } from '../../src/host';
import type { TerminalCommandParams } from '../../src/protocol';
import { TerminalCapture } from '../../src/terminalCapture';

/**
 * The editor's side of shell integration, scripted: the same event order VS Code gives
 * (start, output chunks, end), driven by the test.
 */
class ScriptedTerminals implements TerminalEvents {
  supported = true;
  integrated = new Set<object>();
  terminals: { terminal: object; name: string }[] = [];
  private start?: (e: ShellExecutionStart) => void;
  private end?: (e: ShellExecutionEnd) => void;
  private open?: (t: object, name: string) => void;
  private integration?: (t: object) => void;
  private readonly none = { dispose: (): void => undefined };

  onStart(l: (e: ShellExecutionStart) => void): { dispose(): void } {
    this.start = l;
    return this.none;
  }
  onEnd(l: (e: ShellExecutionEnd) => void): { dispose(): void } {
    this.end = l;
    return this.none;
  }
  onOpen(l: (t: object, name: string) => void): { dispose(): void } {
    this.open = l;
    return this.none;
  }
  onIntegration(l: (t: object) => void): { dispose(): void } {
    this.integration = l;
    return this.none;
  }
  onClose(): { dispose(): void } {
    return this.none;
  }
  hasIntegration(t: object): boolean {
    return this.integrated.has(t);
  }
  openTerminals(): { terminal: object; name: string }[] {
    return this.terminals;
  }

  openTerminal(name: string, integrated: boolean): object {
    const t = { name };
    if (integrated) {
      this.integrated.add(t);
    }
    this.open?.(t, name);
    if (integrated) {
      this.integration?.(t);
    }
    return t;
  }

  /** Runs one command: start, its output in chunks, end with an exit code. */
  run(commandLine: string, chunks: string[], exitCode: number | undefined): void {
    const execution = {};
    let push: ((chunk: string | undefined) => void) | undefined;
    const queue: (string | undefined)[] = [...chunks, undefined];
    const stream: AsyncIterable<string> = {
      [Symbol.asyncIterator]: () => ({
        next: () =>
          new Promise<IteratorResult<string>>((resolve) => {
            push = (c) => resolve(c === undefined ? { done: true, value: undefined } : { done: false, value: c });
            setImmediate(() => push?.(queue.shift()));
          }),
      }),
    };
    this.start?.({ execution, terminalName: 't', commandLine, cwd: '/ws', read: () => stream });
    setTimeout(() => this.end?.({ execution, commandLine, cwd: '/ws', exitCode }), 20);
  }
}

const quietLog = { warn: (): void => undefined, debug: (): void => undefined };

function capture(events: ScriptedTerminals, enabled: () => boolean, maxBytes = 1000) {
  const sent: TerminalCommandParams[] = [];
  const notices: string[] = [];
  const c = new TerminalCapture(
    events,
    50,
    enabled,
    () => maxBytes,
    (p) => {
      sent.push(p);
      return Promise.resolve();
    },
    quietLog,
    (m) => notices.push(m),
  );
  return { c, sent, notices };
}

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) {
      throw new Error('timed out');
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('a finished command is sent once, with its exit code and cleaned output', async () => {
  const events = new ScriptedTerminals();
  const { c, sent } = capture(events, () => true);
  events.run('pytest -q', ['\x1b]633;C\x07\x1b[31m1 failed\x1b[0m\r\n', 'done\r\n'], 1);
  await until(() => sent.length === 1);
  const [p] = sent;
  assert.equal(p!.commandLine, 'pytest -q');
  assert.equal(p!.cwd, '/ws');
  assert.equal(p!.exitCode, 1);
  assert.equal(p!.output, '1 failed\ndone\n');
  assert.ok(p!.endedAt >= p!.startedAt);
  c.dispose();
});

test('nothing is sent while capture is off', async () => {
  const events = new ScriptedTerminals();
  const { c, sent } = capture(events, () => false);
  events.run('ls', ['a\r\n'], 0);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(sent, []);
  c.dispose();
});

test('a terminal without shell integration is reported once, when capture is on', async () => {
  const events = new ScriptedTerminals();
  const { c, notices } = capture(events, () => true);
  events.openTerminal('sh', false);
  events.openTerminal('dash', false);
  events.openTerminal('bash', true);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(notices.length, 1);
  assert.match(notices[0]!, /terminal "sh" did not activate shell integration/);
  c.dispose();
});

test('an editor without the shell-integration API degrades with one notice', () => {
  const events = new ScriptedTerminals();
  events.supported = false;
  const { c, notices } = capture(events, () => true);
  assert.equal(notices.length, 1);
  assert.match(notices[0]!, /no shell integration API/);
  c.dispose();
});
