/**
 * The real machine behind `SetupSystem`: files through node:fs, programs through
 * node:child_process with their output passed on line by line (pip's progress goes to
 * the Goldiff output while the notification names the step).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunResult, SetupSystem } from './setup';

export function nodeSetupSystem(env: Record<string, string>): SetupSystem {
  return {
    platform: process.platform,
    exists: (p) => fs.existsSync(p),
    readText: (p) => {
      try {
        return fs.readFileSync(p, 'utf8');
      } catch {
        return undefined;
      }
    },
    writeText: (p, text) => {
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, text);
    },
    listDir: (p) => {
      try {
        return fs.readdirSync(p);
      } catch {
        return [];
      }
    },
    run: (command, args, onLine) =>
      new Promise<RunResult>((resolve) => {
        let stdout = '';
        let stderr = '';
        let settled = false;
        const done = (r: RunResult): void => {
          if (!settled) {
            settled = true;
            resolve(r);
          }
        };
        // pip must not read a config or a virtual environment the editor happened to inherit.
        const childEnv: Record<string, string> = { ...env, PIP_DISABLE_PIP_VERSION_CHECK: '1' };
        delete childEnv.VIRTUAL_ENV;
        delete childEnv.PYTHONHOME;
        const child = spawn(command, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
        const each = (chunk: Buffer, sink: 'out' | 'err'): void => {
          const text = chunk.toString();
          if (sink === 'out') {
            stdout += text;
          } else {
            stderr += text;
          }
          for (const line of text.split(/\r?\n/)) {
            if (line.trim() !== '') {
              onLine?.(line);
            }
          }
        };
        child.stdout.on('data', (d: Buffer) => each(d, 'out'));
        child.stderr.on('data', (d: Buffer) => each(d, 'err'));
        child.on('error', (err: NodeJS.ErrnoException) => done({ spawnError: err.code ?? err.message, code: null, stdout, stderr }));
        child.on('close', (code) => done({ code, stdout, stderr }));
      }),
  };
}

/**
 * One window sets up at a time: the others wait for its lock to go. A lock older than
 * `staleMs` belongs to a window that died mid-way and is taken over.
 */
export async function withSetupLock<T>(storageDir: string, staleMs: number, wait: (ms: number) => Promise<void>, task: () => Promise<T>): Promise<T> {
  const lock = path.join(storageDir, 'setup.lock');
  fs.mkdirSync(storageDir, { recursive: true });
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch {
      let age = 0;
      try {
        age = Date.now() - fs.statSync(lock).mtimeMs;
      } catch {
        continue; // released meanwhile
      }
      if (age > staleMs) {
        fs.rmSync(lock, { force: true });
        continue;
      }
      await wait(2000);
    }
  }
  try {
    return await task();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}
