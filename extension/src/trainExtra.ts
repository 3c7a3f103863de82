/**
 * Distill Now needs Goldiff's `train` extra (PyTorch, transformers, peft, trl), which the
 * first-run environment leaves out: serving does not need it and it is large. Before
 * distilling, the extension asks the server's interpreter which of those modules are
 * missing (without importing them: PyTorch alone takes seconds to import) and, when some
 * are, offers to install the extra with the size and time said up front.
 */
import * as http from 'node:http';
import * as https from 'node:https';

import type { Wheel } from './setup';

export const TRAIN_MODULES = ['torch', 'transformers', 'peft', 'trl'] as const;

/** Prints the folder above the `goldiff` package, then the missing modules, comma-separated. */
export const TRAIN_PROBE = [
  'import importlib.util as u, pathlib, goldiff',
  'print(pathlib.Path(goldiff.__file__).resolve().parents[2])',
  `print(",".join(m for m in ${JSON.stringify(TRAIN_MODULES)} if u.find_spec(m) is None))`,
].join('\n');

export interface TrainProbe {
  /** The folder above `goldiff/` (a checkout's `server/`'s parent holds pyproject.toml). */
  root: string | undefined;
  missing: string[];
}

export function parseTrainProbe(code: number | null, stdout: string): TrainProbe | undefined {
  if (code !== 0) {
    return undefined;
  }
  const [root, missing] = stdout.split(/\r?\n/);
  return {
    root: root?.trim() || undefined,
    missing: (missing ?? '').split(',').map((m) => m.trim()).filter((m) => m !== ''),
  };
}

// PyTorch's CPU build (what the pinned torch is on Linux and Windows without CUDA) comes
// from its own index; from PyPI alone pip would fetch the multi-GB CUDA build on Linux.
export const CPU_INDEX = 'https://download.pytorch.org/whl/cpu';

export interface TrainInstall {
  args: string[];
  /** What the user is told before saying yes. */
  warning: string;
}

/**
 * The pip line that adds the extra: from the bundled wheel (the first-run environment),
 * or editable from a checkout (`pyproject.toml` beside `server/`). Undefined when neither
 * is known: then the user is told the command to run themselves.
 */
export function trainInstall(
  platform: NodeJS.Platform,
  wheel: Wheel | undefined,
  checkout: string | undefined,
  cpuIndex = true,
): TrainInstall | undefined {
  let target: string[];
  if (wheel !== undefined) {
    target = [`${wheel.file}[train]`];
  } else if (checkout !== undefined) {
    target = ['-e', `${checkout}[train]`];
  } else {
    return undefined;
  }
  // Unreachable (offline, a mirror only): pip would retry it for every package, minutes
  // in all, so the install then relies on the indexes pip is configured with.
  const index = platform === 'darwin' || !cpuIndex ? [] : ['--extra-index-url', CPU_INDEX];
  return {
    args: ['-m', 'pip', 'install', ...target, ...index],
    warning:
      'Distill Now trains on this machine and needs Goldiff\'s training extra: PyTorch (CPU build), transformers, peft and trl. ' +
      'That is about 1 GB to download and 2–3 GB on disk, and takes 5–15 minutes to install. ' +
      'Serving completions does not need it. Install it now into the server\'s Python environment?',
  };
}

export function manualTrainInstall(missing: string[]): string {
  return `Distill Now needs Goldiff's training extra (missing: ${missing.join(', ')}). Install it into the server's interpreter with \`pip install -e '.[train]'\` from a Goldiff checkout, then run Distill Now again.`;
}

export const INSTALL_TRAIN = 'Install (about 1 GB)';

/** Whether `url`'s server answers at all within `timeoutMs` (any HTTP status below 500). */
export function reachable(url: string, timeoutMs = 5000): Promise<boolean> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? https.request : http.request;
    const req = get(url, { method: 'HEAD', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 500);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

