/**
 * The choices Export Traces offers and the defaults it proposes: one entry per export
 * format with the trainer it feeds, and a dated file name with the right extension.
 */
import { EXPORT_FORMATS, type ExportFormat } from './protocol';

export const FORMAT_DETAILS: Record<ExportFormat, string> = {
  sft: 'prompt / completion pairs (TRL SFTTrainer), fill-in-the-middle prompts',
  preference: 'prompt / chosen / rejected (TRL DPO and ORPO)',
  kto: 'prompt / completion / label (TRL KTOTrainer)',
  edits: 'excerpt + recent edits + cursor → gold diff (next-edit models)',
  openai: 'chat fine-tuning JSONL (OpenAI format)',
  parquet: 'all rows as Parquet, for datasets, DuckDB or Spark',
};

export interface FormatPickItem {
  format: ExportFormat;
  label: string;
  detail: string;
}

export function formatPickItems(): FormatPickItem[] {
  return EXPORT_FORMATS.map((format) => ({ format, label: format, detail: FORMAT_DETAILS[format] }));
}

export function exportExtension(format: ExportFormat): string {
  return format === 'parquet' ? 'parquet' : 'jsonl';
}

export function defaultExportName(format: ExportFormat, now: Date): string {
  const day = now.toISOString().slice(0, 10);
  return `goldiff-${format}-${day}.${exportExtension(format)}`;
}

/** How many rows the server says it wrote: a number, `{counts: {all: n}}` or `{rows: n}`. */
export function exportedRows(result: unknown): number | undefined {
  if (typeof result === 'number') {
    return result;
  }
  if (result === null || typeof result !== 'object') {
    return undefined;
  }
  const r = result as Record<string, unknown>;
  const counts = r.counts;
  if (counts !== null && typeof counts === 'object') {
    const values = Object.values(counts as Record<string, unknown>).filter((v): v is number => typeof v === 'number');
    if (values.length > 0) {
      // With a train/test split there is no "all": the parts add up to it.
      const all = (counts as Record<string, unknown>).all;
      return typeof all === 'number' ? all : values.reduce((a, b) => a + b, 0);
    }
  }
  for (const key of ['rows', 'count', 'written']) {
    if (typeof r[key] === 'number') {
      return r[key];
    }
  }
  return undefined;
}

/** The files the server wrote (several with a train/test split), else the requested one. */
export function exportedFiles(result: unknown, requested: string): string[] {
  if (result !== null && typeof result === 'object') {
    const paths = (result as Record<string, unknown>).paths;
    if (paths !== null && typeof paths === 'object') {
      const files = Object.values(paths as Record<string, unknown>).filter((p): p is string => typeof p === 'string');
      if (files.length > 0) {
        return files;
      }
    }
  }
  return [requested];
}

export function exportMessage(rows: number | undefined, file: string): string {
  return rows === undefined
    ? `Goldiff exported traces to ${file}.`
    : `Goldiff exported ${rows} row${rows === 1 ? '' : 's'} to ${file}.`;
}

/** The export's filters as `goldiff.exportTraces` reads them (camelCase keys). */
export interface ExportFilters {
  workspace?: string;
  since?: string;
}

export interface ScopeItem {
  label: string;
  description?: string;
  workspace?: string;
}

export function scopeItems(workspaceUris: string[], workspaceNames: string[]): ScopeItem[] {
  const items: ScopeItem[] = workspaceUris.map((uri, i) => ({
    label: workspaceUris.length === 1 ? 'This workspace' : `Workspace ${workspaceNames[i] ?? uri}`,
    description: workspaceNames[i],
    workspace: uri,
  }));
  items.push({ label: 'All workspaces', description: 'everything recorded on this machine' });
  return items;
}

export interface SinceItem {
  label: string;
  /** ISO date (UTC) or undefined for all time; `ask` asks for a date. */
  since?: string;
  ask?: boolean;
}

function daysBefore(now: Date, days: number): string {
  return new Date(now.getTime() - days * 86400000).toISOString().slice(0, 10);
}

export function sinceItems(now: Date): SinceItem[] {
  return [
    { label: 'All time' },
    { label: 'Last 7 days', since: daysBefore(now, 7) },
    { label: 'Last 30 days', since: daysBefore(now, 30) },
    { label: 'Since a date…', ask: true },
  ];
}

export function dateProblem(text: string): string | undefined {
  const t = text.trim();
  return /^\d{4}-\d{2}-\d{2}$/.test(t) && !Number.isNaN(Date.parse(t)) ? undefined : 'A date as YYYY-MM-DD, e.g. 2026-11-01.';
}

export function filtersFor(scope: ScopeItem, since: string | undefined): ExportFilters {
  const filters: ExportFilters = {};
  if (scope.workspace !== undefined) {
    filters.workspace = scope.workspace;
  }
  if (since !== undefined) {
    filters.since = since;
  }
  return filters;
}

export const EXPORT_EVERYTHING = 'Export Without Filters';
export const START_RECORDING = 'Start Recording';
export const REVEAL = 'Reveal in File Explorer';
export const OPEN = 'Open';

/**
 * What to say when an export wrote no rows: the server's reason (`why`), and the one
 * action that is most likely to help.
 */
export function emptyExport(result: unknown, filters: ExportFilters, recording: boolean | undefined): { message: string; actions: string[] } {
  const why = result !== null && typeof result === 'object' ? (result as Record<string, unknown>).why : undefined;
  const reason =
    typeof why === 'string' && why !== ''
      ? why
      : 'No recorded suggestion has settled gold yet: accepted suggestions become rows once their file is saved and left alone for a few seconds.';
  const actions: string[] = [];
  if (Object.keys(filters).length > 0) {
    actions.push(EXPORT_EVERYTHING);
  }
  if (recording === false) {
    actions.push(START_RECORDING);
  }
  return { message: `Goldiff exported 0 rows. ${reason}`, actions };
}
