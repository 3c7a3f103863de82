/**
 * Which Python runs `python -m goldiff serve`, and what to tell the user when that
 * interpreter cannot. The order is: the `goldiff.pythonPath` setting, then the interpreter
 * selected in the Python extension (if it is installed), then `python3` on PATH
 * (`python` on Windows, where `python3` is often the Store stub). Probing runs
 * `python -c "import goldiff"` once before the language client starts, so a missing
 * package gives one clear message instead of a crash loop.
 */
import { spawn } from 'node:child_process';

export type PythonSource = 'setting' | 'python-extension' | 'default' | 'managed';

export interface PythonChoice {
  command: string;
  source: PythonSource;
}

export function resolvePython(
  setting: unknown,
  pythonExtensionPath: string | undefined,
  platform: NodeJS.Platform,
): PythonChoice {
  if (typeof setting === 'string' && setting.trim() !== '') {
    return { command: expandHome(setting.trim()), source: 'setting' };
  }
  if (pythonExtensionPath !== undefined && pythonExtensionPath.trim() !== '') {
    return { command: pythonExtensionPath.trim(), source: 'python-extension' };
  }
  return { command: platform === 'win32' ? 'python' : 'python3', source: 'default' };
}

function expandHome(p: string): string {
  const home = process.env.HOME ?? process.env.USERPROFILE;
  if (home !== undefined && (p === '~' || p.startsWith('~/'))) {
    return home + p.slice(1);
  }
  return p;
}

export const SERVER_ARGS = ['-m', 'goldiff', 'serve'] as const;

/** The outcome of running the probe, as plain data so the diagnosis can be unit-tested. */
export interface ProbeResult {
  /** Node's spawn error code (ENOENT: no such interpreter). */
  spawnError?: string;
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

const SOURCE_WORDS: Record<PythonSource, string> = {
  setting: 'the goldiff.pythonPath setting',
  'python-extension': "the Python extension's selected interpreter",
  default: 'the default on PATH',
  managed: "Goldiff's own server environment",
};

/** Undefined when the interpreter can run Goldiff; otherwise a sentence saying what to do. */
export function diagnoseProbe(choice: PythonChoice, probe: ProbeResult): string | undefined {
  const who = `${choice.command} (${SOURCE_WORDS[choice.source]})`;
  if (probe.spawnError === 'ENOENT') {
    return `Goldiff could not find the Python interpreter ${who}. Install Python 3.11 or newer, or set goldiff.pythonPath to an interpreter that has Goldiff installed.`;
  }
  if (probe.spawnError !== undefined) {
    return `Goldiff could not run ${who}: ${probe.spawnError}. Set goldiff.pythonPath to a working interpreter.`;
  }
  if (probe.exitCode === 0) {
    return undefined;
  }
  if (/No module named '?goldiff'?/.test(probe.stderr)) {
    return `Goldiff is not installed in ${who}. Run "Goldiff: Set Up Server" to let the extension install its own, or set goldiff.pythonPath to an interpreter that has it.`;
  }
  const lastLine = probe.stderr.trim().split(/\r?\n/).pop() ?? '';
  return `Goldiff failed to load in ${who}: ${lastLine || `exit code ${String(probe.exitCode)}`}. Reinstall it with "${choice.command} -m pip install --upgrade goldiff".`;
}

/** Runs `python -c "import goldiff"` with the server's environment. */
export function probePython(
  command: string,
  env: Record<string, string>,
  timeoutMs = 30000,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let settled = false;
    const done = (r: ProbeResult): void => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    const child = spawn(command, ['-c', 'import goldiff'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      child.kill();
      done({ spawnError: `no answer within ${timeoutMs / 1000} s`, exitCode: null, stdout, stderr });
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      done({ spawnError: err.code ?? err.message, exitCode: null, stdout, stderr });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ exitCode: code, stdout, stderr });
    });
  });
}
