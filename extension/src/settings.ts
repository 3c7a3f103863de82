/**
 * Turns the user's `goldiff.*` settings (declared in package.json, the one source of truth
 * for names, defaults and descriptions) into the camelCase object the server expects in
 * `initializationOptions` and `workspace/didChangeConfiguration`. Values a user typed by
 * hand into settings.json are checked here, so the server never sees a mode it does not
 * know; each correction is reported as a sentence the extension can show.
 */
import { captureEnabled } from './consent';
import { MODES, PROVIDERS, type Mode, type Provider, type ServerSettings } from './protocol';

/** Reads one setting below `goldiff.` (for example `frontier.model`); undefined if unset. */
export type SettingReader = (key: string) => unknown;

export interface SettingsResult {
  settings: ServerSettings;
  problems: string[];
}

export const DEFAULT_SETTLE_SECONDS = 10;

function oneOf<T extends string>(
  value: unknown,
  allowed: readonly T[],
  fallback: T,
  key: string,
  problems: string[],
): T {
  if (value === undefined || value === null || value === '') {
    return fallback;
  }
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) {
    return value as T;
  }
  problems.push(
    `Setting goldiff.${key} is ${JSON.stringify(value)}; use one of ${allowed.join(', ')}. Using "${fallback}".`,
  );
  return fallback;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value.trim() : '';
}

/** An empty setting means "the server's default", which the server reads as null. */
function optional(value: unknown): string | null {
  const t = text(value);
  return t === '' ? null : t;
}

function globs(value: unknown, problems: string[]): string[] {
  return strings(value, 'capture.exclude', 'glob patterns', problems) ?? [];
}

/** A list of non-empty strings; undefined (and a problem) when the value is not a list. */
export function strings(value: unknown, key: string, what: string, problems: string[]): string[] | undefined {
  if (value === undefined || value === null) {
    return undefined;
  }
  if (!Array.isArray(value)) {
    problems.push(`Setting goldiff.${key} must be a list of ${what}; ignoring it.`);
    return undefined;
  }
  return value.filter((g): g is string => typeof g === 'string' && g.trim() !== '').map((g) => g.trim());
}

/** The agent commands Goldiff watches when goldiff.agents is unset (as package.json declares). */
export const DEFAULT_AGENTS = ['claude', 'codex', 'aider', 'gemini', 'goose', 'opencode', 'cursor-agent'];

/**
 * Builds the server settings. `apiKey` comes from SecretStorage, never from settings, and
 * `captureConsent` is the workspace's own answer to the opt-in (see consent.ts).
 */
export function buildServerSettings(
  read: SettingReader,
  apiKey: string | undefined,
  captureConsent?: boolean,
): SettingsResult {
  const problems: string[] = [];
  const mode: Mode = oneOf(read('mode'), MODES, 'local', 'mode', problems);
  const provider: Provider = oneOf(
    read('frontier.provider'),
    PROVIDERS,
    'openai',
    'frontier.provider',
    problems,
  );
  let settleSeconds = read('settleSeconds');
  if (settleSeconds === undefined || settleSeconds === null) {
    settleSeconds = DEFAULT_SETTLE_SECONDS;
  } else if (typeof settleSeconds !== 'number' || !Number.isFinite(settleSeconds) || settleSeconds <= 0) {
    problems.push(
      `Setting goldiff.settleSeconds must be a positive number of seconds; using ${DEFAULT_SETTLE_SECONDS}.`,
    );
    settleSeconds = DEFAULT_SETTLE_SECONDS;
  }
  return {
    settings: {
      mode,
      capture: {
        enabled: captureEnabled(captureConsent, read('capture.enabled')),
        exclude: globs(read('capture.exclude'), problems),
      },
      settleSeconds: settleSeconds as number,
      frontier: {
        provider,
        baseUrl: optional(read('frontier.baseUrl')),
        model: optional(read('frontier.model')),
        apiKey: apiKey === undefined || apiKey === '' ? null : apiKey,
      },
      local: {
        model: optional(read('local.model')),
        adapter: optional(read('local.adapter')),
        endpoint: optional(read('local.endpoint')),
      },
      agents: strings(read('agents'), 'agents', 'command names', problems) ?? [...DEFAULT_AGENTS],
    },
    problems,
  };
}

/** The environment of the server process: `goldiff.home` wins over an inherited GOLDIFF_HOME. */
export function serverEnvironment(
  base: Readonly<Record<string, string | undefined>>,
  home: unknown,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) {
    if (v !== undefined) {
      env[k] = v;
    }
  }
  const h = text(home);
  if (h !== '') {
    env.GOLDIFF_HOME = h;
  }
  // Python buffers stdout when it is a pipe; the LSP stream must not wait on a buffer.
  env.PYTHONUNBUFFERED = '1';
  return env;
}

/** SecretStorage key of a provider's API key: one key per provider, so switching keeps both. */
export function apiKeySecretName(provider: Provider): string {
  return `goldiff.frontier.apiKey.${provider}`;
}

/**
 * The settings for `initializationOptions`: without the API key, because pygls logs the
 * whole InitializeParams. The key follows in a didChangeConfiguration once the server runs.
 */
export function withoutApiKey(settings: ServerSettings): ServerSettings {
  return { ...settings, frontier: { ...settings.frontier, apiKey: null } };
}
