import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { diagnoseProbe, probePython, resolvePython } from '../../src/python';

test('the setting wins, then the Python extension, then python3 (python on Windows)', () => {
  assert.deepEqual(resolvePython('/venv/bin/python', '/ext/python', 'linux'), {
    command: '/venv/bin/python',
    source: 'setting',
  });
  assert.deepEqual(resolvePython('  ', '/ext/python', 'linux'), { command: '/ext/python', source: 'python-extension' });
  assert.deepEqual(resolvePython(undefined, undefined, 'linux'), { command: 'python3', source: 'default' });
  assert.deepEqual(resolvePython('', '', 'win32'), { command: 'python', source: 'default' });
});

test('a leading ~ in the setting means the home folder', () => {
  const home = process.env.HOME;
  process.env.HOME = '/home/dev';
  try {
    assert.equal(resolvePython('~/venv/bin/python', undefined, 'linux').command, '/home/dev/venv/bin/python');
  } finally {
    process.env.HOME = home;
  }
});

test('a real interpreter is diagnosed by importing goldiff: installed, or the pip command', async () => {
  const choice = resolvePython(undefined, undefined, process.platform);
  const probe = await probePython(choice.command, { PATH: process.env.PATH ?? '' });
  if (probe.spawnError === 'ENOENT') {
    // No python3 on this machine: the ENOENT test below covers that path.
    return;
  }
  const message = diagnoseProbe(choice, probe);
  if (probe.exitCode === 0) {
    assert.equal(message, undefined);
  } else {
    assert.equal(
      message,
      `Goldiff is not installed in ${choice.command} (the default on PATH). Run "Goldiff: Set Up Server" to let the extension install its own, or set goldiff.pythonPath to an interpreter that has it.`,
    );
  }
});

function fakePackage(body: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'goldiff-probe-'));
  fs.mkdirSync(path.join(dir, 'goldiff'));
  fs.writeFileSync(path.join(dir, 'goldiff', '__init__.py'), body);
  return dir;
}

test('a package that fails to import is reported with its own error line', async (t) => {
  const choice = resolvePython(undefined, undefined, process.platform);
  const dir = fakePackage('raise ImportError("libllama.so: cannot open shared object file")\n');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const probe = await probePython(choice.command, { PATH: process.env.PATH ?? '', PYTHONPATH: dir });
  if (probe.spawnError === 'ENOENT') {
    return;
  }
  assert.equal(
    diagnoseProbe(choice, probe),
    `Goldiff failed to load in ${choice.command} (the default on PATH): ImportError: libllama.so: cannot open shared object file. Reinstall it with "${choice.command} -m pip install --upgrade goldiff".`,
  );
  const ok = fakePackage('');
  t.after(() => fs.rmSync(ok, { recursive: true, force: true }));
  const good = await probePython(choice.command, { PATH: process.env.PATH ?? '', PYTHONPATH: ok });
  assert.equal(diagnoseProbe(choice, good), undefined);
});

test('a missing interpreter is diagnosed from the real spawn error', async () => {
  const choice = resolvePython('/nonexistent/bin/python', undefined, 'linux');
  const probe = await probePython(choice.command, { PATH: '/usr/bin' });
  assert.equal(probe.spawnError, 'ENOENT');
  assert.match(diagnoseProbe(choice, probe) ?? '', /could not find the Python interpreter \/nonexistent\/bin\/python \(the goldiff.pythonPath setting\)/);
});

test('an importable package passes, a broken one names its last error line', () => {
  const choice = { command: 'py', source: 'setting' as const };
  assert.equal(diagnoseProbe(choice, { exitCode: 0, stdout: '', stderr: '' }), undefined);
  assert.equal(
    diagnoseProbe(choice, { exitCode: 1, stdout: '', stderr: 'Traceback\n  ...\nImportError: libfoo.so missing\n' }),
    'Goldiff failed to load in py (the goldiff.pythonPath setting): ImportError: libfoo.so missing. Reinstall it with "py -m pip install --upgrade goldiff".',
  );
});
