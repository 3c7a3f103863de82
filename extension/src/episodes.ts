/**
 * Edit with Model follow-ups. A second instruction on the same document soon after the
 * first continues the server's edit episode, so the model sees the earlier turns and the
 * store keeps the whole exchange as one episode with one gold result.
 */
export const FOLLOW_UP_WINDOW_MS = 10 * 60 * 1000;

export class EditEpisodes {
  private readonly last = new Map<string, { episode: string; at: number }>();

  constructor(private readonly windowMs = FOLLOW_UP_WINDOW_MS) {}

  remember(documentUri: string, episode: string, now: number): void {
    this.last.set(documentUri, { episode, at: now });
  }

  /** The episode a new instruction on this document continues, if it is recent enough. */
  followUp(documentUri: string, now: number): string | undefined {
    const entry = this.last.get(documentUri);
    if (entry === undefined) {
      return undefined;
    }
    if (now - entry.at > this.windowMs) {
      this.last.delete(documentUri);
      return undefined;
    }
    return entry.episode;
  }

  end(documentUri: string): void {
    this.last.delete(documentUri);
  }
}

/** The episode id from the server's `goldiff.proposeEdit` answer, if it sent one. */
export function episodeOf(result: unknown): string | undefined {
  if (result !== null && typeof result === 'object') {
    const e = (result as Record<string, unknown>).episode;
    if (typeof e === 'string' && e !== '') {
      return e;
    }
    if (typeof e === 'number') {
      return String(e);
    }
  }
  return undefined;
}
