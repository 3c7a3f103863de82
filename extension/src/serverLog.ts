/**
 * Reads the level of a line the server logged to stderr, so the "Goldiff" output channel
 * shows the server's warnings as warnings and its info as info. The server's format is
 * Python logging's "%(asctime)s %(levelname)s %(name)s: %(message)s"; the channel adds its
 * own timestamp, so the server's is dropped. Anything else (a traceback, a print) is an
 * error line: the server has no other reason to write to stderr.
 */
export type ChannelLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

const LINE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$/;

const LEVELS: Record<string, ChannelLevel> = {
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  ERROR: 'error',
  CRITICAL: 'error',
};

export function parseServerLogLine(line: string): { level: ChannelLevel; message: string } {
  const m = LINE.exec(line);
  if (m === null) {
    return { level: 'error', message: line };
  }
  return { level: LEVELS[m[1]!] ?? 'info', message: m[2]! };
}
