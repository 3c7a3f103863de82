import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { isMode, modePickItems, nextMode, targetFor } from '../../src/mode';
import { captureEnabled, shouldAskForCapture } from '../../src/consent';

test('toggling walks frontier → local → shadow → frontier', () => {
  assert.equal(nextMode('frontier'), 'local');
  assert.equal(nextMode('local'), 'shadow');
  assert.equal(nextMode('shadow'), 'frontier');
});

test('the quick pick offers the next mode first and marks the current one last', () => {
  const items = modePickItems('local');
  assert.deepEqual(
    items.map((i) => [i.mode, i.description]),
    [
      ['shadow', ''],
      ['frontier', ''],
      ['local', 'current'],
    ],
  );
  assert.ok(items.every((i) => i.detail.length > 0));
});

test('only the three modes are modes', () => {
  assert.ok(isMode('shadow'));
  assert.ok(!isMode('Shadow'));
  assert.ok(!isMode(undefined));
});

test('the toggle writes where the effective value comes from', () => {
  assert.equal(targetFor(undefined), 'global');
  assert.equal(targetFor({ globalValue: 'local' }), 'global');
  assert.equal(targetFor({ globalValue: 'local', workspaceValue: 'frontier' }), 'workspace');
  assert.equal(targetFor({ workspaceValue: 'frontier', workspaceFolderValue: 'shadow' }), 'workspaceFolder');
});

test('the capture opt-in is asked once per workspace, unless the user opted in everywhere', () => {
  assert.equal(shouldAskForCapture(undefined, undefined, true), true);
  assert.equal(shouldAskForCapture(undefined, false, true), true);
  assert.equal(shouldAskForCapture(false, undefined, true), false, 'answered "not now" already');
  assert.equal(shouldAskForCapture(true, undefined, true), false);
  assert.equal(shouldAskForCapture(undefined, true, true), false, 'opted in for every workspace');
  assert.equal(shouldAskForCapture(undefined, undefined, false), false, 'no workspace open');
});

test("a workspace's own answer wins over the user-level setting", () => {
  assert.equal(captureEnabled(undefined, undefined), false);
  assert.equal(captureEnabled(undefined, true), true);
  assert.equal(captureEnabled(false, true), false);
  assert.equal(captureEnabled(true, false), true);
  assert.equal(captureEnabled(undefined, 'true'), false);
});
