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

/** A count from the server's answer, whatever it called it; undefined if it gave none. */
export function exportedRows(result: unknown): number | undefined {
  if (typeof result === 'number') {
    return result;
  }
  if (result !== null && typeof result === 'object') {
    for (const key of ['rows', 'count', 'written']) {
      const v = (result as Record<string, unknown>)[key];
      if (typeof v === 'number') {
        return v;
      }
    }
  }
  return undefined;
}

export function exportMessage(rows: number | undefined, file: string): string {
  return rows === undefined
    ? `Goldiff exported traces to ${file}.`
    : `Goldiff exported ${rows} row${rows === 1 ? '' : 's'} to ${file}.`;
}
