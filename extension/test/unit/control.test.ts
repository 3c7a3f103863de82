import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Cancelled, unlessCancelled } from '../../src/cancel';
import { completionBlocked, fileDisabled, globToRegExp, languageEnabled, Snooze } from '../../src/control';
import { distillOutcome, evaluateArgs, keptBaseMessage } from '../../src/distill';
import { menuItems, snoozeItems } from '../../src/menu';
import { modelPickItems } from '../../src/models';

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
  contributes: {
    commands: { command: string; title: string }[];
    keybindings: { command: string; key: string }[];
    configuration: { properties: Record<string, { default?: unknown }> };
  };
};

test('the enable map: a language entry wins, then "*", and anything else means enabled', () => {
  const map = { '*': true, plaintext: false };
  assert.equal(languageEnabled(map, 'python'), true);
  assert.equal(languageEnabled(map, 'plaintext'), false);
  assert.equal(languageEnabled({ '*': false, python: true }, 'python'), true);
  assert.equal(languageEnabled({ '*': false, python: true }, 'rust'), false);
  assert.equal(languageEnabled(undefined, 'python'), true);
  assert.equal(languageEnabled(['python'], 'python'), true);
  assert.equal(languageEnabled({ python: 'no' }, 'python'), true);
  const declared = manifest.contributes.configuration.properties['goldiff.enable']?.default;
  assert.equal(languageEnabled(declared, 'plaintext'), false);
  assert.equal(languageEnabled(declared, 'typescript'), true);
});

test('disabled file globs match as files.exclude patterns do', () => {
  assert.ok(globToRegExp('*.min.js').test('/w/dist/app.min.js'));
  assert.ok(!globToRegExp('*.min.js').test('/w/dist/app.js'));
  assert.ok(globToRegExp('**/generated/**').test('/w/src/generated/a/b.py'));
  assert.ok(!globToRegExp('**/generated/**').test('/w/src/gen/b.py'));
  assert.ok(globToRegExp('*.{md,txt}').test('/w/README.md'));
  assert.ok(globToRegExp('src/?.ts').test('/w/src/a.ts'));
  assert.ok(!globToRegExp('src/?.ts').test('/w/src/ab.ts'));
  assert.equal(fileDisabled(['**/vendor/**'], 'C:\\w\\vendor\\x.go'), true);
  assert.equal(fileDisabled('not a list', '/w/x.go'), false);
});

test('completions are blocked by snooze, language, file and manual mode, in that order', () => {
  const q = { languageId: 'python', path: '/w/a.py', invoked: false, now: 1000 };
  const c = { enable: { '*': true }, disabledFiles: [], trigger: 'automatic', snoozedUntil: undefined };
  assert.equal(completionBlocked(q, c), undefined);
  assert.equal(completionBlocked(q, { ...c, snoozedUntil: 2000 }), 'snoozed');
  assert.equal(completionBlocked(q, { ...c, snoozedUntil: 1000 }), undefined);
  assert.match(completionBlocked(q, { ...c, enable: { python: false } }) ?? '', /disabled for python/);
  assert.match(completionBlocked(q, { ...c, disabledFiles: ['*.py'] }) ?? '', /disabledFiles/);
  assert.equal(completionBlocked(q, { ...c, trigger: 'manual' }), 'manual trigger mode');
  // Asked for explicitly, manual mode answers.
  assert.equal(completionBlocked({ ...q, invoked: true }, { ...c, trigger: 'manual' }), undefined);
});

test('a snooze lasts its minutes and can be ended early', () => {
  const s = new Snooze();
  assert.equal(s.active(0), undefined);
  const until = s.snooze(15, 0);
  assert.equal(until, 15 * 60000);
  assert.equal(s.active(60000), until);
  assert.equal(s.active(until), undefined);
  s.snooze(5, 0);
  s.resume();
  assert.equal(s.active(1), undefined);
  assert.deepEqual(snoozeItems([5, 60, 120]).map((i) => i.label), ['5 minutes', '1 hour', '2 hours']);
});

