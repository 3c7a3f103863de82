/**
 * End-to-end test of the extension in a real VS Code: code-server (VS Code served to a
 * browser) with the packaged .vsix installed, driven by headless Chromium through
 * playwright-core, against the real `goldiff serve` from the Python named by
 * GOLDIFF_E2E_PYTHON. Each step is checked where it matters, in the trace store through
 * `goldiff stats --json` and SQLite, and leaves a screenshot in test-results/.
 *
 * Steps whose server feature is not there yet (inline completion, export) are reported
 * as skipped with the reason, so the run stays meaningful while the server grows; set
 * GOLDIFF_E2E_REQUIRE_ALL=1 to make them failures instead. code-server runs in its own
 * process group and is always killed with it, whatever happens to this script.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';

const EXT_DIR = path.resolve(__dirname, '..', '..', '..');
const RESULTS = process.env.GOLDIFF_E2E_RESULTS ?? path.join(EXT_DIR, 'test-results');
const PYTHON = process.env.GOLDIFF_E2E_PYTHON ?? 'python3';
const CODE_SERVER = process.env.GOLDIFF_E2E_CODE_SERVER ?? '';
const VSIX = process.env.GOLDIFF_E2E_VSIX ?? path.join(EXT_DIR, 'goldiff.vsix');
const CHROMIUM = process.env.GOLDIFF_E2E_CHROMIUM ?? '/usr/bin/chromium';
const REQUIRE_ALL = process.env.GOLDIFF_E2E_REQUIRE_ALL === '1';
const KEEP = process.env.GOLDIFF_E2E_KEEP === '1';
// First run: no goldiff.pythonPath, a python3 without Goldiff on PATH, and the user
// accepts the extension's offer to set up its own server from the wheel in the .vsix.
const FIRST_RUN = process.env.GOLDIFF_E2E_FIRST_RUN === '1';
// GOLDIFF_E2E_STEPS=a,b,c runs only these steps, in their usual order (the editor benchmark
// runs the ghost-text ones); unset, every step runs.
const ONLY = (process.env.GOLDIFF_E2E_STEPS ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
const SETUP_TIMEOUT_MS = Number(process.env.GOLDIFF_E2E_SETUP_TIMEOUT_S ?? '1800') * 1000;

type Outcome = 'passed' | 'failed' | 'skipped';

interface StepResult {
  name: string;
  outcome: Outcome;
  seconds: number;
  detail: string;
  screenshot?: string;
}

class Skip extends Error {}

interface Ctx {
  tmp: string;
  home: string;
  ws: string;
  page: Page;
  features: Features;
  model: string;
  /** code-server's process group: the extension host and the Goldiff server are in it. */
  group: number;
  userData: string;
}

// A frontier API key typed in the e2e; after the run it must be found in no file.
const SECRET = 'sk-goldiff-e2e-5f3a9c1e7b2d4068';

/** Files under `root` whose bytes contain `needle`. */
function filesContaining(root: string, needle: string): string[] {
  const hits: string[] = [];
  for (const f of fs.readdirSync(root, { recursive: true, encoding: 'utf8' })) {
    const full = path.join(root, f);
    try {
      if (fs.statSync(full).isFile() && fs.readFileSync(full).includes(needle)) {
        hits.push(f);
      }
    } catch {
      // Sockets and files that vanished while walking.
    }
  }
  return hits;
}

/** PIDs of `goldiff serve` processes in code-server's process group. */
function serverPids(group: number): number[] {
  const r = spawnSync('ps', ['-eo', 'pid=,pgid=,args='], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => Number(f[1]) === group && f.slice(2).join(' ').includes('-m goldiff serve'))
    .map((f) => Number(f[0]));
}

