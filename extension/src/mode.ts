/**
 * The model toggle: which modes the quick pick offers (the current one marked, first the
 * one a click most likely wants) and where the choice is written. The mode lives in the
 * `goldiff.mode` setting, so it survives restarts and the settings UI shows it; the toggle
 * writes to the scope that currently decides the value, so the write is not shadowed.
 */
import { MODES, type Mode } from './protocol';

export const MODE_LABELS: Record<Mode, string> = {
  frontier: 'Frontier',
  local: 'Local',
  shadow: 'Shadow',
};

export const MODE_DETAILS: Record<Mode, string> = {
  frontier: 'Completions from the frontier model (API key needed).',
  local: 'Completions from the local model, served on this machine by llama.cpp.',
  shadow: 'Frontier completions; the local model answers silently for comparison.',
};

export function isMode(value: unknown): value is Mode {
  return typeof value === 'string' && (MODES as readonly string[]).includes(value);
}

/** frontier → local → shadow → frontier: the order a repeated toggle walks through. */
export function nextMode(current: Mode): Mode {
  return MODES[(MODES.indexOf(current) + 1) % MODES.length]!;
}

export interface ModePickItem {
  mode: Mode;
  label: string;
  description: string;
  detail: string;
}

/** The next mode comes first so that toggling is Enter; the current one says so. */
export function modePickItems(current: Mode): ModePickItem[] {
  const order: Mode[] = [nextMode(current), nextMode(nextMode(current)), current];
  return order.map((mode) => ({
    mode,
    label: MODE_LABELS[mode],
    description: mode === current ? 'current' : '',
    detail: MODE_DETAILS[mode],
  }));
}

/** What `WorkspaceConfiguration.inspect` tells about where a value is set. */
export interface SettingScopes {
  workspaceFolderValue?: unknown;
  workspaceValue?: unknown;
  globalValue?: unknown;
}

export type SettingTarget = 'global' | 'workspace' | 'workspaceFolder';

/** The narrowest scope that holds a value wins in VS Code, so write there; else user settings. */
export function targetFor(scopes: SettingScopes | undefined): SettingTarget {
  if (scopes?.workspaceFolderValue !== undefined) {
    return 'workspaceFolder';
  }
  if (scopes?.workspaceValue !== undefined) {
    return 'workspace';
  }
  return 'global';
}
