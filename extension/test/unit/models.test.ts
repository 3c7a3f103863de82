import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as path from 'node:path';
import { test } from 'node:test';
import { compareMarkdown, compareTargets, recordedMarkdown, verdict } from '../../src/compareView';
import { dateProblem, emptyExport, EXPORT_EVERYTHING, filtersFor, scopeItems, sinceItems, START_RECORDING } from '../../src/exportTraces';
import { PercentSteps, progressText } from '../../src/progress';
import { ServerCommands } from '../../src/protocol';
import { asksForChecksum, describeDownload, pullMessage, pullSourceProblem, sha256Problem } from '../../src/pull';
import { manualTrainInstall, parseTrainProbe, reachable, TRAIN_PROBE, trainInstall } from '../../src/trainExtra';

const root = path.join(__dirname, '..', '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  contributes: { commands: { command: string }[] };
};

test('a download source must name a .gguf on the hub, at a URL or on disk', () => {
  assert.equal(pullSourceProblem('hf://Qwen/Qwen2.5-Coder-0.5B-GGUF/qwen2.5-coder-0.5b-q8_0.gguf'), undefined);
  assert.equal(pullSourceProblem('hf://o/r/sub/x.gguf@v1.0'), undefined);
  assert.equal(pullSourceProblem('https://example.com/models/x%20y.gguf'), undefined);
  assert.equal(pullSourceProblem('/home/me/x.GGUF'), undefined);
  assert.match(pullSourceProblem('hf://owner/x.gguf') ?? '', /owner, a repository and a file/);
  assert.match(pullSourceProblem('https://example.com/model.bin') ?? '', /\.gguf/);
  assert.match(pullSourceProblem('  ') ?? '', /hub file/);
  assert.equal(asksForChecksum('https://x/y.gguf', { bytes: 5 }), true);
  assert.equal(asksForChecksum('hf://o/r/y.gguf', { sha256: 'a'.repeat(64) }), false); // the hub states it
  assert.equal(asksForChecksum('/local/y.gguf', {}), false);
  assert.equal(sha256Problem(''), undefined);
  assert.equal(sha256Problem('a'.repeat(64)), undefined);
  assert.ok(sha256Problem('abc') !== undefined);
});

test('the download message says what was checked and whether it resumed', () => {
  const msg = pullMessage({ name: 'coder', bytes: 3 * 1048576, verified: true, resumedFrom: 1048576 });
  assert.equal(msg, 'Goldiff downloaded and registered coder (3.0 MiB, resumed after 1.0 MiB, SHA-256 verified).');
  assert.match(pullMessage({ name: 'x', bytes: 10, verified: false }), /no checksum was stated/);
});

test('before a download the user sees its size, licence and checksum', () => {
  const about = describeDownload({ filename: 'coder.gguf', bytes: 5 * 1048576, licence: 'apache-2.0', sha256: 'ab'.repeat(32) });
  assert.equal(about.message, 'Download coder.gguf (5.0 MiB)?');
  assert.match(about.detail, /^Licence: apache-2\.0\. Downloading means you accept it/);
  assert.match(about.detail, /SHA-256 abababababab… is stated and will be verified\./);
  assert.match(describeDownload({ filename: 'x.gguf' }).detail, /states no licence.*No checksum is stated/);
});

test('percentages become increments that never go backwards', () => {
  const steps = new PercentSteps();
  assert.deepEqual([0, 10, 10, 55, 40, 100, 130].map((p) => steps.step(p)), [0, 10, 0, 45, 0, 45, 0]);
  assert.equal(steps.step(undefined), undefined);
  assert.equal(progressText({ kind: 'report', percentage: 42.4, message: '3.0 MiB of 7.1 MiB' }), '42% · 3.0 MiB of 7.1 MiB');
  assert.equal(progressText({ kind: 'begin' }), undefined);
});

