import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  bundledWheel,
  compareVersions,
  decideSetup,
  findPython,
  noPythonMessage,
  runSetup,
  SetupError,
  setupSteps,
  stampPath,
  venvPython,
  type RunResult,
  type SetupSystem,
} from '../../src/setup';

/** A machine in memory: files, and programs that answer from a table. */
function fakeSystem(
  files: Record<string, string>,
  programs: Record<string, (args: string[]) => RunResult> = {},
  platform: NodeJS.Platform = 'linux',
): SetupSystem & { ran: string[] } {
  const ran: string[] = [];
  return {
    platform,
    ran,
    exists: (p) => p in files || Object.keys(files).some((f) => f.startsWith(p + path.sep)),
    readText: (p) => files[p],
    writeText: (p, text) => {
      files[p] = text;
    },
    listDir: (p) =>
      Object.keys(files)
        .filter((f) => path.dirname(f) === p)
        .map((f) => path.basename(f)),
    run: (command, args) => {
      ran.push([command, ...args].join(' '));
      const program = programs[command];
      return Promise.resolve(
        program === undefined ? { spawnError: 'ENOENT', code: null, stdout: '', stderr: '' } : program(args),
      );
    },
  };
}

const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
const EXT = '/ext';
const STORE = '/store';
const WHEEL = '/ext/wheels/goldiff-0.2.0-py3-none-any.whl';

test('versions compare numerically', () => {
  assert.equal(compareVersions('0.10.0', '0.9.9'), 1);
  assert.equal(compareVersions('0.1', '0.1.0'), 0);
  assert.equal(compareVersions('1.0.0', '1.0.1'), -1);
});

test('the bundled wheel is found with its version, the newest of several', () => {
  const sys = fakeSystem({ [WHEEL]: '', '/ext/wheels/goldiff-0.1.0-py3-none-any.whl': '', '/ext/wheels/other.txt': '' });
  assert.deepEqual(bundledWheel(sys, EXT), { file: WHEEL, version: '0.2.0' });
  assert.equal(bundledWheel(fakeSystem({}), EXT), undefined);
});

test('the set-up decision: a configured interpreter wins, then the environment, then the offer', () => {
  const python = venvPython(STORE, 'linux');
  const o = { pythonPathSetting: '', storageDir: STORE, extensionDir: EXT };
  assert.deepEqual(decideSetup(fakeSystem({ [WHEEL]: '' }), { ...o, pythonPathSetting: '/usr/bin/python3' }), { kind: 'configured' });
  assert.deepEqual(decideSetup(fakeSystem({ [WHEEL]: '' }), o), { kind: 'install', wheel: { file: WHEEL, version: '0.2.0' } });
  assert.deepEqual(decideSetup(fakeSystem({}), o), { kind: 'none' });
  // Set up with the bundled version: ready, in every window (the storage is global).
  assert.deepEqual(decideSetup(fakeSystem({ [WHEEL]: '', [python]: '', [stampPath(STORE)]: '0.2.0\n' }), o), { kind: 'ready', python });
  // An older environment is upgraded in place; a newer one (a downgraded extension) is kept.
  assert.deepEqual(decideSetup(fakeSystem({ [WHEEL]: '', [python]: '', [stampPath(STORE)]: '0.1.0' }), o), {
    kind: 'upgrade',
    python,
    from: '0.1.0',
    to: { file: WHEEL, version: '0.2.0' },
  });
  assert.equal(decideSetup(fakeSystem({ [WHEEL]: '', [python]: '', [stampPath(STORE)]: '0.3.0' }), o).kind, 'ready');
  // An interrupted set-up (no stamp) is offered again.
  assert.equal(decideSetup(fakeSystem({ [WHEEL]: '', [python]: '' }), o).kind, 'install');
});

test('finding Python: the first 3.11+ with venv, skipping missing and old ones', async () => {
  const sys = fakeSystem({}, {
    'python3.12': () => ({ code: 1, stdout: '', stderr: "ModuleNotFoundError: No module named 'venv'" }),
    python3: () => ok('3.9\n'),
    python: () => ok('3.11\n'),
  });
  const { found, tried } = await findPython(sys);
  assert.deepEqual(found, { command: 'python', args: [], version: '3.11' });
  assert.deepEqual(tried, ['python3.12 (no venv module)', 'python3 (Python 3.9, too old)']);
  const none = await findPython(fakeSystem({}));
  assert.equal(none.found, undefined);
  assert.match(noPythonMessage('linux', none.tried), /No python3 was found on PATH\..*apt install python3 python3-venv/);
  assert.match(noPythonMessage('win32', ['python (Python 3.8, too old)']), /Found: python \(Python 3\.8, too old\)\..*python\.org/);
  assert.deepEqual((await findPython(fakeSystem({}, { py: () => ok('3.12') }, 'win32'))).found, { command: 'py', args: ['-3'], version: '3.12' });
});

test('set-up steps: create the environment, install the wheel (the slow step is named), check, then stamp', async () => {
  const python = venvPython(STORE, 'linux');
  const base = { command: 'python3', args: [], version: '3.11' };
  const wheel = { file: WHEEL, version: '0.2.0' };
  const steps = setupSteps(STORE, 'linux', base, wheel);
  assert.deepEqual(steps.map((s) => [s.command, ...s.args].join(' ')), [
    `python3 -m venv ${path.join(STORE, 'server-venv')}`,
    `${python} -m pip install --upgrade pip`,
    `${python} -m pip install --upgrade ${WHEEL}`,
    `${python} -c import goldiff.lsp`,
  ]);
  assert.match(steps[2]!.title, /llama-cpp-python.*several minutes/);
  // An upgrade reuses the environment: no venv step.
  assert.equal(setupSteps(STORE, 'linux', undefined, wheel).length, 3);

  const files: Record<string, string> = {};
  const sys = fakeSystem(files, { python3: () => ok(), [python]: () => ok() });
  const reported: string[] = [];
  const result = await runSetup(sys, STORE, base, wheel, (s, i, n) => reported.push(`${i + 1}/${n} ${s}`), () => undefined);
  assert.equal(result, python);
  assert.equal(reported.length, 4);
  assert.equal(files[stampPath(STORE)], '0.2.0\n');
});

test('a failed step stops the set-up with its last error line, and leaves no stamp', async () => {
  const python = venvPython(STORE, 'linux');
  const files: Record<string, string> = {};
  const sys = fakeSystem(files, {
    python3: () => ok(),
    [python]: (args) =>
      args.includes(WHEEL)
        ? { code: 1, stdout: '', stderr: 'Building wheel\nerror: CMake not found' }
        : args.includes('pip') && args.at(-1) === 'pip'
          ? { code: 1, stdout: '', stderr: 'no network' } // offline: pip stays as it is
          : ok(),
  });
  await assert.rejects(
    runSetup(sys, STORE, { command: 'python3', args: [], version: '3.11' }, { file: WHEEL, version: '0.2.0' }, () => undefined, () => undefined),
    (err: Error) => err instanceof SetupError && /Installing Goldiff 0\.2\.0.*failed: error: CMake not found/.test(err.message),
  );
  assert.equal(files[stampPath(STORE)], undefined);
  // Cancelled before a step: nothing more runs.
  const sys2 = fakeSystem({}, { python3: () => ok() });
  await assert.rejects(
    runSetup(sys2, STORE, undefined, { file: WHEEL, version: '0.2.0' }, () => undefined, () => undefined, () => true),
    /cancelled/,
  );
  assert.deepEqual(sys2.ran, []);
});