test('the status menu offers mode, model, recording, snooze, stats, what was recorded, compare, log and doctor', () => {
  const base = { state: 'running' as const, mode: 'local', model: 'goldiff-default', recording: true, snoozedUntil: undefined, manual: false, now: 0 };
  const commands = menuItems(base).map((i) => i.command);
  assert.deepEqual(commands, [
    'goldiff.toggleModel',
    'goldiff.pickModel',
    'goldiff.disableCapture',
    'goldiff.snooze',
    'goldiff.triggerCompletion',
    'goldiff.showStats',
    'goldiff.showRecorded',
    'goldiff.compareModels',
    'goldiff.showLog',
    'goldiff.doctor',
  ]);
  const failedSnoozed = menuItems({ ...base, state: 'failed', recording: false, snoozedUntil: 60000 }).map((i) => i.command);
  assert.equal(failedSnoozed[0], 'goldiff.restartServer');
  assert.ok(failedSnoozed.includes('goldiff.enableCapture') && failedSnoozed.includes('goldiff.resume'));
  // Every entry runs a command the extension declares.
  const declared = new Set(manifest.contributes.commands.map((c) => c.command));
  for (const c of [...commands, ...failedSnoozed]) {
    assert.ok(declared.has(c), `${c} is not declared in package.json`);
  }
});

test('keybindings exist for toggle mode, snooze, trigger and Edit with Model', () => {
  const bound = manifest.contributes.keybindings.map((k) => k.command).sort();
  assert.deepEqual(bound, ['goldiff.editWithModel', 'goldiff.snooze', 'goldiff.toggleModel', 'goldiff.triggerCompletion']);
});

test('Distill Now reads the name the server returns and offers to use and evaluate it', () => {
  // The shape of goldiff.distill's answer (distill_from_store in the server).
  const result = {
    name: 'distilled-20261201-2100',
    gguf: '/home/u/.goldiff/models/distilled-20261201-2100/model-Q4_K_M.gguf',
    qtype: 'Q4_K_M',
    steps: 24,
    train_loss: 1.23456,
    train_seconds: 61.6,
    lineage: { base: '/m/base.gguf' },
  };
  const outcome = distillOutcome(result);
  assert.equal(outcome?.name, 'distilled-20261201-2100');
  assert.equal(outcome?.message, 'Goldiff distilled distilled-20261201-2100 (24 steps, loss 1.235, 62 s).');
  assert.equal(distillOutcome({ adapter: 'x' }), undefined);
  assert.equal(distillOutcome(null), undefined);
  assert.deepEqual(evaluateArgs('m1'), ['-m', 'goldiff', 'eval', '--distilled', 'm1']);
  assert.equal(keptBaseMessage(result), undefined);
});

test('Distill Now says why when the fine-tune never beat its base and nothing was registered', () => {
  // distill_from_store's answer when early stopping kept the base's own weights.
  const result = {
    name: null,
    kept_base: true,
    best_step: 0,
    promotion: { promoted: false, reason: 'no step beat the base on the validation gold' },
  };
  assert.equal(distillOutcome(result), undefined);
  assert.equal(
    keptBaseMessage(result),
    'Goldiff kept the current model: no step beat the base on the validation gold. Keep working and distill again later.',
  );
});

test('the model picker lists the registry with lineage and marks the current choice', () => {
  const items = modelPickItems(
    {
      default: 'goldiff-default',
      models: [
        { name: 'goldiff-default', path: '/p/d.gguf', kind: 'model', builtin: true, exists: true },
        {
          name: 'distilled-1',
          path: '/p/x.gguf',
          kind: 'model',
          lineage: { base: '/p/d.gguf', train_rows: 120, train_loss: 0.5 },
          registered_at: 1764622800,
          exists: true,
        },
      ],
    },
    'distilled-1',
  );
  assert.deepEqual(items.map((i) => i.label), [
    'Registry default',
    'goldiff-default',
    'distilled-1',
    '$(cloud-download) Download…',
    '$(file-add) Add GGUF File…',
  ]);
  assert.equal(items[0]?.value, '');
  assert.equal(items[2]?.description, 'current');
  assert.equal(items[2]?.detail, 'base d.gguf · 120 rows · loss 0.500 · 2025-12-01');
  assert.equal(items[1]?.description, 'shipped');
  assert.equal(items[3]?.download, true);
  assert.equal(items[4]?.addFile, true);
  assert.equal(modelPickItems(undefined, '').length, 3);
});

test('a cancelled request is Cancelled whether the client resolves or rejects it', async () => {
  const cancelled = { isCancellationRequested: true };
  await assert.rejects(unlessCancelled(cancelled, () => Promise.resolve(undefined)), Cancelled);
  await assert.rejects(unlessCancelled(cancelled, () => Promise.reject(new Error('Request got cancelled'))), Cancelled);
  assert.deepEqual(await unlessCancelled({ isCancellationRequested: false }, () => Promise.resolve({ rows: 3 })), { rows: 3 });
  await assert.rejects(unlessCancelled(undefined, () => Promise.reject(new Error('boom'))), /boom/);
});