function log(message: string): void {
  process.stderr.write(`[e2e ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) {
        return v;
      }
    } catch (err) {
      lastError = String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${lastError ? ` (${lastError})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Runs Python with the server's package; returns stdout, throws with stderr on failure. */
function python(args: string[], input?: string): string {
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', input, env: process.env, timeout: 60000 });
  if (r.error) {
    throw r.error;
  }
  if (r.status !== 0) {
    throw new Error(`${PYTHON} ${args.join(' ')} exited ${String(r.status)}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

interface Features {
  requests: string[];
  commands: string[];
  /** The shipped default GGUF, if this checkout has one. */
  defaultModel: string | null;
}

/** What the server under test can do, read from the server object itself. */
function serverFeatures(): Features {
  const out = python([
    '-c',
    [
      'import json, sys, tempfile',
      'from pathlib import Path',
      'from goldiff.lsp import build_server',
      's = build_server(Path(tempfile.mkdtemp()))',
      'fm = s.protocol.fm',
      'try:',
      '    from goldiff.sources.registry import default_model_path',
      '    model = default_model_path()',
      'except ImportError:',
      '    model = None',
      'print(json.dumps({"requests": sorted(fm.features), "commands": sorted(fm.commands),',
      '                  "defaultModel": str(model) if model else None}))',
      's.close_store()',
    ].join('\n'),
  ]);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as Features;
}

const LATENCY_SAMPLES = 12;
const GHOST_WAIT_MS = 10000;

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = ((sorted.length - 1) * q) / 100;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return Math.round(sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo));
}

/**
 * Milliseconds from the keystroke `press` sends to the first ghost-text decoration, timed
 * in the page (a keydown listener and a MutationObserver on one clock); null if none
 * appears within GHOST_WAIT_MS.
 */
async function keystrokeToGhostText(page: Page, press: () => Promise<void>): Promise<number | null> {
  // Page-side code as text: this file is compiled without the DOM's types. It answers at
  // once (an evaluated promise would be awaited) and leaves the probe on the window.
  await page.evaluate(`(() => { window.goldiffGhost = new Promise((resolve) => {
    let t0 = 0;
    const selector = '.ghost-text-decoration, .ghost-text-decoration-preview';
    const observer = new MutationObserver(() => {
      if (t0 > 0 && document.querySelector(selector) !== null) {
        observer.disconnect();
        resolve(performance.now() - t0);
      }
    });
    window.addEventListener('keydown', () => (t0 = performance.now()), { capture: true, once: true });
    observer.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['class'] });
    setTimeout(() => { observer.disconnect(); resolve(null); }, ${GHOST_WAIT_MS});
  }); return true; })()`);
  await press();
  const ms = await page.evaluate<number | null>('window.goldiffGhost');
  return ms === null ? null : Math.round(ms);
}

// What the ghost-text step types, and what the deterministic source answers to it.
const TYPED = 'def add(a: int, b: int) -> int:\n    ';
const DETERMINISTIC_SPEC =
  'test:' + JSON.stringify({ rules: [{ after: 'def add(a: int, b: int) -> int:\n    ', text: 'return a + b' }] });

/**
 * The local model the ghost-text step runs: GOLDIFF_E2E_LOCAL_MODEL if set, else the
 * shipped default GGUF (empty setting), else the server's deterministic test source, so
 * the editor side is still exercised on a checkout without a model file.
 */
function localModel(features: Features): { setting: string; description: string } {
  const explicit = process.env.GOLDIFF_E2E_LOCAL_MODEL;
  if (explicit !== undefined && explicit !== '') {
    return { setting: explicit, description: `GOLDIFF_E2E_LOCAL_MODEL=${explicit}` };
  }
  if (features.defaultModel !== null) {
    return { setting: '', description: `the shipped default model ${features.defaultModel}` };
  }
  return { setting: DETERMINISTIC_SPEC, description: "the server's deterministic test source (no shipped GGUF here)" };
}

function stats(home: string): Record<string, unknown> {
  return JSON.parse(python(['-m', 'goldiff', 'stats', '--json', '--home', home])) as Record<string, unknown>;
}

function sql(home: string, query: string): unknown[][] {
  const out = python([
    '-c',
    'import json, sqlite3, sys\n' +
      'db = sqlite3.connect(sys.argv[1])\n' +
      'print(json.dumps(db.execute(sys.argv[2]).fetchall()))',
    path.join(home, 'traces.db'),
    query,
  ]);
  return JSON.parse(out) as unknown[][];
}

// ---- the editor ----------------------------------------------------------------------

function statusItem(page: Page): ReturnType<Page['locator']> {
  return page.locator('.statusbar-item [aria-label^="Goldiff: "], .statusbar-item[aria-label^="Goldiff: "]').first();
}

async function statusLabel(page: Page): Promise<string> {
  return (await statusItem(page).getAttribute('aria-label', { timeout: 1000 })) ?? '';
}

async function runCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 10000 });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 10000 });
  await row.click();
}

/**
 * A notification by its text: its toast, or its row in the notification center. VS Code
 * tucks a toast away when others come and go (a first run's set-up shows three in a row),
 * and the question is still there to answer, as a user would find it under the bell; once
 * the center is open, new notifications show there, not as toasts.
 */
async function notification(page: Page, text: RegExp, timeout: number): Promise<Locator> {
  const toast = page.locator('.notification-toast', { hasText: text }).first();
  const row = page.locator('.notifications-center .monaco-list-row', { hasText: text }).first();
  const shown = async (): Promise<Locator | undefined> =>
    (await toast.isVisible().catch(() => false)) ? toast : (await row.isVisible().catch(() => false)) ? row : undefined;
  try {
    return await waitFor(`the notification ${text}`, timeout, shown);
  } catch (err) {
    await runCommand(page, 'Notifications: Show Notifications');
    if (!(await row.waitFor({ state: 'visible', timeout: 10000 }).then(() => true, () => false))) {
      throw err;
    }
    await row.click(); // expanded, it shows its buttons
    return row;
  }
}

async function pickQuickItem(page: Page, label: string): Promise<void> {
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first();
  await row.waitFor({ state: 'visible', timeout: 10000 });
  await row.click();
}

async function openFile(page: Page, name: string): Promise<void> {
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 10000 });
  await input.fill(name);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().waitFor({ timeout: 10000 });
  await page.keyboard.press('Enter');
  await page.locator(`.tab.active[aria-label*="${name}"], .tab.active:has-text("${name}")`).first().waitFor({ timeout: 10000 });
}

/** An editor's rendered text: Monaco draws spaces as no-break spaces. */
async function shownText(locator: ReturnType<Page['locator']>): Promise<string> {
  return ((await locator.textContent()) ?? '').replace(/\u00a0/g, ' ');
}

/** Fails with an error toast's text if one is showing (a command answered an error). */
async function noErrorToast(page: Page): Promise<void> {
  const toast = page.locator('.notification-toast:has(.codicon-error)').first();
  if (await toast.isVisible().catch(() => false)) {
    throw new Error(`error shown: ${((await toast.textContent()) ?? '').trim()}`);
  }
}

// ---- steps ---------------------------------------------------------------------------

const steps: { name: string; run: (c: Ctx) => Promise<string> }[] = [
  {
    name: 'activate',
    run: async ({ page }) => {
      // The label comes from the server's goldiff.status, so it proves the server runs.
      const label = await waitFor('the Goldiff status bar item to show a mode', 60000, async () => {
        const l = await statusLabel(page);
        return /^Goldiff: (local|frontier|shadow)\b/.test(l) ? l : undefined;
      });
      return `status bar: "${label}"`;
    },
  },
  {
    name: 'capture-opt-in',
    run: async ({ page, ws }) => {
      const question = await notification(page, /Goldiff can learn from this workspace/, 30000);
      await page.screenshot({ path: path.join(RESULTS, '02a-capture-question.png') });
      await question.getByRole('button', { name: 'Enable Capture' }).click();
      await notification(page, /Goldiff is recording this workspace/, 15000);
      // The answer lives in VS Code's storage for the workspace, not in its files.
      if (fs.existsSync(path.join(ws, '.vscode', 'settings.json'))) {
        throw new Error('the opt-in wrote .vscode/settings.json, which a repository would share');
      }
      // That the server records from now on shows in the terminal step: the server keeps
      // terminal commands only while capture is on.
      return 'opt-in answered "Enable Capture"; "Goldiff is recording this workspace" shown; no .vscode/settings.json written';
    },
  },
  {
    name: 'ghost-text-accept',
    run: async ({ page, home, features, model }) => {
      if (!features.requests.includes('textDocument/inlineCompletion')) {
        throw new Skip('the server does not serve textDocument/inlineCompletion yet');
      }
      await openFile(page, 'hello.py');
      await page.locator('.monaco-editor .view-lines').first().click();
      await page.keyboard.press('Control+End');
      // Type the signature without the trailing indent, then Enter: VS Code indents the
      // new line itself, and the server sees the same text the rule expects.
      await page.keyboard.type(TYPED.split('\n')[0]!, { delay: 20 });
      await page.keyboard.press('Enter');
      const ghost = page.locator('.ghost-text-decoration, .ghost-text-decoration-preview').first();
      await ghost.waitFor({ state: 'visible', timeout: 60000 });
      await page.screenshot({ path: path.join(RESULTS, '03a-ghost-text.png') });
      const shown = (await ghost.textContent()) ?? '';
      await page.keyboard.press('Tab');
      const accepted = await waitFor('the store to hold an accepted suggestion', 30000, () => {
        const s = stats(home);
        const byOutcome = (s.suggestions_by_outcome ?? {}) as Record<string, number>;
        return (byOutcome.accepted ?? 0) >= 1 ? byOutcome : undefined;
      });
      return `ghost text "${shown.slice(0, 40)}" from ${model} accepted with Tab; store outcomes ${JSON.stringify(accepted)}`;
    },
  },
  {
    name: 'gold-settles',
    run: async ({ page, home, features }) => {
      if (!features.requests.includes('textDocument/inlineCompletion')) {
        throw new Skip('the server does not serve textDocument/inlineCompletion yet');
      }
      // A second suggestion taken the same way, then the file saved and left alone: both
      // settle with gold (what was kept), which "Show What Was Recorded" lists and
      // "Compare Models" scores (its held-out split needs two rows).
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+End');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Enter');
      await page.keyboard.type(TYPED.split('\n')[0]!, { delay: 20 });
      await page.keyboard.press('Enter');
      const ghost = page.locator('.ghost-text-decoration, .ghost-text-decoration-preview').first();
      await ghost.waitFor({ state: 'visible', timeout: 60000 });
      await page.keyboard.press('Tab');
      await page.keyboard.press('Control+S');
      const gold = await waitFor('two suggestions to settle with gold', 90000, () => {
        const rows = sql(home, 'SELECT outcome, gold FROM suggestions WHERE gold IS NOT NULL AND shadow_of IS NULL ORDER BY ts');
        return rows.length >= 2 ? rows : undefined;
      });
      return `saved; settled in the store: ${JSON.stringify(gold)}`;
    },
  },
  {
    name: 'ghost-text-latency',
    run: async ({ page, home, features, model }) => {
      if (!features.requests.includes('textDocument/inlineCompletion')) {
        throw new Skip('the server does not serve textDocument/inlineCompletion yet');
      }
      const since = Date.now() / 1000;
      // Keystroke → ghost text as the user sees it: from the Enter that opens the body of
      // a new function to the first ghost-text decoration, both timed inside the page.
      const samples: number[] = [];
      let missed = 0;
      for (let i = 0; i < LATENCY_SAMPLES; i++) {
        await page.keyboard.press('Escape');
        // A new top-level function each time at the end of the file, after the module's code
        // (a function with nothing before it gets no suggestion the model is sure enough of to
        // show); the editor indents the new line under the previous body, so it is outdented
        // to column 0 first. The measured Enter opens the function's body.
        await page.keyboard.press('Control+End');
        await page.keyboard.press('Enter');
        await page.keyboard.press('Enter');
        await page.keyboard.press('Control+BracketLeft');
        await page.keyboard.press('Control+BracketLeft');
        await page.keyboard.type(`def add${i}(a: int, b: int) -> int:`, { delay: 20 });
        const ms = await keystrokeToGhostText(page, () => page.keyboard.press('Enter'));
        if (ms === null) {
          missed += 1;
        } else {
          samples.push(ms);
        }
      }
      await page.keyboard.press('Escape');
      if (samples.length < LATENCY_SAMPLES / 2) {
        throw new Error(`ghost text appeared after only ${samples.length} of ${LATENCY_SAMPLES} keystrokes`);
      }
      // The server's own time for the same completions, as it recorded them: the rest is the
      // editor's (debounce, LSP round trip, rendering). The request at each new function
      // body, not the ones made while its line was typed; the editor may also show a
      // suggestion it still holds without asking again, so there can be fewer of them.
      const atBody = `prefix LIKE '%-> int:' || char(10) || '    '`;
      const query = `SELECT latency_ms FROM suggestions WHERE ts >= ${since} AND shadow_of IS NULL AND latency_ms IS NOT NULL AND ${atBody}`;
      let server: number[] = [];
      await waitFor('the completions to be recorded', 15000, () => {
        server = sql(home, query).map((r) => Number(r[0]));
        return server.length >= samples.length ? true : undefined;
      }).catch(() => undefined);
      if (server.length === 0) {
        throw new Error('none of the measured completions is in the store');
      }
      const figures = {
        model,
        samples: samples.length,
        missed,
        p50_ms: percentile(samples, 50),
        p95_ms: percentile(samples, 95),
        server_p50_ms: percentile(server, 50),
        server_p95_ms: percentile(server, 95),
        server_samples: server.length,
        all_ms: samples,
      };
      fs.writeFileSync(path.join(RESULTS, 'ghost-text-latency.json'), JSON.stringify(figures, null, 2));
      return (
        `keystroke → ghost text over ${samples.length} completions (${missed} without one in ${GHOST_WAIT_MS / 1000} s): ` +
        `p50 ${figures.p50_ms} ms, p95 ${figures.p95_ms} ms; the server's own time p50 ${figures.server_p50_ms} ms ` +
        `over the ${server.length} of them it recorded (${model})`
      );
    },
  },
  {
    name: 'show-recorded',
    run: async ({ page, home, ws, features }) => {
      if (!features.commands.includes('goldiff.recorded')) {
        throw new Skip('the server has no goldiff.recorded command yet');
      }
      // A token typed into the file: the store keeps it masked, so the diff shows it.
      const token = 'ghp_' + 'Jd7Qw2Lx9Rt4Vb6Nm1Zc8Hs3Kp5Yf0Ga2Ue4';
      await openFile(page, 'hello.py');
      await page.keyboard.press('Control+End');
      await page.keyboard.press('Enter');
      await page.keyboard.type(`TOKEN = "${token}`, { delay: 10 });
      await page.keyboard.press('Escape');
      await runCommand(page, 'Goldiff: Show What Was Recorded');
      const diff = page.locator('.monaco-diff-editor').first();
      await diff.waitFor({ state: 'visible', timeout: 15000 });
      // Where space is short the diff is inline: the modified editor then shows the
      // recorded side's lines in view zones, with view-lines of their own.
      const left = diff.locator('.editor.original .lines-content > .view-lines').first();
      const right = diff.locator('.editor.modified .lines-content > .view-lines').first();
      const recorded = await waitFor('the recorded text on the left of the diff', 15000, async () => {
        await noErrorToast(page);
        const t = await shownText(left);
        // A function typed earlier (the latency step's last ones sit just above the token).
        return t.includes('(a: int, b: int) -> int:') && t.includes('TOKEN = "') ? t : undefined;
      });
      if (recorded.includes(token) || !recorded.includes('*'.repeat(token.length))) {
        throw new Error(`the recorded side does not show the token masked: "${recorded.slice(-120)}"`);
      }
      const now = await shownText(right);
      if (!now.includes(token)) {
        throw new Error(`the right side is not the file as it is now: "${now.slice(-120)}"`);
      }
      // The list of suggestions, with outcome and gold, opens beside the diff.
      await page.locator('.tab', { hasText: 'Goldiff Recorded' }).first().waitFor({ state: 'visible', timeout: 15000 });
      await page.waitForTimeout(1500); // the preview renders in a webview
      await page.screenshot({ path: path.join(RESULTS, '03b-show-recorded.png') });
      // The left side is what `goldiff show` prints for the file.
      const shown = python(['-m', 'goldiff', 'show', '--home', home, path.join(ws, 'hello.py')]);
      const lastLine = shown.trimEnd().split('\n').pop() ?? '';
      if (!recorded.includes(lastLine.trim())) {
        throw new Error(`\`goldiff show\` ends with "${lastLine}", not on the recorded side`);
      }
      const title = ((await page.locator('.tab.active').first().getAttribute('aria-label')) ?? '').trim();
      return `diff "${title}": the recorded side has the token masked (${token.length} asterisks), as \`goldiff show\` prints it; the suggestion list opened beside it`;
    },
  },
  {
    name: 'toggle-model',
    run: async ({ page }) => {
      const before = await statusLabel(page);
      // A click opens the Goldiff menu; "Mode…" opens the mode picker.
      await statusItem(page).click();
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Mode…' }).first().waitFor({ timeout: 10000 });
      await page.screenshot({ path: path.join(RESULTS, '04a-status-menu.png') });
      await pickQuickItem(page, 'Mode…');
      await pickQuickItem(page, 'Shadow');
      const after = await waitFor('the status bar to show shadow mode', 15000, async () => {
        const l = await statusLabel(page);
        return l.startsWith('Goldiff: shadow') ? l : undefined;
      });
      return `"${before}" → "${after}" (the text is the server's goldiff.status answer)`;
    },
  },
  {
    name: 'api-key',
    run: async ({ page, userData }) => {
      await runCommand(page, 'Goldiff: Set Frontier API Key');
      const input = page.locator('.quick-input-widget input[type="password"]');
      await input.waitFor({ state: 'visible', timeout: 10000 });
      await input.fill(SECRET);
      await page.keyboard.press('Enter');
      await page.locator('.notification-toast', { hasText: /stored the openai API key/ }).first().waitFor({ timeout: 10000 });
      // The server logs its settings with the key redacted to "set": proof it arrived.
      const line = await waitFor('the server to log that a key is set', 15000, () => {
        const logs = path.join(userData, 'logs');
        for (const f of fs.readdirSync(logs, { recursive: true, encoding: 'utf8' })) {
          if (path.basename(f).endsWith('Goldiff.log')) {
            const hit = fs
              .readFileSync(path.join(logs, f), 'utf8')
              .split('\n')
              .find((l) => l.includes("'apiKey': 'set'"));
            if (hit !== undefined) {
              return hit;
            }
          }
        }
        return undefined;
      });
      return `key stored in secret storage; server log: "${line.slice(line.indexOf('goldiff.lsp'), line.indexOf('goldiff.lsp') + 90)}…"`;
    },
  },
  {
    name: 'server-restart-after-crash',
    run: async ({ page, group }) => {
      const [before] = serverPids(group);
      if (before === undefined) {
        throw new Error('no goldiff serve process in code-server\'s process group');
      }
      process.kill(before, 'SIGKILL');
      const after = await waitFor('a new server process', 30000, () => {
        const pids = serverPids(group).filter((p) => p !== before);
        return pids.length > 0 ? pids[0] : undefined;
      });
      const label = await waitFor('the status bar to show the mode again', 30000, async () => {
        const l = await statusLabel(page);
        return /^Goldiff: (local|frontier|shadow)\b/.test(l) ? l : undefined;
      });
      return `killed server ${before} with SIGKILL; restarted as ${after}; status bar "${label}"`;
    },
  },
  {
    name: 'terminal-command',
    run: async ({ page, home }) => {
      await runCommand(page, 'Terminal: Create New Terminal');
      const term = page.locator('.terminal-wrapper.active .xterm, .xterm').first();
      await term.waitFor({ state: 'visible', timeout: 20000 });
      // Shell integration marks the prompt with a command decoration once bash is ready;
      // keystrokes sent before that could reach the void before the shell starts.
      await page
        .locator('.terminal-command-decoration')
        .first()
        .waitFor({ state: 'visible', timeout: 20000 })
        .catch(() => log('no shell-integration decoration seen; typing anyway'));
      await term.click();
      // The output comes a moment after the start: VS Code forwards terminal data and the
      // command-start mark on separate paths, and output in the very first chunk of a
      // command can reach the extension before the execution exists (then it is lost).
      await page.keyboard.type("bash -c 'sleep 0.5; echo goldiff-e2e-out; exit 3'", { delay: 10 });
      await page.keyboard.press('Enter');
      const row = await waitFor('the terminal command in the store', 30000, () => {
        const rows = sql(home, "SELECT command_line, exit_code, output FROM terminal_commands WHERE command_line LIKE '%goldiff-e2e-out%'");
        return rows.length > 0 ? rows[0] : undefined;
      });
      if (row[1] !== 3) {
        throw new Error(`stored exit code is ${JSON.stringify(row[1])}, expected 3`);
      }
      if (typeof row[2] !== 'string' || !row[2].includes('goldiff-e2e-out')) {
        throw new Error(`stored output ${JSON.stringify(row[2])} lacks the command's output`);
      }
      return `stored: ${JSON.stringify(row)}`;
    },
  },
  {
    name: 'export-traces',
    run: async ({ page, tmp, features }) => {
      if (!features.commands.includes('goldiff.exportTraces')) {
        throw new Skip('the server has no goldiff.exportTraces command yet');
      }
      const target = path.join(tmp, 'export-sft.jsonl');
      await runCommand(page, 'Goldiff: Export Traces');
      await pickQuickItem(page, 'sft');
      // The filters: which workspace's data, and since when.
      await pickQuickItem(page, 'All workspaces');
      await pickQuickItem(page, 'All time');
      // code-server's save dialog is VS Code's simple dialog: a path in a quick input.
      // Wait until the input holds the dialog's proposed path, not the format picker's text.
      const input = page.locator('.quick-input-widget input');
      await waitFor('the save dialog', 10000, async () =>
        (await input.inputValue()).includes('goldiff-sft-') ? true : undefined,
      );
      await input.fill(target);
      // Enter would open the highlighted folder of the listing; OK takes the typed path.
      await page.locator('.quick-input-widget .monaco-button', { hasText: /^OK$/ }).first().click();
      const toast = page.locator('.notification-toast', { hasText: /Goldiff exported/ }).first();
      await toast.waitFor({ timeout: 60000 });
      const said = (await toast.textContent()) ?? '';
      const lines = fs.readFileSync(target, 'utf8').split('\n').filter((l) => l.trim() !== '');
      const count = /exported (\d+) rows?/.exec(said)?.[1];
      if (count !== undefined && Number(count) !== lines.length) {
        throw new Error(`the message says ${count} rows, the file has ${lines.length}`);
      }
      for (const l of lines) {
        const row = JSON.parse(l) as Record<string, unknown>;
        if (typeof row.id !== 'string' && typeof row.id !== 'number') {
          throw new Error(`exported row without an id: ${l.slice(0, 200)}`);
        }
      }
      return `${target}: ${lines.length} valid JSON rows`;
    },
  },
  {
    name: 'download-model',
    run: async ({ page, home, features }) => {
      if (!features.commands.includes('goldiff.pullModel')) {
        throw new Skip('the server has no goldiff.pullModel command yet');
      }
      if (features.defaultModel === null) {
        throw new Skip('this checkout has no GGUF to serve as a download');
      }
      // A loopback file server stands in for a model host (no hub is reachable here); it
      // states no checksum, so the user types the one "from the model's page".
      const bytes = fs.readFileSync(features.defaultModel);
      const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
      const server = http.createServer((req, res) => {
        if (req.url !== '/models/e2e-coder.gguf') {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'Content-Length': String(bytes.length), 'Content-Type': 'application/octet-stream' });
        res.end(req.method === 'HEAD' ? undefined : bytes);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      try {
        await runCommand(page, 'Goldiff: Download Model');
        await pickQuickItem(page, 'From the hub or a URL');
        const input = page.locator('.quick-input-widget input');
        await waitFor('the source input', 10000, async () => ((await input.getAttribute('placeholder'))?.includes('hf://') ? true : undefined));
        await input.fill(`http://127.0.0.1:${port}/models/e2e-coder.gguf`);
        await page.keyboard.press('Enter');
        const dialog = page.locator('.monaco-dialog-box', { hasText: 'e2e-coder.gguf' });
        await dialog.waitFor({ state: 'visible', timeout: 15000 });
        const asked = ((await dialog.textContent()) ?? '').replace(/\s+/g, ' ');
        if (!/Download e2e-coder\.gguf \(\d+\.\d MiB\)\?/.test(asked) || !asked.includes('states no licence')) {
          throw new Error(`the confirmation says "${asked}"`);
        }
        await dialog.getByRole('button', { name: 'Download' }).click();
        await waitFor('the checksum input', 10000, async () => ((await page.locator('.quick-input-widget').textContent())?.includes('SHA-256') ? true : undefined));
        await input.fill(sha256);
        await page.keyboard.press('Enter');
        const toast = page.locator('.notification-toast', { hasText: /downloaded and registered/ }).first();
        await toast.waitFor({ timeout: 120000 });
        const said = (await toast.textContent()) ?? '';
        if (!said.includes('SHA-256 verified')) {
          throw new Error(`the message says "${said}"`);
        }
        const registry = JSON.parse(fs.readFileSync(path.join(home, 'models', 'registry.json'), 'utf8')) as {
          models: Record<string, { path: string; lineage: { sha256?: string } }>;
        };
        const entry = registry.models['e2e-coder'];
        if (entry === undefined || entry.lineage.sha256 !== sha256 || !fs.existsSync(entry.path)) {
          throw new Error(`registry entry ${JSON.stringify(entry)}`);
        }
        return `${entry.path} registered as e2e-coder; toast "${/Goldiff downloaded[^)]*\)/.exec(said)?.[0] ?? said.trim()}"`;
      } finally {
        server.close();
      }
    },
  },
  {
    name: 'model-picker',
    run: async ({ page }) => {
      // Through the status menu, as a user would: the item's click, then "Local Model…".
      await page.keyboard.press('Escape');
      await statusItem(page).click();
      await pickQuickItem(page, 'Local Model…');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Add GGUF File' }).first().waitFor({ state: 'visible', timeout: 15000 });
      await page.screenshot({ path: path.join(RESULTS, '05a-model-picker.png') });
      // Each row's first label is the entry's name (the detail line has one too).
      const entries = page.locator('.quick-input-list .monaco-list-row');
      const rows: string[] = [];
      for (let i = 0; i < (await entries.count()); i++) {
        rows.push(((await entries.nth(i).locator('.label-name').first().textContent()) ?? '').trim());
      }
      await page.keyboard.press('Escape');
      for (const expected of ['Registry default', 'Download…', 'Add GGUF File…']) {
        if (!rows.some((r) => r.includes(expected))) {
          throw new Error(`the picker has no "${expected}" entry: ${JSON.stringify(rows)}`);
        }
      }
      if (rows.length < 4) {
        throw new Error(`the picker lists no registered model: ${JSON.stringify(rows)}`);
      }
      return `the picker lists ${JSON.stringify(rows)}`;
    },
  },
  {
    name: 'compare-models',
    run: async ({ page, home, features }) => {
      if (!features.commands.includes('goldiff.compare')) {
        throw new Skip('the server has no goldiff.compare command yet');
      }
      await runCommand(page, 'Goldiff: Compare Models');
      const target = page.locator('.quick-input-list .monaco-list-row', { hasText: 'Frontier' }).first();
      await target.waitFor({ state: 'visible', timeout: 15000 });
      await target.click();
      // `goldiff eval` runs in a child process; the report opens as a Markdown preview.
      const tab = page.locator('.tab', { hasText: 'Goldiff Compare' }).first();
      await waitFor('the comparison to open', 180000, async () => {
        await noErrorToast(page);
        return (await tab.isVisible()) ? true : undefined;
      });
      await page.waitForTimeout(1500); // the preview renders in a webview
      await page.screenshot({ path: path.join(RESULTS, '05b-compare-view.png') });
      const exports = path.join(home, 'exports');
      const folder = fs.readdirSync(exports).filter((d) => d.startsWith('compare-')).sort().pop();
      if (folder === undefined) {
        throw new Error(`no compare-* report under ${exports}`);
      }
      const report = JSON.parse(fs.readFileSync(path.join(exports, folder, 'eval.json'), 'utf8')) as { rows?: number; models?: Record<string, unknown> };
      if (!report.rows) {
        throw new Error(`the comparison scored no rows: ${JSON.stringify(report).slice(0, 300)}`);
      }
      return `"${((await tab.textContent()) ?? '').trim()}" opened; ${folder}/eval.json scored ${report.rows} held-out rows for ${Object.keys(report.models ?? {}).join(', ')}`;
    },
  },
];

