/**
 * The wire shapes the extension exchanges with `goldiff serve`: the settings object sent
 * as `initializationOptions` and with `workspace/didChangeConfiguration`, the payloads of
 * the `goldiff/*` notifications, and the names and results of the server's commands.
 * Kept free of `vscode` imports so the pure modules and their unit tests can use them.
 */

export const MODES = ['frontier', 'local', 'shadow'] as const;
export type Mode = (typeof MODES)[number];

export const PROVIDERS = ['openai', 'anthropic'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** What the server reads from `initializationOptions` and `didChangeConfiguration`. */
export interface ServerSettings {
  mode: Mode;
  capture: { enabled: boolean; exclude: string[] };
  settleSeconds: number;
  /** Unset values are null: the server then uses its own default (public endpoint, shipped model). */
  frontier: { provider: Provider; baseUrl: string | null; model: string | null; apiKey: string | null };
  /** `endpoint`: a team's OpenAI-compatible model server, asked instead of loading `model` here. */
  local: { model: string | null; adapter: string | null; endpoint: string | null };
  /** Terminal commands that run a coding agent (their file changes become its proposals). */
  agents: string[];
}

/** `goldiff/terminalCommand`: one command run in the integrated terminal. */
export interface TerminalCommandParams {
  commandLine: string;
  cwd: string | null;
  /** `null` when the shell did not report one. */
  exitCode: number | null;
  /** Epoch milliseconds. */
  startedAt: number;
  /** Epoch milliseconds. */
  endedAt: number;
  output?: string;
}

export const Notifications = {
  terminalCommand: 'goldiff/terminalCommand',
  suggestionShown: 'goldiff/suggestionShown',
  suggestionPartiallyAccepted: 'goldiff/suggestionPartiallyAccepted',
  suggestionRejected: 'goldiff/suggestionRejected',
} as const;

/** Commands the server executes (`workspace/executeCommand`). */
export const ServerCommands = {
  accepted: 'goldiff.accepted',
  setMode: 'goldiff.setMode',
  exportTraces: 'goldiff.exportTraces',
  stats: 'goldiff.stats',
  distill: 'goldiff.distill',
  proposeEdit: 'goldiff.proposeEdit',
  forget: 'goldiff.forget',
  status: 'goldiff.status',
  models: 'goldiff.models',
  /** Fetch a GGUF (hf://, URL or path) into the registry; resumable, checksum-verified. */
  pullModel: 'goldiff.pullModel',
  /** The current local model beside another (or the frontier) on recent held-out gold. */
  compare: 'goldiff.compare',
  /** One document as the store holds it: rebuilt text, verification, newest suggestions. */
  recorded: 'goldiff.recorded',
} as const;

/**
 * `goldiff.status`. The server owns the exact shape; the extension reads it leniently
 * (see `status.ts`) so that an older or newer server still gives a useful status bar.
 */
export interface AcceptanceCounts {
  shown?: number;
  accepted?: number;
  rate?: number | null;
}

export interface ServerStatus {
  mode?: string;
  /** The model that answers what the user sees (the frontier's in shadow mode). */
  model?: string | null;
  answering?: { source?: string; provider?: string; model?: string | null };
  /** Today's acceptance of shown suggestions, per source (frontier, local). */
  acceptanceBySource?: Record<string, AcceptanceCounts>;
  /** Today's hidden local answers in shadow mode. */
  shadowToday?: { answers?: number; matched_shown?: number; matched_kept?: number; settled?: number };
  capture?: boolean | { enabled?: boolean };
  acceptanceToday?: number | AcceptanceCounts | null;
  home?: string;
}

export const EXPORT_FORMATS = ['sft', 'preference', 'kto', 'edits', 'openai', 'parquet'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
