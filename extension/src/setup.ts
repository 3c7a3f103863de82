/**
 * First run: Goldiff's own server environment. When no interpreter with Goldiff is
 * configured, the extension creates a virtual environment in its global storage (shared
 * by every window, kept across extension updates) from a Python 3.11+ it finds, and
 * installs Goldiff from the wheel bundled in the .vsix, which carries the default model.
 * A newer bundled wheel upgrades that environment in place. The decisions are plain
 * functions over a `SetupSystem`, so tests run them against a faked machine.
 */
import * as path from 'node:path';

export interface RunResult {
  /** Node's spawn error code (ENOENT: no such program). */
  spawnError?: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The machine as the set-up sees it; host-free so unit tests can fake it. */
export interface SetupSystem {
  platform: NodeJS.Platform;
  exists(p: string): boolean;
  readText(p: string): string | undefined;
  writeText(p: string, text: string): void;
  listDir(p: string): string[];
  run(command: string, args: string[], onLine?: (line: string) => void): Promise<RunResult>;
}

export const MIN_PYTHON: readonly [number, number] = [3, 11];
export const VENV_DIR = 'server-venv';
export const STAMP_FILE = 'goldiff-version';

export function venvPython(storageDir: string, platform: NodeJS.Platform): string {
  const dir = path.join(storageDir, VENV_DIR);
  return platform === 'win32' ? path.join(dir, 'Scripts', 'python.exe') : path.join(dir, 'bin', 'python');
}

export function stampPath(storageDir: string): string {
  return path.join(storageDir, VENV_DIR, STAMP_FILE);
}

export interface Wheel {
  file: string;
  version: string;
}

/** The Goldiff wheel bundled in the extension's `wheels/` folder (the newest, if several). */
export function bundledWheel(sys: SetupSystem, extensionDir: string): Wheel | undefined {
  const dir = path.join(extensionDir, 'wheels');
  if (!sys.exists(dir)) {
    return undefined;
  }
  const wheels = sys
    .listDir(dir)
    .map((f) => /^goldiff-([0-9][^-]*)-.*\.whl$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ file: path.join(dir, m[0]), version: m[1]! }))
    .sort((a, b) => compareVersions(b.version, a.version));
  return wheels[0];
}

/** Numeric comparison of dotted versions (1.10 > 1.9); a missing part counts as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((p) => parseInt(p, 10));
  const pb = b.split(/[.+-]/).map((p) => parseInt(p, 10));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = Number.isNaN(pa[i] ?? 0) ? 0 : (pa[i] ?? 0);
    const y = Number.isNaN(pb[i] ?? 0) ? 0 : (pb[i] ?? 0);
    if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

export type SetupDecision =
  /** The user chose an interpreter (goldiff.pythonPath): never second-guess it. */
  | { kind: 'configured' }
  /** Goldiff's environment is there and current. */
  | { kind: 'ready'; python: string }
  /** Goldiff's environment is older than the bundled wheel. */
  | { kind: 'upgrade'; python: string; from: string; to: Wheel }
  /** No environment yet: offer to create one. */
  | { kind: 'install'; wheel: Wheel }
  /** No environment and no bundled wheel (a development build): use the usual interpreter. */
  | { kind: 'none' };

export function decideSetup(
  sys: SetupSystem,
  o: { pythonPathSetting: unknown; storageDir: string; extensionDir: string },
): SetupDecision {
  if (typeof o.pythonPathSetting === 'string' && o.pythonPathSetting.trim() !== '') {
    return { kind: 'configured' };
  }
  const python = venvPython(o.storageDir, sys.platform);
  const wheel = bundledWheel(sys, o.extensionDir);
  const installed = sys.exists(python) ? sys.readText(stampPath(o.storageDir))?.trim() : undefined;
  if (installed !== undefined && installed !== '') {
    if (wheel !== undefined && compareVersions(wheel.version, installed) > 0) {
      return { kind: 'upgrade', python, from: installed, to: wheel };
    }
    return { kind: 'ready', python };
  }
  return wheel === undefined ? { kind: 'none' } : { kind: 'install', wheel };
}

/** Interpreters to try, most specific first. */
export function pythonCandidates(platform: NodeJS.Platform): { command: string; args: string[] }[] {
  if (platform === 'win32') {
    return [
      { command: 'py', args: ['-3'] },
      { command: 'python', args: [] },
      { command: 'python3', args: [] },
    ];
  }
  return ['python3.13', 'python3.12', 'python3.11', 'python3', 'python'].map((command) => ({ command, args: [] }));
}

const VERSION_PROBE = 'import sys, venv; print("%d.%d" % sys.version_info[:2])';

export interface FoundPython {
  command: string;
  args: string[];
  version: string;
}