steps.push(
  {
    name: 'show-stats',
    run: async ({ page }) => {
      await runCommand(page, 'Goldiff: Show Stats');
      // The stats open as a Markdown document; its table rows show in the editor's lines.
      const row = page.locator('.monaco-editor .view-line', { hasText: '| terminal_commands |' }).first();
      await row.waitFor({ state: 'visible', timeout: 15000 });
      const text = (await row.textContent()) ?? '';
      if (!/\|\s*terminal_commands\s*\|\s*[1-9]/.test(text.replace(/\u00a0/g, ' '))) {
        throw new Error(`the stats do not count the terminal command: "${text}"`);
      }
      return `stats document shows "${text.replace(/\u00a0/g, ' ').trim()}"`;
    },
  },
  {
    name: 'forget-workspace',
    run: async ({ page, home }) => {
      await runCommand(page, 'Goldiff: Delete Recorded Data for This Workspace');
      const dialog = page.locator('.monaco-dialog-box');
      await dialog.waitFor({ state: 'visible', timeout: 10000 });
      await dialog.getByRole('button', { name: 'Delete' }).click();
      const left = await waitFor('the workspace data to be gone', 15000, () => {
        const s = stats(home);
        return s.terminal_commands === 0 && s.suggestions === 0 ? s : undefined;
      });
      return `after the confirmation: terminal_commands=${String(left.terminal_commands)}, suggestions=${String(left.suggestions)}`;
    },
  },
);

