/**
 * "Compare Models": the current local model beside another, or beside the frontier's
 * recorded suggestions, on the user's recent held-out gold. The server runs `goldiff eval`
 * (`goldiff.compare`) and answers its report; this turns the report into the markdown the
 * editor previews: the numbers a user decides on (how often a shown suggestion is kept,
 * how much typing it saves, how long it takes), side by side, and a one-line verdict.
 */
import type { ModelsAnswer } from './models';

export const FRONTIER = 'frontier';

export interface CompareTarget {
  label: string;
  description?: string;
  detail?: string;
  other: string;
}

export function compareTargets(answer: unknown, current: string): CompareTarget[] {
  const a = (answer !== null && typeof answer === 'object' ? answer : {}) as ModelsAnswer;
  const models = Array.isArray(a.models) ? a.models : [];
  const items: CompareTarget[] = [
    {
      label: '$(cloud) Frontier',
      description: 'recorded suggestions',
      detail: `${current} against what the frontier model suggested on the same contexts (where it did).`,
      other: FRONTIER,
    },
  ];
  for (const m of models) {
    if (typeof m?.name !== 'string' || m.name === current || m.exists === false) {
      continue;
    }
    items.push({
      label: m.name,
      description: [m.kind === 'adapter' ? `adapter on ${m.base ?? '?'}` : '', m.builtin === true ? 'shipped' : ''].filter((d) => d !== '').join(' · '),
      detail: `${current} against ${m.name}, both run here on the same held-out contexts.`,
      other: m.name,
    });
  }
  return items;
}

interface ModelReport {
  rows?: number;
  shown_accept_rate?: number | null;
  chars_saved?: number;
  accept_proxy?: number;
  accept_proxy_on_frontier_rows?: number;
  empty_rate?: number;
  exact_match?: number;
  latency_p50_ms?: number | null;
  latency_p95_ms?: number | null;
  size_bytes?: number | null;
  latency_note?: string;
}

interface RecordedSource {
  source?: string;
  model?: string | null;
  shown?: number;
  acceptance_rate?: number | null;
  survival?: number | null;
}

interface Shadow {
  answers?: number;
  empty?: number;
  matched_shown?: number;
  settled?: number;
  matched_kept?: number;
  local_latency_ms?: number | null;
  shown_latency_ms?: number | null;
}

/** What the user was really shown, as recorded, and the hidden local answers of shadow mode. */
export interface Recorded {
  survival_after_seconds?: number;
  by_source?: RecordedSource[];
  shadow?: Shadow;
}

export interface CompareAnswer {
  current?: string;
  other?: string;
  recorded?: Recorded;
  report?: { rows?: number; frontier_rows?: number; models?: Record<string, ModelReport> };
  markdown?: string;
  folder?: string;
}

function share(v: unknown): string {
  return typeof v === 'number' && Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : '–';
}

function ms(v: unknown): string {
  return typeof v === 'number' && Number.isFinite(v) ? `${Math.round(v)} ms` : '–';
}

function size(v: unknown): string {
  return typeof v === 'number' && v > 0 ? `${(v / (1 << 20)).toFixed(0)} MiB` : '–';
}

const ROWS: [string, (m: ModelReport) => string][] = [
  ['Kept when shown (accept rate of shown suggestions)', (m) => share(m.shown_accept_rate)],
  ['Characters of the gold it would have typed for you', (m) => share(m.chars_saved)],
  ['Latency, median', (m) => ms(m.latency_p50_ms)],
  ['Latency, 95th percentile', (m) => ms(m.latency_p95_ms)],
  ['Kept, over all requests (accept proxy)', (m) => share(m.accept_proxy)],
  ['No suggestion (empty)', (m) => share(m.empty_rate)],
  ['Exactly the gold', (m) => share(m.exact_match)],
  ['Held-out completions scored', (m) => (typeof m.rows === 'number' ? String(m.rows) : '–')],
  ['Model size', (m) => size(m.size_bytes)],
];

