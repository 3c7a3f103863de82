/**
 * Work-done progress from the server as VS Code's notification wants it: the server
 * reports an absolute percentage, `withProgress` takes increments.
 */

export interface WorkDoneValue {
  kind?: string;
  message?: string;
  percentage?: number;
}

export class PercentSteps {
  private last = 0;

  /** The increment that takes the bar from where it is to `percent` (never backwards). */
  step(percent: number | undefined): number | undefined {
    if (percent === undefined || !Number.isFinite(percent)) {
      return undefined;
    }
    const target = Math.max(0, Math.min(100, percent));
    const increment = Math.max(0, target - this.last);
    this.last = Math.max(this.last, target);
    return increment;
  }
}

/** "42% · 3.0 MiB of 7.1 MiB": the text beside the bar. */
export function progressText(value: WorkDoneValue): string | undefined {
  const parts = [
    typeof value.percentage === 'number' ? `${Math.round(value.percentage)}%` : '',
    typeof value.message === 'string' ? value.message : '',
  ].filter((p) => p !== '');
  return parts.length > 0 ? parts.join(' · ') : undefined;
}