/** The first candidate that runs, is 3.11 or newer and has `venv`; or why none did. */
export async function findPython(sys: SetupSystem): Promise<{ found?: FoundPython; tried: string[] }> {
  const tried: string[] = [];
  for (const c of pythonCandidates(sys.platform)) {
    const r = await sys.run(c.command, [...c.args, '-c', VERSION_PROBE]);
    const name = [c.command, ...c.args].join(' ');
    if (r.spawnError !== undefined) {
      continue; // not installed under this name
    }
    const version = r.stdout.trim();
    const [major, minor] = version.split('.').map((v) => parseInt(v, 10));
    if (r.code !== 0 || major === undefined || minor === undefined || Number.isNaN(minor)) {
      tried.push(`${name} (no venv module${r.stderr.includes('venv') ? '' : ': ' + (r.stderr.trim().split('\n').pop() ?? '')})`);
      continue;
    }
    if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
      tried.push(`${name} (Python ${version}, too old)`);
      continue;
    }
    return { found: { command: c.command, args: c.args, version }, tried };
  }
  return { tried };
}

/** What to tell a user with no usable Python, per platform. */
export function noPythonMessage(platform: NodeJS.Platform, tried: string[]): string {
  const how =
    platform === 'win32'
      ? 'Install Python 3.11 or newer from python.org (with "py launcher"), then run "Goldiff: Set Up Server".'
      : platform === 'darwin'
        ? 'Install Python 3.11 or newer (python.org, or `brew install python@3.12`), then run "Goldiff: Set Up Server".'
        : 'Install Python 3.11 or newer with venv (for example `sudo apt install python3 python3-venv`), then run "Goldiff: Set Up Server".';
  const seen = tried.length > 0 ? ` Found: ${tried.join(', ')}.` : ' No python3 was found on PATH.';
  return `Goldiff's server needs Python 3.11 or newer.${seen} ${how}`;
}

export interface SetupStep {
  /** Shown in the progress notification. */
  title: string;
  command: string;
  args: string[];
  /** A failure is logged and the set-up goes on (a newer pip is nice, not needed offline). */
  optional?: boolean;
}

/** The commands that create (or upgrade) the environment, in order. */
export function setupSteps(
  storageDir: string,
  platform: NodeJS.Platform,
  base: FoundPython | undefined,
  wheel: Wheel,
): SetupStep[] {
  const python = venvPython(storageDir, platform);
  const steps: SetupStep[] = [];
  if (base !== undefined) {
    steps.push({
      title: `Creating a Python ${base.version} environment`,
      command: base.command,
      args: [...base.args, '-m', 'venv', path.join(storageDir, VENV_DIR)],
    });
  }
  steps.push(
    { title: 'Updating pip', command: python, args: ['-m', 'pip', 'install', '--upgrade', 'pip'], optional: true },
    {
      title: `Installing Goldiff ${wheel.version} and llama-cpp-python (compiles from source where no prebuilt wheel fits: several minutes)`,
      command: python,
      // --upgrade: a newer bundled wheel replaces the installed one in place.
      args: ['-m', 'pip', 'install', '--upgrade', wheel.file],
    },
    { title: 'Checking the server', command: python, args: ['-c', 'import goldiff.lsp'] },
  );
  return steps;
}

export class SetupError extends Error {}

/**
 * Runs the steps, reporting each; writes the version stamp last, so an interrupted
 * set-up is not taken for a finished one and runs again next time.
 */
export async function runSetup(
  sys: SetupSystem,
  storageDir: string,
  base: FoundPython | undefined,
  wheel: Wheel,
  report: (step: string, index: number, count: number) => void,
  log: (line: string) => void,
  cancelled: () => boolean = () => false,
): Promise<string> {
  const steps = setupSteps(storageDir, sys.platform, base, wheel);
  for (const [i, step] of steps.entries()) {
    if (cancelled()) {
      throw new SetupError('The set-up was cancelled; run "Goldiff: Set Up Server" to finish it.');
    }
    report(step.title, i, steps.length);
    log(`$ ${step.command} ${step.args.join(' ')}`);
    const r = await sys.run(step.command, step.args, log);
    if ((r.spawnError !== undefined || r.code !== 0) && step.optional === true) {
      log(`${step.title} failed; going on without it`);
    } else if (r.spawnError !== undefined || r.code !== 0) {
      const last = (r.stderr.trim().split(/\r?\n/).pop() ?? '') || r.spawnError || `exit code ${String(r.code)}`;
      throw new SetupError(`${step.title} failed: ${last}. The Goldiff output has the whole log.`);
    }
  }
  sys.writeText(stampPath(storageDir), wheel.version + '\n');
  return venvPython(storageDir, sys.platform);
}
