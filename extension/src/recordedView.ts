/**
 * "Show What Was Recorded": what the store holds for the open file, as the server's
 * `goldiff.recorded` answers it. The rebuilt text goes into a read-only document on the
 * left of a diff (the file as it is now on the right), so a user sees exactly what was
 * kept and what was masked; this module renders the rest, the file's newest suggestions
 * with their outcome and what was finally kept (the gold), as markdown.
 */

export interface RecordedSuggestion {
  id?: string;
  /** Epoch seconds. */
  ts?: number;
  source?: string | null;
  model?: string | null;
  /** accepted | partial | rejected; null while pending. */
  outcome?: string | null;
  reason?: string | null;
  shadow?: boolean;
  text?: string;
  gold?: string | null;
  acceptedLength?: number | null;
  survival?: number | null;
}

export interface RecordedAnswer {
  uri: string;
  version: number | null;
  text: string;
  verified: boolean;
  suggestions: RecordedSuggestion[];
}

/** The answer, read leniently: a missing text is an error, everything else has a default. */
export function parseRecorded(answer: unknown): RecordedAnswer | undefined {
  if (answer === null || typeof answer !== 'object') {
    return undefined;
  }
  const a = answer as Record<string, unknown>;
  if (typeof a.text !== 'string') {
    return undefined;
  }
  return {
    uri: typeof a.uri === 'string' ? a.uri : '',
    version: typeof a.version === 'number' ? a.version : null,
    text: a.text,
    verified: a.verified === true,
    suggestions: Array.isArray(a.suggestions) ? a.suggestions.filter((s): s is RecordedSuggestion => s !== null && typeof s === 'object') : [],
  };
}

/**
 * A server error as a sentence: pygls answers an exception raised in a command as
 * "goldiff.errors.NotRecordedError: not recorded: …"; the class name says nothing to a user.
 */
export function serverMessage(message: string): string {
  return message.replace(/^(?:[A-Za-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception): /, '');
}

/** The diff editor's title: the file's name, and which side is which. */
export function recordedDiffTitle(fileName: string, answer: RecordedAnswer): string {
  const version = answer.version === null ? '' : ` v${answer.version}`;
  return `${fileName}: recorded${version} ↔ now`;
}

function when(ts: number | undefined): string {
  return typeof ts === 'number' && Number.isFinite(ts) ? new Date(ts * 1000).toISOString().slice(0, 19).replace('T', ' ') + ' UTC' : 'at an unknown time';
}

function outcomeText(s: RecordedSuggestion): string {
  const kept = typeof s.survival === 'number' ? `, ${Math.round(100 * s.survival)}% still there at the last check` : '';
  switch (s.outcome) {
    case 'accepted':
      return `accepted${kept}`;
    case 'partial':
      return `partly accepted (${s.acceptedLength ?? '?'} characters)${kept}`;
    case 'rejected':
      return typeof s.reason === 'string' && s.reason !== '' ? `rejected (${s.reason})` : 'rejected';
    case 'empty':
      return 'nothing to suggest (the model answered empty)';
    case null:
    case undefined:
      return 'pending (not settled yet)';
    default:
      return s.outcome;
  }
}

/** A fenced block that no run of backticks in `text` can close early. */
export function fenced(text: string, language: string): string {
  const longest = Math.max(2, ...Array.from(text.matchAll(/`+/g), (m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  return [`${fence}${language}`, text.replace(/\n$/, ''), fence].join('\n');
}

function goldText(s: RecordedSuggestion, language: string): string[] {
  if (typeof s.gold !== 'string') {
    return ['Kept: nothing yet (the gold is known once the file is saved and left alone).'];
  }
  if (s.gold === '') {
    return ['Kept: nothing (the span was emptied).'];
  }
  if (s.gold === s.text) {
    return ['Kept: exactly the suggestion.'];
  }
  return ['Kept (the gold):', '', fenced(s.gold, language)];
}

export function recordedMarkdown(answer: RecordedAnswer, fileName: string, language: string): string {
  const lines = [
    `# What Goldiff recorded: ${fileName}`,
    '',
    `The diff shows the text rebuilt from the store${answer.version === null ? '' : ` (version ${answer.version})`} on the left and the file as it is now on the right. Secrets are masked as they were recorded. The same text: \`goldiff show ${answer.uri}\`.`,
    '',
    answer.verified
      ? 'Every recorded step matched the hash stored with it.'
      : '**Warning:** the rebuilt text does not match a recorded hash; the store may be damaged (run "Goldiff: Run Doctor").',
    '',
  ];
  if (answer.suggestions.length === 0) {
    lines.push('No suggestions were recorded in this file.', '');
    return lines.join('\n');
  }
  lines.push(`## Its ${answer.suggestions.length} newest suggestions, newest first`, '');
  for (const s of answer.suggestions) {
    const who = [s.source ?? 'unknown source', s.model ? `(${s.model})` : '', s.shadow === true ? '· shadow, not shown' : ''].filter((p) => p !== '').join(' ');
    lines.push(`### ${when(s.ts)} · ${who} · ${outcomeText(s)}`, '');
    if (s.outcome !== 'empty') {
      lines.push('Suggested:', '', fenced(s.text ?? '', language), '', ...goldText(s, language), '');
    }
  }
  return lines.join('\n');
}