if (FIRST_RUN) {
  steps.push({
    name: 'train-extra-install',
    run: async ({ page, userData }) => {
      // The first-run environment serves without the training stack; Distill Now offers it.
      await runCommand(page, 'Goldiff: Distill Now');
      const dialog = page.locator('.monaco-dialog-box', { hasText: 'training extra' });
      await dialog.waitFor({ state: 'visible', timeout: 30000 });
      const asked = ((await dialog.textContent()) ?? '').replace(/\s+/g, ' ');
      if (!asked.includes('about 1 GB')) {
        throw new Error(`the offer says "${asked}"`);
      }
      await page.screenshot({ path: path.join(RESULTS, '06a-train-extra-offer.png') });
      await dialog.getByRole('button', { name: 'Install (about 1 GB)' }).click();
      const t0 = Date.now();
      const done = page.locator('.notification-toast', { hasText: /training extra is installed|Installing the training extra failed/ }).first();
      await done.waitFor({ state: 'visible', timeout: SETUP_TIMEOUT_MS });
      const said = ((await done.textContent()) ?? '').replace(/\s+/g, ' ');
      await page.screenshot({ path: path.join(RESULTS, '06b-train-extra-installed.png') });
      if (!said.includes('is installed')) {
        throw new Error(said);
      }
      const venvPython = fs
        .readdirSync(userData, { recursive: true, encoding: 'utf8' })
        .find((f) => f.endsWith(path.join('server-venv', 'bin', 'python')));
      const probe = spawnSync(path.join(userData, venvPython ?? 'missing'), ['-c', 'import torch, transformers, peft, trl; print(torch.__version__)'], { encoding: 'utf8' });
      if (probe.status !== 0) {
        throw new Error(`the server's environment still cannot train: ${probe.stderr.trim().split('\n').pop() ?? ''}`);
      }
      return `installed through the offer in ${Math.round((Date.now() - t0) / 1000)} s; torch ${probe.stdout.trim()} imports in the server's environment`;
    },
  });
  steps.unshift({
    name: 'first-run-setup',
    run: async ({ page, userData }) => {
      const offer = page.locator('.notification-toast', { hasText: /Goldiff needs its server/ }).first();
      await offer.waitFor({ state: 'visible', timeout: 90000 });
      await page.screenshot({ path: path.join(RESULTS, '00a-first-run-offer.png') });
      await offer.getByRole('button', { name: 'Set Up' }).click();
      const progress = page.locator('.notification-toast', { hasText: /Goldiff: setting up its server/ }).first();
      await progress.waitFor({ state: 'visible', timeout: 30000 });
      await page.screenshot({ path: path.join(RESULTS, '00b-first-run-progress.png') });
      const t0 = Date.now();
      // Screenshots of the stages as they pass (the install one is the slow one).
      const seen = new Set<string>();
      const done = page.locator('.notification-toast', { hasText: /Goldiff set up its server/ }).first();
      let failure: string | undefined;
      await waitFor('the set-up to finish', SETUP_TIMEOUT_MS, async () => {
        if (await done.isVisible().catch(() => false)) {
          return true;
        }
        const failed = page.locator('.notification-toast', { hasText: /failed:|needs Python 3\.11/ }).first();
        if (await failed.isVisible().catch(() => false)) {
          failure = (await failed.textContent()) ?? 'the set-up failed';
          return true;
        }
        const stage = /(\d)\/\d: /.exec((await progress.textContent().catch(() => '')) ?? '')?.[1];
        if (stage !== undefined && !seen.has(stage)) {
          seen.add(stage);
          await page.screenshot({ path: path.join(RESULTS, `00b-first-run-stage-${stage}.png`) });
        }
        return undefined;
      });
      await page.screenshot({ path: path.join(RESULTS, '00c-first-run-done.png') });
      if (failure !== undefined) {
        throw new Error(`the set-up failed: ${failure}`);
      }
      const venvPython = fs
        .readdirSync(userData, { recursive: true, encoding: 'utf8' })
        .find((f) => f.endsWith(path.join('server-venv', 'bin', 'python')));
      if (venvPython === undefined) {
        throw new Error('no server-venv/bin/python under the user data folder');
      }
      return `set up in ${Math.round((Date.now() - t0) / 1000)} s through the offer; stages seen ${[...seen].join(', ')}; ${venvPython}`;
    },
  });
}

