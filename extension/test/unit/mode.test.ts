import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { isMode, modePickItems, nextMode, targetFor } from '../../src/mode';
import { shouldAskForCapture } from '../../src/consent';

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

test('the capture opt-in is asked once, only in a workspace, only if no setting decides', () => {
  assert.equal(shouldAskForCapture({}, false, true), true);
  assert.equal(shouldAskForCapture(undefined, false, true), true);
  assert.equal(shouldAskForCapture({}, true, true), false);
  assert.equal(shouldAskForCapture({}, false, false), false);
  assert.equal(shouldAskForCapture({ globalValue: false }, false, true), false);
  assert.equal(shouldAskForCapture({ workspaceValue: true }, false, true), false);
  assert.equal(shouldAskForCapture({ workspaceFolderValue: true }, false, true), false);
});
