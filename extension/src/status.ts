/**
 * The status bar item's text and tooltip: the model that answers what the user sees (the
 * frontier's in shadow mode, never the hidden local one), a dot while this workspace is
 * recorded, and today's acceptance per source, from the server's `goldiff.status`; or the
 * client's state (starting, failed, snoozed) while there is nothing else to say.
 * Read leniently, because the status is decoration: a shape the extension does not know
 * shows as "no data" rather than an error.
 */
import type { AcceptanceCounts, ServerStatus } from './protocol';

export type ClientState = 'starting' | 'running' | 'stopped' | 'failed';

export interface StatusView {
  text: string;
  tooltip: string;
  /** True when the item should use the warning background. */
  warning: boolean;
  /** What a screen reader says (after "Goldiff: "): the mode first, then the rest. */
  label?: string;
}

/** What the client adds to the server's status: snooze, and why the server failed. */
export interface ClientStatus {
  now: number;
  /** Epoch ms until which completions are snoozed, if they are. */
  snoozedUntil?: number;
  /** The sentence the last failure showed the user. */
  failure?: string;
  /** Completions only on request (goldiff.trigger = manual). */
  manual?: boolean;
}

function rateOf(a: AcceptanceCounts | number | null | undefined): number | undefined {
  if (typeof a === 'number') {
    return Number.isFinite(a) ? a : undefined;
  }
  if (a === null || a === undefined || typeof a !== 'object') {
    return undefined;
  }
  if (typeof a.rate === 'number' && Number.isFinite(a.rate)) {
    return a.rate;
  }
  if (typeof a.shown === 'number' && typeof a.accepted === 'number' && a.shown > 0) {
    return a.accepted / a.shown;
  }
  return undefined;
}

/** Accepted / decided today over all sources, or undefined when nothing was shown yet. */
export function acceptanceRate(status: ServerStatus | undefined): number | undefined {
  return rateOf(status?.acceptanceToday);
}

/** Today's acceptance of each source that showed something, frontier first. */
export function acceptanceBySource(status: ServerStatus | undefined): { source: string; shown: number; rate?: number }[] {
  const by = status?.acceptanceBySource;
  if (by === null || by === undefined || typeof by !== 'object') {
    return [];
  }
  return Object.entries(by)
    .filter(([, a]) => a !== null && typeof a === 'object' && typeof a.shown === 'number' && a.shown > 0)
    .map(([source, a]) => ({ source, shown: a.shown ?? 0, rate: rateOf(a) }))
    .sort((x, y) => x.source.localeCompare(y.source));
}

export function captureEnabled(status: ServerStatus | undefined): boolean | undefined {
  const c = status?.capture;
  if (typeof c === 'boolean') {
    return c;
  }
  if (c !== null && typeof c === 'object' && typeof c.enabled === 'boolean') {
    return c.enabled;
  }
  return undefined;
}

/** The model that answers what the user sees, as the server names it. */
export function answeringModel(status: ServerStatus | undefined): string | undefined {
  const m = status?.answering?.model ?? status?.model;
  return typeof m === 'string' && m !== '' ? m : undefined;
}

function percent(rate: number | undefined): string {
  return rate === undefined ? '–' : `${Math.round(rate * 100)}%`;
}

export function minutesLeft(until: number, now: number): number {
  return Math.max(1, Math.ceil((until - now) / 60000));
}

export function formatStatus(state: ClientState, status: ServerStatus | undefined, client?: ClientStatus): StatusView {
  if (state === 'starting') {
    return { text: '$(loading~spin) Goldiff', tooltip: 'Goldiff: starting the server…', warning: false, label: 'starting' };
  }
  if (state === 'failed') {
    return {
      text: '$(error) Goldiff',
      tooltip: `Goldiff: the server is not running.${client?.failure ? `\n${client.failure}` : ''}\nClick for the menu: restart, log, doctor.`,
      warning: true,
      label: 'the server is not running',
    };
  }
  if (state === 'stopped') {
    return { text: '$(debug-stop) Goldiff', tooltip: 'Goldiff: the server is stopped.', warning: false, label: 'stopped' };
  }
  const mode = status?.mode ?? 'unknown';
  const model = answeringModel(status);
  const source = status?.answering?.source ?? (mode === 'local' ? 'local' : 'frontier');
  const capture = captureEnabled(status);
  const rates = acceptanceBySource(status);
  const snoozed = client?.snoozedUntil !== undefined && client.snoozedUntil > client.now;
  const icon = snoozed ? '$(bell-slash)' : '$(sparkle)';
  const dot = capture === true ? ' $(circle-filled)' : '';
  const rateText = rates.length === 0 ? '–' : rates.map((r) => `${r.source} ${percent(r.rate)}`).join(' · ');
  const head = snoozed ? `snoozed ${minutesLeft(client.snoozedUntil!, client.now)} min` : (model ?? mode);
  const noModel = !snoozed && model === undefined && source === 'local';
  const lines = [
    `Goldiff: ${mode} mode — ${model === undefined ? 'no model' : `${source} model ${model}`} answers${mode === 'shadow' ? ' (the local model runs hidden beside it)' : ''}.`,
    snoozed ? `Snoozed: no completions for ${minutesLeft(client.snoozedUntil!, client.now)} more min.` : '',
    client?.manual === true ? 'Completions only on request (goldiff.trigger is manual).' : '',
    rates.length === 0
      ? 'No suggestions shown today yet.'
      : `Accepted today: ${rates.map((r) => `${r.source} ${percent(r.rate)} of ${r.shown} shown`).join(', ')}.`,
    mode === 'shadow' && typeof status?.shadowToday?.answers === 'number'
      ? `Shadow today: ${status.shadowToday.answers} hidden local answers, ${status.shadowToday.matched_shown ?? 0} equal to the shown one.`
      : '',
    capture === undefined ? '' : `Recording: ${capture ? 'on' : 'off'} for this workspace.`,
    'Click for the Goldiff menu.',
  ].filter((l) => l !== '');
  const label = [
    `${mode} mode`,
    snoozed ? 'snoozed' : `${model ?? 'no model'}`,
    capture === true ? 'recording' : '',
    rates.length === 0 ? '' : `accepted today ${rates.map((r) => `${r.source} ${percent(r.rate)}`).join(', ')}`,
  ].filter((l) => l !== '');
  return { text: `${icon} ${head}${dot} ${rateText}`, tooltip: lines.join('\n'), warning: noModel, label: label.join(', ') };
}
