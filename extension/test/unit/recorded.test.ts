import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ServerCommands } from '../../src/protocol';
import { fenced, parseRecorded, recordedDiffTitle, recordedMarkdown, serverMessage } from '../../src/recordedView';

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
  contributes: { commands: { command: string; title: string }[] };
};

// As `goldiff.recorded` answers it (tests/test_recorded_lsp.py checks the server's side).
const ANSWER = {
  uri: 'file:///ws/app.py',
  version: 31,
  text: 'def add(a, b):\n    return total\ny = 3\nKEY = "*****"\n',
  verified: true,
  suggestions: [
    { id: 'b', ts: 1764644400, source: 'local', model: 'goldiff-default', outcome: 'rejected', reason: 'typedOver', shadow: false, text: 'x = 2', gold: 'y = 3', acceptedLength: 0, survival: null },
    { id: 'a', ts: 1764644395, source: 'frontier', model: 'gpt-4.1-mini', outcome: 'accepted', reason: null, shadow: false, text: 'return a + b', gold: 'return total', acceptedLength: 12, survival: 0.5833 },
    { id: 'c', ts: 1764644390, source: 'local', model: 'goldiff-default', outcome: null, reason: null, shadow: true, text: 'pass', gold: null, acceptedLength: null, survival: null },
    { id: 'd', ts: 1764644385, source: 'local', model: 'goldiff-default', outcome: 'empty', reason: null, shadow: false, text: '', gold: null, acceptedLength: null, survival: null },
  ],
};

test('Show What Was Recorded is a declared command, asking the server command protocol.ts names', () => {
  const entry = manifest.contributes.commands.find((c) => c.command === 'goldiff.showRecorded');
  assert.equal(entry?.title, 'Show What Was Recorded');
  assert.equal(ServerCommands.recorded, 'goldiff.recorded');
});

test('the recorded answer is read leniently, and refused without its text', () => {
  const parsed = parseRecorded(ANSWER);
  assert.deepEqual(parsed, ANSWER);
  assert.deepEqual(parseRecorded({ text: 'x' }), { uri: '', version: null, text: 'x', verified: false, suggestions: [] });
  assert.equal(parseRecorded({ uri: 'file:///a' }), undefined);
  assert.equal(parseRecorded(null), undefined);
});

test('the list says each suggestion’s source, model, time, outcome, the suggestion and what was kept', () => {
  const md = recordedMarkdown(parseRecorded(ANSWER)!, 'app.py', 'python');
  assert.equal(
    md,
    [
      '# What Goldiff recorded: app.py',
      '',
      'The diff shows the text rebuilt from the store (version 31) on the left and the file as it is now on the right. Secrets are masked as they were recorded. The same text: `goldiff show file:///ws/app.py`.',
      '',
      'Every recorded step matched the hash stored with it.',
      '',
      '## Its 4 newest suggestions, newest first',
      '',
      '### 2025-12-02 03:00:00 UTC · local (goldiff-default) · rejected (typedOver)',
      '',
      'Suggested:',
      '',
      '```python\nx = 2\n```',
      '',
      'Kept (the gold):',
      '',
      '```python\ny = 3\n```',
      '',
      '### 2025-12-02 02:59:55 UTC · frontier (gpt-4.1-mini) · accepted, 58% still there at the last check',
      '',
      'Suggested:',
      '',
      '```python\nreturn a + b\n```',
      '',
      'Kept (the gold):',
      '',
      '```python\nreturn total\n```',
      '',
      '### 2025-12-02 02:59:50 UTC · local (goldiff-default) · shadow, not shown · pending (not settled yet)',
      '',
      'Suggested:',
      '',
      '```python\npass\n```',
      '',
      'Kept: nothing yet (the gold is known once the file is saved and left alone).',
      '',
      '### 2025-12-02 02:59:45 UTC · local (goldiff-default) · nothing to suggest (the model answered empty)',
      '',
    ].join('\n'),
  );
});

test('a rebuild that failed its hashes is said, and a file without suggestions says so', () => {
  const md = recordedMarkdown({ ...parseRecorded(ANSWER)!, verified: false, suggestions: [] }, 'app.py', 'python');
  assert.match(md, /\*\*Warning:\*\* the rebuilt text does not match a recorded hash/);
  assert.match(md, /No suggestions were recorded in this file\.\n$/);
  assert.equal(recordedDiffTitle('app.py', parseRecorded(ANSWER)!), 'app.py: recorded v31 ↔ now');
});

test('code holding backticks gets a fence it cannot close', () => {
  assert.equal(fenced('a = `x` + ```y```\n', 'ts'), '````ts\na = `x` + ```y```\n````');
});

test('a server error reaches the user as its sentence, without the exception class', () => {
  assert.equal(
    serverMessage('goldiff.errors.NotRecordedError: not recorded: Goldiff has recorded nothing for file:///ws/n.py. Recording is off.'),
    'not recorded: Goldiff has recorded nothing for file:///ws/n.py. Recording is off.',
  );
  assert.equal(serverMessage('ValueError: bad'), 'bad');
  assert.equal(serverMessage('The Goldiff server is not running. Run "Goldiff: Restart Server".'), 'The Goldiff server is not running. Run "Goldiff: Restart Server".');
});