/** One sentence: how often the current model would have been kept, relative to the other. */
export function verdict(current: string, other: string, models: Record<string, ModelReport>): string {
  const c = models[current];
  const o = models[other];
  if (c === undefined || o === undefined) {
    return `The evaluation has no figures for ${c === undefined ? current : other}.`;
  }
  // Against the frontier, compare on the contexts where the frontier suggested.
  const mine = other === FRONTIER ? (c.accept_proxy_on_frontier_rows ?? c.accept_proxy) : c.accept_proxy;
  const theirs = o.accept_proxy;
  if (typeof mine !== 'number' || typeof theirs !== 'number') {
    return 'The evaluation gave no accept figures.';
  }
  if (theirs === 0) {
    return mine === 0
      ? `Neither ${current} nor ${other} produced a suggestion you would have kept on these contexts.`
      : `${current} would have been kept on ${share(mine)} of these contexts; ${other} on none.`;
  }
  return `${current} would have been kept ${Math.round((100 * mine) / theirs)}% as often as ${other} (${share(mine)} vs ${share(theirs)}).`;
}

export function compareMarkdown(answer: unknown, now: Date): string {
  const a = (answer !== null && typeof answer === 'object' ? answer : {}) as CompareAnswer;
  const current = a.current ?? 'current';
  const other = a.other ?? FRONTIER;
  const models = a.report?.models ?? {};
  const c = models[current] ?? {};
  const o = models[other] ?? {};
  const lines = [
    `# ${current} vs ${other}`,
    '',
    `On your ${a.report?.rows ?? 0} newest held-out completions (what you finally kept, split off by time), ${now.toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
    '',
    `**${verdict(current, other, models)}**`,
    '',
    `| | ${current} | ${other} |`,
    '|---|---:|---:|',
    ...ROWS.map(([name, fmt]) => `| ${name} | ${fmt(c)} | ${fmt(o)} |`),
    '',
  ];
  if (other === FRONTIER) {
    lines.push(
      `The frontier is scored on its recorded suggestions (${a.report?.frontier_rows ?? 0} of the contexts), with the latency the server measured at the time, network included; ${current} runs here.`,
      '',
    );
  }
  lines.push(...recordedMarkdown(a.recorded));
  if (typeof a.markdown === 'string') {
    lines.push(`The full report, with plots and every answer: \`${a.markdown}\``, '');
  }
  return lines.join('\n');
}

function ratio(part: unknown, whole: unknown): string {
  return typeof part === 'number' && typeof whole === 'number' && whole > 0 ? share(part / whole) : '–';
}

/** The live figures: each source's shown suggestions as they fared, then shadow mode's hidden answers. */
export function recordedMarkdown(recorded: Recorded | undefined): string[] {
  const sources = (recorded?.by_source ?? []).filter((e) => typeof e.shown === 'number' && e.shown > 0);
  const shadow = recorded?.shadow;
  if (sources.length === 0 && !(typeof shadow?.answers === 'number' && shadow.answers > 0)) {
    return [];
  }
  const minutes = Math.round((recorded?.survival_after_seconds ?? 600) / 60);
  const lines = ['## What you were shown, as recorded', ''];
  if (sources.length > 0) {
    lines.push(
      `| source | model | shown | kept (accepted or partly) | still there after ${minutes} min |`,
      '|---|---|---:|---:|---:|',
      ...sources.map((e) => `| ${e.source ?? '?'} | ${e.model ?? '–'} | ${e.shown} | ${share(e.acceptance_rate)} | ${share(e.survival)} |`),
      '',
    );
  }
  if (shadow !== undefined && typeof shadow.answers === 'number' && shadow.answers > 0) {
    lines.push(
      `In shadow mode the local model answered ${shadow.answers} times beside the shown suggestion, never shown: ` +
        `${ratio(shadow.empty, shadow.answers)} empty, ${ratio(shadow.matched_shown, shadow.answers)} the same as the shown one, ` +
        `and ${ratio(shadow.matched_kept, shadow.settled)} of those whose shown suggestion settled started what you kept ` +
        `(local ${ms(shadow.local_latency_ms)} vs shown ${ms(shadow.shown_latency_ms)} on average).`,
      '',
    );
  }
  return lines;
}
