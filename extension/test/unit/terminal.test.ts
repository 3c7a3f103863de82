import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import {
  buildTerminalPayload,
  omissionMarker,
  OutputCollector,
  stripTerminalSequences,
  truncateOutput,
} from '../../src/terminal';

test('colours, shell-integration marks and titles are removed; CR keeps the last redraw', () => {
  const raw =
    '\x1b]633;C\x07\x1b[1;32mok\x1b[0m 3 passed\r\n' +
    '\x1b]0;title\x1b\\progress 10%\rprogress 100%\r\n' +
    '\x1b=\x1b(Bdone\x1b7';
  assert.equal(stripTerminalSequences(raw), 'ok 3 passed\nprogress 100%\ndone');
});

test('output that fits is kept whole', () => {
  assert.equal(truncateOutput('hello\n', 100), 'hello\n');
});

test('a zero limit records no output', () => {
  assert.equal(truncateOutput('hello', 0), undefined);
  const c = new OutputCollector(0);
  c.push('hello');
  assert.equal(c.result(), undefined);
});

test('long output keeps head and tail within the byte limit and counts what it left out', () => {
  const text = 'A'.repeat(5000) + 'B'.repeat(5000);
  const out = truncateOutput(text, 1000)!;
  assert.ok(Buffer.byteLength(out) <= 1000, `got ${Buffer.byteLength(out)} bytes`);
  assert.ok(out.startsWith('AAAA'));
  assert.ok(out.endsWith('BBBB'));
  const kept = out.split(/\n\[\.\.\. \d+ bytes omitted by Goldiff \.\.\.\]\n/);
  assert.equal(kept.length, 2);
  const omitted = 10000 - kept[0]!.length - kept[1]!.length;
  assert.ok(out.includes(omissionMarker(omitted)));
});

test('truncation never splits a multi-byte character', () => {
  const text = 'é'.repeat(3000) + '→'.repeat(3000);
  const out = truncateOutput(text, 777)!;
  assert.ok(Buffer.byteLength(out) <= 777);
  assert.ok(!out.includes('\ufffd'), 'a character was cut in half');
  assert.ok(out.startsWith('é') && out.endsWith('→'));
});

test('the collector stays bounded on endless output and keeps the latest lines', () => {
  const c = new OutputCollector(200);
  for (let i = 0; i < 10000; i++) {
    c.push(`line ${i}\n`);
  }
  const out = c.result()!;
  assert.ok(Buffer.byteLength(out) <= 200);
  assert.ok(out.startsWith('line 0\n'));
  assert.ok(out.endsWith('line 9999\n'));
  const omitted = Number(/\[\.\.\. (\d+) bytes omitted/.exec(out)?.[1]);
  const total = Array.from({ length: 10000 }, (_, i) => `line ${i}\n`).join('').length;
  assert.equal(omitted, total - (Buffer.byteLength(out) - Buffer.byteLength(omissionMarker(omitted))));
});

test('an escape sequence split across chunks is still removed', () => {
  const c = new OutputCollector(1000);
  c.push('\x1b[3');
  c.push('1mred\x1b[0m\r\n');
  assert.equal(c.result(), 'red\n');
});

test('only whitespace or escapes means no output', () => {
  const c = new OutputCollector(1000);
  c.push('\x1b]633;D;0\x07\r\n  ');
  assert.equal(c.result(), undefined);
});

test('the payload carries command, cwd, exit code and epoch-millisecond times', () => {
  assert.deepEqual(
    buildTerminalPayload({
      commandLine: '  pytest -q ',
      cwd: '/ws',
      exitCode: 1,
      startedAt: 1000,
      endedAt: 2500,
      output: '1 failed',
    }),
    { commandLine: 'pytest -q', cwd: '/ws', exitCode: 1, startedAt: 1000, endedAt: 2500, output: '1 failed' },
  );
});

test('unknown exit code and cwd are null, no output means no field, a bare Enter is skipped', () => {
  assert.deepEqual(
    buildTerminalPayload({ commandLine: 'ls', cwd: undefined, exitCode: undefined, startedAt: 5, endedAt: 4, output: undefined }),
    { commandLine: 'ls', cwd: null, exitCode: null, startedAt: 5, endedAt: 5 },
  );
  assert.equal(
    buildTerminalPayload({ commandLine: '  ', cwd: '/', exitCode: 0, startedAt: 1, endedAt: 2, output: undefined }),
    undefined,
  );
});
