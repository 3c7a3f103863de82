/**
 * Building the `goldiff/terminalCommand` payload from what shell integration reports: the
 * command line, cwd, exit code, start and end times, and the command's output with the
 * terminal's escape sequences removed and its size bounded (head and tail kept, since the
 * start says what ran and the end says how it failed). Pure and `vscode`-free; the event
 * wiring lives in `terminalCapture.ts`.
 */
import type { TerminalCommandParams } from './protocol';

// CSI (colours, cursor moves), OSC (titles, shell-integration marks; ended by BEL or ST),
// and the remaining two-byte escapes. Matching control characters is the point here.
/* eslint-disable no-control-regex */
const CSI = /\x1b\[[0-?]*[ -/]*[@-~]/g;
const OSC = /\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;
// Charset selection (ESC ( B) takes a third byte; ESC 7, ESC =, ESC M... take one.
const ESC2 = /\x1b(?:[()*+][0-9A-Za-z]|[0-?@-Z\\^_])/g;
/* eslint-enable no-control-regex */

/** The text a reader would see: escapes gone, and for each line what follows its last CR. */
export function stripTerminalSequences(raw: string): string {
  const plain = raw.replace(OSC, '').replace(CSI, '').replace(ESC2, '').replace(/\r\n/g, '\n');
  return plain
    .split('\n')
    .map((line) => {
      const cr = line.lastIndexOf('\r');
      return cr >= 0 ? line.slice(cr + 1) : line;
    })
    .join('\n');
}

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** The longest prefix of `s` that fits in `bytes` UTF-8 bytes, never splitting a character. */
function headBytes(s: string, bytes: number): string {
  const buf = Buffer.from(s, 'utf8');
  if (buf.length <= bytes) {
    return s;
  }
  let end = bytes;
  // Step back off UTF-8 continuation bytes (10xxxxxx) so a character is not cut in half.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) {
    end--;
  }
  return buf.subarray(0, end).toString('utf8');
}

function tailBytes(s: string, bytes: number): string {
  const buf = Buffer.from(s, 'utf8');
  if (buf.length <= bytes) {
    return s;
  }
  let start = buf.length - bytes;
  while (start < buf.length && (buf[start]! & 0xc0) === 0x80) {
    start++;
  }
  return buf.subarray(start).toString('utf8');
}

export function omissionMarker(omittedBytes: number): string {
  return `\n[... ${omittedBytes} bytes omitted by Goldiff ...]\n`;
}

/**
 * Fits `text` into `maxBytes` UTF-8 bytes by keeping its head and tail around a marker
 * that says how much was left out. `maxBytes <= 0` records no output at all.
 */
export function truncateOutput(text: string, maxBytes: number, extraOmitted = 0): string | undefined {
  if (maxBytes <= 0) {
    return undefined;
  }
  const total = byteLength(text);
  if (total <= maxBytes && extraOmitted === 0) {
    return text;
  }
  // The marker's own length depends on the count; reserve room for the widest one.
  const room = Math.max(0, maxBytes - byteLength(omissionMarker(total + extraOmitted)));
  const head = headBytes(text, Math.ceil(room / 2));
  const tail = tailBytes(text, Math.floor(room / 2));
  const omitted = total - byteLength(head) - byteLength(tail) + extraOmitted;
  return head + omissionMarker(omitted) + tail;
}

/**
 * Collects a command's output as it streams, holding at most about `2 * maxBytes` of it
 * whatever the command prints (a `yes` left running must not grow the extension host).
 */
export class OutputCollector {
  private head = '';
  private tail = '';
  private dropped = 0;
  private headFull = false;

  constructor(private readonly maxBytes: number) {}

  push(chunk: string): void {
    if (this.maxBytes <= 0) {
      return;
    }
    if (!this.headFull) {
      this.head += chunk;
      if (byteLength(this.head) > this.maxBytes) {
        const kept = headBytes(this.head, this.maxBytes);
        this.tail = this.head.slice(kept.length);
        this.head = kept;
        this.headFull = true;
      }
    } else {
      this.tail += chunk;
    }
    if (this.headFull && this.tail.length > 2 * this.maxBytes) {
      const kept = tailBytes(this.tail, this.maxBytes);
      this.dropped += byteLength(this.tail) - byteLength(kept);
      this.tail = kept;
    }
  }

  /** The cleaned, bounded output; undefined when nothing (or nothing visible) was printed. */
  result(): string | undefined {
    if (this.maxBytes <= 0) {
      return undefined;
    }
    const text = stripTerminalSequences(this.head + this.tail);
    if (text.trim() === '') {
      return undefined;
    }
    return truncateOutput(text, this.maxBytes, this.dropped);
  }
}

export interface ShellExecutionFacts {
  commandLine: string;
  cwd: string | undefined;
  exitCode: number | undefined;
  startedAt: number;
  endedAt: number;
  output: string | undefined;
}

/** Undefined for an empty command line (a bare Enter), which says nothing worth keeping. */
export function buildTerminalPayload(facts: ShellExecutionFacts): TerminalCommandParams | undefined {
  const commandLine = facts.commandLine.trim();
  if (commandLine === '') {
    return undefined;
  }
  const payload: TerminalCommandParams = {
    commandLine,
    cwd: facts.cwd ?? null,
    exitCode: facts.exitCode ?? null,
    startedAt: facts.startedAt,
    endedAt: Math.max(facts.endedAt, facts.startedAt),
  };
  if (facts.output !== undefined) {
    payload.output = facts.output;
  }
  return payload;
}
