import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { acceptanceRate, formatStatus } from '../../src/status';
import { RestartBackoff } from '../../src/backoff';
import { EditEpisodes, episodeOf } from '../../src/episodes';
import { dataFolder } from '../../src/paths';
import { defaultExportName, exportedFiles, exportedRows, exportMessage, formatPickItems } from '../../src/exportTraces';
import { humanBytes, statsMarkdown } from '../../src/statsView';
import { parseServerLogLine } from '../../src/serverLog';

test('the status bar names the model that answers, a recording dot, and acceptance per source', () => {
  const view = formatStatus('running', {
    mode: 'shadow',
    model: 'gpt-4.1-mini',
    answering: { source: 'frontier', provider: 'openai', model: 'gpt-4.1-mini' },
    capture: true,
    acceptanceToday: { shown: 12, accepted: 5 },
    acceptanceBySource: { local: { shown: 4, accepted: 1, rate: 0.25 }, frontier: { shown: 8, accepted: 4, rate: 0.5 } },
    shadowToday: { answers: 7, matched_shown: 2 },
  });
  // In shadow mode the frontier answers: its model is named, not the hidden local one.
  assert.equal(view.text, '$(sparkle) gpt-4.1-mini $(circle-filled) frontier 50% · local 25%');
  assert.equal(
    view.tooltip,
    [
      'Goldiff: shadow mode — frontier model gpt-4.1-mini answers (the local model runs hidden beside it).',
      'Accepted today: frontier 50% of 8 shown, local 25% of 4 shown.',
      'Shadow today: 7 hidden local answers, 2 equal to the shown one.',
      'Recording: on for this workspace.',
      'Click for the Goldiff menu.',
    ].join('\n'),
  );
  assert.equal(view.warning, false);
  assert.equal(view.label, 'shadow mode, gpt-4.1-mini, recording, accepted today frontier 50%, local 25%');
});

test('local mode names the local model; no recording means no dot; a snooze says so', () => {
  const status = { mode: 'local', answering: { source: 'local', model: 'goldiff-default' }, capture: false };
  assert.equal(formatStatus('running', status).text, '$(sparkle) goldiff-default –');
  const now = 1_000_000;
  const snoozed = formatStatus('running', status, { now, snoozedUntil: now + 14.5 * 60000 });
  assert.equal(snoozed.text, '$(bell-slash) snoozed 15 min –');
  assert.match(snoozed.tooltip, /no completions for 15 more min/);
  // A snooze that ended is not shown.
  assert.equal(formatStatus('running', status, { now, snoozedUntil: now - 1 }).text, '$(sparkle) goldiff-default –');
  // No local model at all: the item warns.
  const none = formatStatus('running', { mode: 'local', answering: { source: 'local', model: null } });
  assert.equal(none.warning, true);
  assert.match(none.tooltip, /no model answers/);
});

test('no suggestion shown yet reads as a dash, not 0%', () => {
  assert.equal(formatStatus('running', { mode: 'frontier', model: 'm', acceptanceBySource: { frontier: { shown: 0, accepted: 0 } } }).text, '$(sparkle) m –');
  assert.equal(formatStatus('running', { mode: 'shadow', model: 'm', acceptanceToday: null }).text, '$(sparkle) m –');
});

test('the acceptance rate is read from a number, a rate or counts', () => {
  assert.equal(acceptanceRate({ acceptanceToday: 0.5 }), 0.5);
  assert.equal(acceptanceRate({ acceptanceToday: { rate: 0.25, shown: 4, accepted: 3 } }), 0.25);
  assert.equal(acceptanceRate({ acceptanceToday: { shown: 4, accepted: 1 } }), 0.25);
  assert.equal(acceptanceRate({}), undefined);
  assert.equal(acceptanceRate(undefined), undefined);
});

test('a failed server turns the item into a warning that restarts on click', () => {
  const view = formatStatus('failed', undefined, { now: 0, failure: 'Goldiff is not installed in python3.' });
  assert.equal(view.text, '$(error) Goldiff');
  assert.match(view.tooltip, /not installed in python3/);
  assert.equal(view.warning, true);
  assert.match(view.tooltip, /restart, log, doctor/);
  assert.equal(formatStatus('starting', { mode: 'local' }).text, '$(loading~spin) Goldiff');
});

test('restarts back off 1, 2, 4, 8, 16 s, then give up; a healthy run resets', () => {
  const b = new RestartBackoff();
  assert.deepEqual(
    [0, 0, 0, 0, 0, 0].map(() => b.onCrash(100)),
    [1000, 2000, 4000, 8000, 16000, undefined],
  );
  assert.equal(b.onCrash(120000), 1000);
  b.reset();
  assert.equal(b.onCrash(0), 1000);
  const capped = new RestartBackoff({ initialMs: 10000, maxMs: 30000, maxAttempts: 9, healthyAfterMs: 60000 });
  assert.deepEqual([1, 2, 3].map(() => capped.onCrash(0)), [10000, 20000, 30000]);
});

