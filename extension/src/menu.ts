/**
 * The status bar menu: one quick pick with everything a click on the item should reach
 * (mode, model, recording, snooze, stats, what was recorded, log, doctor), each entry saying its current
 * value, and the command it runs. Built from plain state so tests can read it.
 */
import type { ClientState } from './status';
import { minutesLeft } from './status';

export interface MenuState {
  state: ClientState;
  mode: string;
  model: string | undefined;
  recording: boolean | undefined;
  snoozedUntil: number | undefined;
  manual: boolean;
  now: number;
}

export interface MenuItem {
  label: string;
  description?: string;
  detail?: string;
  /** The VS Code command the entry runs. */
  command: string;
}

export function menuItems(s: MenuState): MenuItem[] {
  const items: MenuItem[] = [];
  if (s.state === 'failed' || s.state === 'stopped') {
    items.push({ label: '$(debug-restart) Restart Server', description: 'the server is not running', command: 'goldiff.restartServer' });
  }
  items.push(
    { label: '$(arrow-swap) Mode…', description: s.mode, detail: 'Frontier, local, or shadow (frontier answers, local runs hidden beside it).', command: 'goldiff.toggleModel' },
    { label: '$(symbol-misc) Local Model…', description: s.model ?? 'none', detail: 'Pick a registered model or add a GGUF file.', command: 'goldiff.pickModel' },
    s.recording === true
      ? { label: '$(debug-pause) Pause Recording', description: 'recording this workspace', command: 'goldiff.disableCapture' }
      : { label: '$(record) Start Recording', description: 'not recording this workspace', command: 'goldiff.enableCapture' },
  );
  if (s.snoozedUntil !== undefined && s.snoozedUntil > s.now) {
    items.push({ label: '$(bell) Resume Completions', description: `snoozed, ${minutesLeft(s.snoozedUntil, s.now)} min left`, command: 'goldiff.resume' });
  } else {
    items.push({ label: '$(bell-slash) Snooze Completions…', description: 'for a few minutes', command: 'goldiff.snooze' });
  }
  items.push(
    { label: '$(zap) Trigger Completion', description: s.manual ? 'manual trigger mode' : '', command: 'goldiff.triggerCompletion' },
    { label: '$(graph) Show Stats', command: 'goldiff.showStats' },
    { label: '$(eye) Show What Was Recorded', detail: 'The open file as Goldiff recorded it, beside the file, with its suggestions.', command: 'goldiff.showRecorded' },
    { label: '$(split-horizontal) Compare Models…', detail: 'The local model beside another, or the frontier, on your recent gold.', command: 'goldiff.compareModels' },
    { label: '$(output) Show Log', command: 'goldiff.showLog' },
    { label: '$(pulse) Run Doctor', detail: 'Checks the interpreter, the store, the model and llama.cpp.', command: 'goldiff.doctor' },
  );
  return items;
}

export interface SnoozeItem {
  label: string;
  minutes: number;
}

export function snoozeItems(choices: readonly number[]): SnoozeItem[] {
  return choices.map((minutes) => ({ label: minutes < 60 ? `${minutes} minutes` : `${minutes / 60} hour${minutes === 60 ? '' : 's'}`, minutes }));
}
