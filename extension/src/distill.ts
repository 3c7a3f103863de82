/**
 * What Distill Now reports: `goldiff.distill` answers with the registered model's `name`,
 * its `gguf` file, and training figures (`train_loss`, `train_seconds`, `steps`). The
 * result is a whole model, used by naming it in `goldiff.local.model`.
 */

export interface DistillOutcome {
  name: string;
  gguf: string | undefined;
  message: string;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Undefined when the answer names no model (then the extension shows it as it came). */
export function distillOutcome(result: unknown): DistillOutcome | undefined {
  if (result === null || typeof result !== 'object') {
    return undefined;
  }
  const r = result as Record<string, unknown>;
  if (typeof r.name !== 'string' || r.name === '') {
    return undefined;
  }
  const loss = num(r.train_loss);
  const seconds = num(r.train_seconds);
  const steps = num(r.steps);
  const figures = [
    steps === undefined ? '' : `${steps} steps`,
    loss === undefined ? '' : `loss ${loss.toFixed(3)}`,
    seconds === undefined ? '' : `${Math.round(seconds)} s`,
  ].filter((f) => f !== '');
  return {
    name: r.name,
    gguf: typeof r.gguf === 'string' ? r.gguf : undefined,
    message: `Goldiff distilled ${r.name}${figures.length > 0 ? ` (${figures.join(', ')})` : ''}.`,
  };
}

export const USE_IT = 'Use It';
export const EVALUATE = 'Evaluate';

/**
 * Why nothing was registered, when the fine-tune never beat its base (the server then keeps
 * the base and says why in `promotion.reason`); undefined for any other answer.
 */
export function keptBaseMessage(result: unknown): string | undefined {
  if (result === null || typeof result !== 'object') {
    return undefined;
  }
  const r = result as Record<string, unknown>;
  const promotion = r.promotion as Record<string, unknown> | undefined;
  if (r.kept_base !== true || typeof promotion?.reason !== 'string') {
    return undefined;
  }
  return `Goldiff kept the current model: ${promotion.reason}. Keep working and distill again later.`;
}

/** The CLI line that evaluates a distilled model against its base and the frontier. */
export function evaluateArgs(name: string): string[] {
  return ['-m', 'goldiff', 'eval', '--distilled', name];
}
