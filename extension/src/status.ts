/**
 * The status bar item's text and tooltip: the active mode and today's acceptance rate,
 * from the server's `goldiff.status`, or the client's state while there is no answer.
 * Read leniently, because the status is decoration: a shape the extension does not know
 * shows as "no data" rather than an error.
 */
import type { ServerStatus } from './protocol';

export type ClientState = 'starting' | 'running' | 'stopped' | 'failed';

export interface StatusView {
  text: string;
  tooltip: string;
  /** True when the item should use the warning background. */
  warning: boolean;
}

/** Accepted / shown today as a fraction, or undefined when nothing was shown yet. */
export function acceptanceRate(status: ServerStatus | undefined): number | undefined {
  const a = status?.acceptanceToday;
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

export function formatStatus(state: ClientState, status: ServerStatus | undefined): StatusView {
  if (state === 'starting') {
    return { text: '$(loading~spin) Goldiff', tooltip: 'Goldiff: starting the server…', warning: false };
  }
  if (state === 'failed') {
    return {
      text: '$(error) Goldiff',
      tooltip: 'Goldiff: the server is not running. Click to see why and restart it.',
      warning: true,
    };
  }
  if (state === 'stopped') {
    return { text: '$(debug-stop) Goldiff', tooltip: 'Goldiff: the server is stopped.', warning: false };
  }
  const mode = status?.mode ?? 'unknown';
  const rate = acceptanceRate(status);
  const rateText = rate === undefined ? '–' : `${Math.round(rate * 100)}%`;
  const capture = captureEnabled(status);
  const lines = [
    `Goldiff: ${mode} mode${status?.model ? ` (${status.model})` : ''}`,
    rate === undefined
      ? 'No suggestions shown today yet.'
      : `Accepted today: ${Math.round(rate * 100)}% of suggestions shown.`,
    capture === undefined ? '' : `Capture: ${capture ? 'on' : 'off'} for this workspace.`,
    'Click to switch between frontier, local and shadow.',
  ].filter((l) => l !== '');
  return { text: `$(sparkle) ${mode} ${rateText}`, tooltip: lines.join('\n'), warning: false };
}
