/**
 * Renders the server's `goldiff.stats` answer as a Markdown document the user can read
 * and keep: nested counts become dotted rows of one table, so any shape the server sends
 * is shown in full rather than summarised away.
 */

function flatten(value: unknown, prefix: string, rows: [string, string][]): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      flatten(v, prefix === '' ? k : `${prefix}.${k}`, rows);
    }
    return;
  }
  rows.push([prefix === '' ? 'value' : prefix, formatValue(prefix, value)]);
}

function formatValue(key: string, value: unknown): string {
  if (typeof value === 'number' && /bytes$/i.test(key)) {
    return humanBytes(value);
  }
  if (typeof value === 'string') {
    return value;
  }
  return JSON.stringify(value);
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function statsMarkdown(stats: unknown, when: Date): string {
  const rows: [string, string][] = [];
  flatten(stats, '', rows);
  const cell = (s: string): string => s.replace(/\|/g, '\\|');
  return [
    '# Goldiff stats',
    '',
    `As of ${when.toISOString()}. The same numbers: \`goldiff stats --json\`.`,
    '',
    '| What | Value |',
    '| --- | --- |',
    ...rows.map(([k, v]) => `| ${cell(k)} | ${cell(v)} |`),
    '',
  ].join('\n');
}
