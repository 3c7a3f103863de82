/**
 * When Goldiff offers completions: per language (`goldiff.enable`, a map like Copilot's
 * `github.copilot.enable`), never in files matching `goldiff.disabledFiles`, not while
 * snoozed, and in manual trigger mode only when the user asks. None of this touches
 * recording: a file without completions is still recorded when capture is on, and the
 * capture switch never turns completions off.
 */

export type EnableMap = Record<string, boolean>;

/** The language's own entry wins, then "*"; anything unset or malformed means enabled. */
export function languageEnabled(map: unknown, languageId: string): boolean {
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    return true;
  }
  const m = map as Record<string, unknown>;
  const own = m[languageId];
  if (typeof own === 'boolean') {
    return own;
  }
  const all = m['*'];
  return typeof all === 'boolean' ? all : true;
}

/**
 * A glob as VS Code's settings use them: `**` any folders, `*` and `?` within one path
 * segment, `{a,b}` alternatives. A pattern without a slash matches the file name in any
 * folder (`*.md`), as in `files.exclude`.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const slash = glob[i + 2] === '/';
        re += slash ? '(?:.*/)?' : '.*';
        i += slash ? 2 : 1;
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '{') {
      braces++;
      re += '(?:';
    } else if (c === '}' && braces > 0) {
      braces--;
      re += ')';
    } else if (c === ',' && braces > 0) {
      re += '|';
    } else {
      re += c.replace(/[.+^$()|[\]\\]/g, '\\$&');
    }
  }
  const anchored = glob.includes('/') ? `^(?:.*/)?${re.replace(/^\\?\//, '')}$` : `(?:^|/)${re}$`;
  return new RegExp(anchored);
}

export function fileDisabled(patterns: unknown, filePath: string): boolean {
  if (!Array.isArray(patterns)) {
    return false;
  }
  const p = filePath.replace(/\\/g, '/');
  return patterns.some((g) => typeof g === 'string' && g.trim() !== '' && globToRegExp(g.trim()).test(p));
}

export type TriggerMode = 'automatic' | 'manual';

export function triggerMode(value: unknown): TriggerMode {
  return value === 'manual' ? 'manual' : 'automatic';
}

export interface CompletionQuestion {
  languageId: string;
  /** The file's path (or the URI's path for unsaved documents). */
  path: string;
  /** True when the user asked (Goldiff: Trigger Completion, or the editor's trigger). */
  invoked: boolean;
  now: number;
}

export interface CompletionControls {
  enable: unknown;
  disabledFiles: unknown;
  trigger: unknown;
  snoozedUntil: number | undefined;
}

/** Undefined when a completion may be offered, else why not (for the log). */
export function completionBlocked(q: CompletionQuestion, c: CompletionControls): string | undefined {
  if (c.snoozedUntil !== undefined && q.now < c.snoozedUntil) {
    return 'snoozed';
  }
  if (!languageEnabled(c.enable, q.languageId)) {
    return `disabled for ${q.languageId} (goldiff.enable)`;
  }
  if (fileDisabled(c.disabledFiles, q.path)) {
    return 'file matches goldiff.disabledFiles';
  }
  if (triggerMode(c.trigger) === 'manual' && !q.invoked) {
    return 'manual trigger mode';
  }
  return undefined;
}

export const SNOOZE_MINUTES = [5, 15, 30, 60] as const;

/** Snooze: no completions until a time. Kept per window, gone with a restart of the editor. */
export class Snooze {
  private until: number | undefined;

  snooze(minutes: number, now: number): number {
    this.until = now + minutes * 60000;
    return this.until;
  }

  resume(): void {
    this.until = undefined;
  }

  /** The end of the snooze while it lasts, else undefined (and a passed one is forgotten). */
  active(now: number): number | undefined {
    if (this.until !== undefined && now >= this.until) {
      this.until = undefined;
    }
    return this.until;
  }
}