test('a follow-up on the same document continues the episode within the window', () => {
  const e = new EditEpisodes(1000);
  e.remember('file:///a.py', 'ep1', 0);
  assert.equal(e.followUp('file:///a.py', 500), 'ep1');
  assert.equal(e.followUp('file:///b.py', 500), undefined);
  assert.equal(e.followUp('file:///a.py', 1501), undefined);
  assert.equal(e.followUp('file:///a.py', 1502), undefined);
  assert.equal(episodeOf({ episode: 'x' }), 'x');
  assert.equal(episodeOf({ episode: 7 }), '7');
  assert.equal(episodeOf(null), undefined);
});

test('the data folder follows the setting, GOLDIFF_HOME, then platformdirs', () => {
  assert.equal(dataFolder('/d', { GOLDIFF_HOME: '/e' }, 'linux', '/home/u'), '/d');
  assert.equal(dataFolder('', { GOLDIFF_HOME: '/e' }, 'linux', '/home/u'), '/e');
  assert.equal(dataFolder(undefined, {}, 'linux', '/home/u'), '/home/u/.local/share/goldiff');
  assert.equal(dataFolder(undefined, { XDG_DATA_HOME: '/x' }, 'linux', '/home/u'), '/x/goldiff');
  assert.equal(dataFolder(undefined, {}, 'darwin', '/Users/u'), '/Users/u/Library/Application Support/goldiff');
  assert.equal(
    dataFolder(undefined, { LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, 'win32', 'C:\\Users\\u'),
    'C:\\Users\\u\\AppData\\Local\\goldiff\\goldiff',
  );
});

test('export offers the six formats with a dated default file name', () => {
  assert.deepEqual(
    formatPickItems().map((i) => i.format),
    ['sft', 'preference', 'kto', 'edits', 'openai', 'parquet'],
  );
  const day = new Date('2026-11-27T10:00:00Z');
  assert.equal(defaultExportName('sft', day), 'goldiff-sft-2026-11-27.jsonl');
  assert.equal(defaultExportName('parquet', day), 'goldiff-parquet-2026-11-27.parquet');
  assert.equal(exportedRows({ rows: 3 }), 3);
  // The server's answer: counts per part, "all" without a split, train + test with one.
  assert.equal(exportedRows({ rows: 'sft', counts: { all: 4 } }), 4);
  assert.equal(exportedRows({ rows: 'sft', counts: { train: 9, test: 1 } }), 10);
  assert.deepEqual(exportedFiles({ paths: { train: '/a', test: '/b' } }, '/x'), ['/a', '/b']);
  assert.deepEqual(exportedFiles({}, '/x'), ['/x']);
  assert.equal(exportedRows(5), 5);
  assert.equal(exportedRows({ path: '/x' }), undefined);
  assert.equal(exportMessage(1, '/x.jsonl'), 'Goldiff exported 1 row to /x.jsonl.');
  assert.equal(exportMessage(undefined, '/x.jsonl'), 'Goldiff exported traces to /x.jsonl.');
});

test('stats render as one table, nested keys dotted, sizes readable', () => {
  const md = statsMarkdown(
    { sessions: 2, suggestions: { accepted: 1, rejected: 0 }, store_bytes: 2048, note: 'a|b' },
    new Date('2026-11-27T00:00:00Z'),
  );
  assert.ok(md.includes('| sessions | 2 |'));
  assert.ok(md.includes('| suggestions.accepted | 1 |'));
  assert.ok(md.includes('| store_bytes | 2.0 KiB |'));
  assert.ok(md.includes('| note | a\\|b |'));
  assert.equal(humanBytes(512), '512 B');
});

test("server log lines keep the server's level; anything else on stderr is an error", () => {
  assert.deepEqual(parseServerLogLine('2026-11-27 22:44:35,326 INFO goldiff.lsp: settings: {}'), {
    level: 'info',
    message: 'goldiff.lsp: settings: {}',
  });
  assert.deepEqual(parseServerLogLine('2026-11-27 22:44:35,326 WARNING goldiff.store: slow'), {
    level: 'warn',
    message: 'goldiff.store: slow',
  });
  assert.equal(parseServerLogLine('2026-11-27 22:44:35,326 CRITICAL x: y').level, 'error');
  assert.deepEqual(parseServerLogLine('Traceback (most recent call last):'), {
    level: 'error',
    message: 'Traceback (most recent call last):',
  });
});
