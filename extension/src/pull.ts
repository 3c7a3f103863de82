/**
 * The model picker's "Download…": what a user may type as a source (an `hf://` hub file,
 * an http(s) URL of a GGUF, or a path), and what to tell them when `goldiff.pullModel`
 * answers. The download itself (resumable, SHA-256 and GGUF checked, registered) is the
 * server's `goldiff.sources.pull`.
 */

export const HUB_EXAMPLE = 'hf://OWNER/REPO/FILE.gguf';

export interface PullAnswer {
  name?: string;
  path?: string;
  sha256?: string;
  bytes?: number;
  verified?: boolean;
  resumedFrom?: number;
  reused?: boolean;
}

/** Why `text` cannot be a source, or undefined when it can (the input box shows the reason). */
export function pullSourceProblem(text: string): string | undefined {
  const t = text.trim();
  if (t === '') {
    return `A hub file (${HUB_EXAMPLE}), a URL of a .gguf file, or a path on this machine.`;
  }
  if (t.startsWith('hf://')) {
    const parts = t.slice(5).split('@')[0]!.split('/').filter((p) => p !== '');
    if (parts.length < 3) {
      return `A hub file needs an owner, a repository and a file: ${HUB_EXAMPLE}`;
    }
  }
  let name = t;
  if (/^(https?|file):\/\//.test(t)) {
    try {
      name = decodeURIComponent(new URL(t).pathname);
    } catch {
      return 'That is not a valid URL.';
    }
  }
  name = name.split('@')[0]!;
  if (!name.toLowerCase().endsWith('.gguf')) {
    return 'Goldiff serves GGUF models: the source must name a .gguf file.';
  }
  return undefined;
}

/** What `goldiff.pullModel {describe: true}` says before anything is fetched. */
export interface PullDescription {
  filename?: string;
  kind?: string;
  bytes?: number;
  sha256?: string;
  licence?: string;
}

export function isRemote(source: string): boolean {
  return /^(https?|hf):\/\//.test(source.trim());
}

/** A remote file whose server stated no checksum: the user may type one to verify against. */
export function asksForChecksum(source: string, described: unknown): boolean {
  const d = (described !== null && typeof described === 'object' ? described : {}) as PullDescription;
  return isRemote(source) && typeof d.sha256 !== 'string';
}

/** The confirmation before a download: size, licence (the user accepts it by downloading), checksum. */
export function describeDownload(described: unknown): { message: string; detail: string } {
  const d = (described !== null && typeof described === 'object' ? described : {}) as PullDescription;
  const size = typeof d.bytes === 'number' ? mib(d.bytes) : 'size unknown';
  const licence =
    typeof d.licence === 'string' && d.licence !== ''
      ? `Licence: ${d.licence}. Downloading means you accept it; read it on the model's page first.`
      : 'The server states no licence: check the model page for its terms before you use it.';
  const check = typeof d.sha256 === 'string' ? `SHA-256 ${d.sha256.slice(0, 12)}… is stated and will be verified.` : 'No checksum is stated.';
  return { message: `Download ${d.filename ?? 'the model'} (${size})?`, detail: `${licence} ${check}` };
}

export const DOWNLOAD = 'Download';

export function sha256Problem(text: string): string | undefined {
  const t = text.trim();
  return t === '' || /^[0-9a-fA-F]{64}$/.test(t) ? undefined : 'A SHA-256 is 64 hexadecimal digits (or leave it empty).';
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '' : `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

export function pullMessage(answer: unknown): string {
  const a = (answer !== null && typeof answer === 'object' ? answer : {}) as PullAnswer;
  const facts = [
    mib(a.bytes),
    a.reused === true ? 'already downloaded' : '',
    typeof a.resumedFrom === 'number' && a.resumedFrom > 0 ? `resumed after ${mib(a.resumedFrom)}` : '',
    a.verified === true ? 'SHA-256 verified' : 'no checksum was stated to verify against',
  ].filter((f) => f !== '');
  return `Goldiff downloaded and registered ${a.name ?? 'the model'} (${facts.join(', ')}).`;
}

export const PULL_CANCELLED =
  'Goldiff paused the download. Choose "Download…" again with the same source to resume where it stopped.';