const report = {
  current: 'distilled-1',
  other: 'frontier',
  markdown: '/home/me/exports/compare-1/report.md',
  report: {
    rows: 40,
    frontier_rows: 30,
    models: {
      'distilled-1': { rows: 40, shown_accept_rate: 0.5, chars_saved: 0.25, accept_proxy: 0.3, accept_proxy_on_frontier_rows: 0.3, latency_p50_ms: 41.6, latency_p95_ms: 90, empty_rate: 0.4, size_bytes: 100 * 1048576 },
      frontier: { rows: 30, shown_accept_rate: 0.6, chars_saved: 0.4, accept_proxy: 0.6, latency_p50_ms: 812, latency_p95_ms: 1500, empty_rate: 0, size_bytes: null },
    },
  },
};

test('the compare view puts the numbers users decide on side by side', () => {
  const md = compareMarkdown(report, new Date('2026-12-02T01:00:00Z'));
  assert.match(md, /^# distilled-1 vs frontier/);
  assert.match(md, /\*\*distilled-1 would have been kept 50% as often as frontier \(30\.0% vs 60\.0%\)\.\*\*/);
  assert.match(md, /\| Kept when shown \(accept rate of shown suggestions\) \| 50\.0% \| 60\.0% \|/);
  assert.match(md, /\| Characters of the gold it would have typed for you \| 25\.0% \| 40\.0% \|/);
  assert.match(md, /\| Latency, median \| 42 ms \| 812 ms \|/);
  assert.match(md, /\| Model size \| 100 MiB \| – \|/);
  assert.match(md, /newest held-out completions/);
  assert.match(md, /network included/);
  assert.match(md, /compare-1\/report\.md/);
  assert.equal(verdict('a', 'b', { a: { accept_proxy: 0 }, b: { accept_proxy: 0 } }), 'Neither a nor b produced a suggestion you would have kept on these contexts.');
  assert.match(verdict('a', 'b', { a: {} }), /no figures for b/);
});

test('compare targets: the frontier and every other model that exists', () => {
  const targets = compareTargets(
    {
      default: 'goldiff-default',
      models: [
        { name: 'goldiff-default', path: '/d.gguf', builtin: true, exists: true },
        { name: 'distilled-1', path: '/x.gguf', kind: 'adapter', base: 'goldiff-default', exists: true },
        { name: 'gone', path: '/g.gguf', exists: false },
      ],
    },
    'goldiff-default',
  );
  assert.deepEqual(targets.map((t) => t.other), ['frontier', 'distilled-1']);
  assert.equal(targets[1]?.description, 'adapter on goldiff-default');
});

test('export filters: workspace scope, since, and a date the user types', () => {
  const scopes = scopeItems(['file:///w/app'], ['app']);
  assert.deepEqual(scopes.map((s) => s.label), ['This workspace', 'All workspaces']);
  const since = sinceItems(new Date('2026-12-02T10:00:00Z'));
  assert.deepEqual(since.map((s) => s.since), [undefined, '2026-11-25', '2026-11-02', undefined]);
  assert.equal(since[3]?.ask, true);
  assert.deepEqual(filtersFor(scopes[0]!, '2026-11-25'), { workspace: 'file:///w/app', since: '2026-11-25' });
  assert.deepEqual(filtersFor(scopes[1]!, undefined), {});
  assert.equal(dateProblem('2026-11-01'), undefined);
  assert.ok(dateProblem('1 Nov') !== undefined);
});

test('an empty export explains why and offers what helps', () => {
  const narrow = emptyExport({ counts: { all: 0 }, why: 'None of the 12 recorded suggestions match the filters (since 2026-11-25).' }, { since: '2026-11-25' }, true);
  assert.equal(narrow.message, 'Goldiff exported 0 rows. None of the 12 recorded suggestions match the filters (since 2026-11-25).');
  assert.deepEqual(narrow.actions, [EXPORT_EVERYTHING]);
  const idle = emptyExport({ counts: { all: 0 } }, {}, false);
  assert.match(idle.message, /settled gold/);
  assert.deepEqual(idle.actions, [START_RECORDING]);
});

test('the train extra: what the probe says, and the pip line for a wheel or a checkout', () => {
  assert.deepEqual(parseTrainProbe(0, '/repo\ntorch,peft\n'), { root: '/repo', missing: ['torch', 'peft'] });
  assert.deepEqual(parseTrainProbe(0, '/site\n\n'), { root: '/site', missing: [] });
  assert.equal(parseTrainProbe(1, ''), undefined);
  assert.match(TRAIN_PROBE, /find_spec/); // never imports torch just to look
  const wheel = trainInstall('linux', { file: '/ext/wheels/goldiff-0.1.0-py3-none-any.whl', version: '0.1.0' }, undefined);
  assert.deepEqual(wheel?.args, ['-m', 'pip', 'install', '/ext/wheels/goldiff-0.1.0-py3-none-any.whl[train]', '--extra-index-url', 'https://download.pytorch.org/whl/cpu']);
  assert.match(wheel?.warning ?? '', /1 GB to download.*5–15 minutes/);
  assert.deepEqual(trainInstall('darwin', undefined, '/repo')?.args, ['-m', 'pip', 'install', '-e', '/repo[train]']);
  assert.equal(trainInstall('linux', undefined, undefined), undefined);
  // Offline or behind a mirror: no index pip would retry for every package.
  assert.deepEqual(trainInstall('linux', undefined, '/repo', false)?.args, ['-m', 'pip', 'install', '-e', '/repo[train]']);
  assert.match(manualTrainInstall(['torch']), /missing: torch/);
});

test('an index is reachable when its server answers, and not when nothing listens', async () => {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    assert.equal(await reachable(`http://127.0.0.1:${port}/whl/cpu`), true);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  assert.equal(await reachable(`http://127.0.0.1:${port}/whl/cpu`, 2000), false);
});

test('new commands are declared and named in the protocol', () => {
  const declared = new Set(manifest.contributes.commands.map((c) => c.command));
  assert.ok(declared.has('goldiff.downloadModel') && declared.has('goldiff.compareModels'));
  assert.equal(ServerCommands.pullModel, 'goldiff.pullModel');
  assert.equal(ServerCommands.compare, 'goldiff.compare');
  const py = fs.readFileSync(path.join(root, '..', 'server', 'goldiff', 'protocol.py'), 'utf8');
  assert.match(py, /PULL_MODEL = "goldiff\.pullModel"/);
  assert.match(py, /COMPARE = "goldiff\.compare"/);
});

test('the compare view shows what was recorded: each source as it fared, and shadow mode\'s hidden answers', () => {
  const md = recordedMarkdown({
    survival_after_seconds: 600,
    by_source: [
      { source: 'frontier', model: 'gpt-x', shown: 40, acceptance_rate: 0.25, survival: 0.9 },
      { source: 'local', model: 'tiny', shown: 0, acceptance_rate: null, survival: null },
    ],
    shadow: { answers: 20, empty: 5, matched_shown: 2, settled: 10, matched_kept: 4, local_latency_ms: 80.4, shown_latency_ms: 612 },
  }).join('\n');
  assert.match(md, /\| frontier \| gpt-x \| 40 \| 25\.0% \| 90\.0% \|/);
  assert.doesNotMatch(md, /\| local \| tiny/); // never shown: not a row of what the user saw
  assert.match(md, /answered 20 times beside the shown suggestion, never shown: 25\.0% empty, 10\.0% the same as the shown one/);
  assert.match(md, /and 40\.0% of those whose shown suggestion settled started what you kept \(local 80 ms vs shown 612 ms/);
  assert.deepEqual(recordedMarkdown(undefined), []);
  assert.deepEqual(recordedMarkdown({ by_source: [], shadow: { answers: 0 } }), []);
  assert.match(compareMarkdown({ current: 'a', other: 'frontier', recorded: { by_source: [{ source: 'frontier', model: 'm', shown: 1 }] } }, new Date()), /## What you were shown, as recorded/);
});