// ---- harness -------------------------------------------------------------------------

function killGroup(child: ChildProcess | undefined, signal: NodeJS.Signals): void {
  if (child?.pid !== undefined) {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  }
}

async function main(): Promise<number> {
  if (CODE_SERVER === '' || !fs.existsSync(CODE_SERVER)) {
    throw new Error('Set GOLDIFF_E2E_CODE_SERVER to the code-server binary (scripts/e2e.sh does this).');
  }
  if (!fs.existsSync(VSIX)) {
    throw new Error(`No ${VSIX}: run "npm run package" first (scripts/e2e.sh does this).`);
  }
  fs.rmSync(RESULTS, { recursive: true, force: true });
  fs.mkdirSync(RESULTS, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'goldiff-e2e-'));
  const home = path.join(tmp, 'goldiff-home');
  const ws = path.join(tmp, 'workspace');
  const userData = path.join(tmp, 'user-data');
  const extensions = path.join(tmp, 'extensions');
  const fakeHome = path.join(tmp, 'home');
  fs.cpSync(path.join(EXT_DIR, 'test', 'e2e', 'workspace'), ws, { recursive: true });
  for (const d of [home, userData, extensions, fakeHome, path.join(userData, 'User'), path.join(userData, 'Machine')]) {
    fs.mkdirSync(d, { recursive: true });
  }
  // In a remote window (code-server is one) machine-scoped settings such as
  // goldiff.pythonPath and goldiff.home are read from the Machine file only.
  const features = serverFeatures();
  log(`server requests: ${features.requests.join(', ')}; commands: ${features.commands.join(', ')}`);
  // First run: the model comes with the wheel the extension installs.
  const model = FIRST_RUN ? { setting: '', description: 'the default model from the bundled wheel' } : localModel(features);
  log(`local model: ${model.description}`);
  const userSettings = JSON.stringify(
      {
        ...(FIRST_RUN ? {} : { 'goldiff.pythonPath': PYTHON, 'goldiff.local.model': model.setting }),
        'goldiff.home': home,
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'workbench.enableExperiments': false,
        'security.workspace.trust.enabled': false,
        'telemetry.telemetryLevel': 'off',
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'update.mode': 'none',
        'editor.inlineSuggest.enabled': true,
        'files.simpleDialog.enable': true,
        'terminal.integrated.shellIntegration.enabled': true,
        'terminal.integrated.defaultProfile.linux': 'bash',
        'terminal.integrated.suggest.enabled': false,
        'window.restoreWindows': 'none',
        'chat.disableAIFeatures': true,
      },
      null,
      2,
  );
  fs.writeFileSync(path.join(userData, 'User', 'settings.json'), userSettings);
  fs.writeFileSync(path.join(userData, 'Machine', 'settings.json'), userSettings);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: fakeHome,
    XDG_CONFIG_HOME: path.join(fakeHome, '.config'),
    XDG_DATA_HOME: path.join(fakeHome, '.local', 'share'),
    XDG_CACHE_HOME: path.join(fakeHome, '.cache'),
    SHELL: '/bin/bash',
  };
  if (FIRST_RUN) {
    // The editor must not see this checkout's server: python3 on PATH has no Goldiff.
    delete env.PYTHONPATH;
    delete env.VIRTUAL_ENV;
    // pyenv's shims find their interpreters under PYENV_ROOT, which defaults to $HOME.
    if (process.env.PYENV_ROOT === undefined && fs.existsSync(path.join(os.homedir(), '.pyenv'))) {
      env.PYENV_ROOT = path.join(os.homedir(), '.pyenv');
    }
    if (process.env.GOLDIFF_E2E_PIP_FIND_LINKS) {
      // Prebuilt wheels (llama-cpp-python) so the run does not compile it for many minutes.
      env.PIP_FIND_LINKS = [process.env.PIP_FIND_LINKS, process.env.GOLDIFF_E2E_PIP_FIND_LINKS].filter(Boolean).join(' ');
    }
    const probe = spawnSync('python3', ['-c', 'import goldiff'], { env, encoding: 'utf8' });
    if (probe.status === 0) {
      throw new Error('python3 on PATH already has Goldiff; the first-run test needs one without it');
    }
  }
  log(`workspace ${ws}, Goldiff home ${home}, python ${PYTHON}`);


  const install = spawnSync(
    CODE_SERVER,
    ['--install-extension', VSIX, '--extensions-dir', extensions, '--user-data-dir', userData, '--force'],
    { env, encoding: 'utf8', timeout: 120000 },
  );
  if (install.status !== 0) {
    throw new Error(`installing the .vsix failed: ${install.stdout}${install.stderr}`);
  }

  const port = await freePort();
  const config = path.join(tmp, 'code-server.yaml');
  fs.writeFileSync(config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const serverLog = fs.openSync(path.join(RESULTS, 'code-server.log'), 'w');
  let codeServer: ChildProcess | undefined;
  let browser: Browser | undefined;
  const results: StepResult[] = [];
  const cleanup = (): void => {
    killGroup(codeServer, 'SIGTERM');
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    cleanup();
    killGroup(codeServer, 'SIGKILL');
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => killGroup(codeServer, 'SIGKILL'));

  try {
    // detached: its own process group (setsid), so the extension host and the Python
    // server it spawns die with it instead of outliving the test.
    codeServer = spawn(
      CODE_SERVER,
      [
        '--bind-addr', `127.0.0.1:${port}`,
        '--auth', 'none',
        '--disable-telemetry',
        '--disable-update-check',
        '--disable-workspace-trust',
        '--user-data-dir', userData,
        '--extensions-dir', extensions,
        '--config', config,
        ws,
      ],
      { env, detached: true, stdio: ['ignore', serverLog, serverLog] },
    );
    await waitFor('code-server to answer', 60000, async () => {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
      return r?.ok === true ? true : undefined;
    });
    log(`code-server on port ${port}`);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      env: { ...env },
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const consoleLog: string[] = [];
    page.on('console', (m) => consoleLog.push(`[${m.type()}] ${m.text()}`));
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`);
    await page.locator('.monaco-workbench').waitFor({ timeout: 60000 });
    log('workbench rendered');

    const ctx: Ctx = { tmp, home, ws, page, features, model: model.description, group: codeServer.pid ?? -1, userData };
    let failed = false;
    for (const [i, step] of steps.entries()) {
      if (ONLY.length > 0 && !ONLY.includes(step.name)) {
        continue;
      }
      const shot = path.join(RESULTS, `${String(i + 1).padStart(2, '0')}-${step.name}.png`);
      const t0 = Date.now();
      let result: StepResult;
      if (failed) {
        result = { name: step.name, outcome: 'skipped', seconds: 0, detail: 'an earlier step failed' };
      } else {
        try {
          const detail = await step.run(ctx);
          result = { name: step.name, outcome: 'passed', seconds: 0, detail };
        } catch (err) {
          const skip = err instanceof Skip;
          result = {
            name: step.name,
            outcome: skip && !REQUIRE_ALL ? 'skipped' : 'failed',
            seconds: 0,
            detail: err instanceof Error ? err.message : String(err),
          };
          failed ||= result.outcome === 'failed';
        }
        result.seconds = Math.round((Date.now() - t0) / 100) / 10;
        await page.screenshot({ path: shot }).then(
          () => (result.screenshot = path.basename(shot)),
          () => undefined,
        );
      }
      results.push(result);
      log(`${result.outcome.toUpperCase()} ${step.name} (${result.seconds} s): ${result.detail}`);
    }
    fs.writeFileSync(path.join(RESULTS, 'browser-console.log'), consoleLog.join('\n'));
  } finally {
    await browser?.close().catch(() => undefined);
    cleanup();
    await new Promise((r) => setTimeout(r, 1500));
    killGroup(codeServer, 'SIGKILL');
    fs.closeSync(serverLog);
    collectLogs(userData);
    if (results.some((r) => r.name === 'api-key' && r.outcome === 'passed')) {
      // Logs, the trace store, the workspace, VS Code's state: the key is in none of them.
      const leaks = filesContaining(tmp, SECRET);
      results.push({
        name: 'api-key-never-written',
        outcome: leaks.length === 0 ? 'passed' : 'failed',
        seconds: 0,
        detail: leaks.length === 0 ? `no file under ${tmp} contains the key` : `the key is in: ${leaks.join(', ')}`,
      });
      log(`${leaks.length === 0 ? 'PASSED' : 'FAILED'} api-key-never-written: ${leaks.join(', ') || 'no file contains the key'}`);
    }
    if (!KEEP) {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  fs.writeFileSync(path.join(RESULTS, 'e2e-report.json'), JSON.stringify(results, null, 2));
  const failures = results.filter((r) => r.outcome === 'failed');
  log(`${results.filter((r) => r.outcome === 'passed').length} passed, ${failures.length} failed, ` +
    `${results.filter((r) => r.outcome === 'skipped').length} skipped; artefacts in ${RESULTS}`);
  const expected = ONLY.length > 0 ? steps.filter((s) => ONLY.includes(s.name)).length : steps.length;
  return failures.length === 0 && results.length >= expected ? 0 : 1;
}

/** Copies the extension host's logs (the Goldiff output channel among them) next to the screenshots. */
function collectLogs(userData: string): void {
  const logs = path.join(userData, 'logs');
  if (!fs.existsSync(logs)) {
    return;
  }
  const out = path.join(RESULTS, 'vscode-logs');
  for (const file of fs.readdirSync(logs, { recursive: true, encoding: 'utf8' })) {
    if (/(Goldiff|exthost|remoteexthost)[^/]*\.log$/.test(path.basename(file))) {
      const dest = path.join(out, file.replace(/[\\/]/g, '_'));
      fs.mkdirSync(out, { recursive: true });
      fs.copyFileSync(path.join(logs, file), dest);
    }
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(2);
  },
);
