/**
 * The capture opt-in. Nothing is recorded until the user says so. The answer for a
 * workspace is kept in VS Code's storage for that workspace, not in the workspace's files:
 * a `.vscode/settings.json` shared through git must never switch recording on for a
 * teammate who was not asked. `goldiff.capture.enabled` is a user-level setting
 * ("record every workspace without asking"); a workspace's own answer wins over it.
 */

/** The per-workspace answer: true (record), false (do not), undefined (not asked yet). */
export type CaptureConsent = boolean | undefined;

export function captureEnabled(consent: CaptureConsent, userSetting: unknown): boolean {
  return consent ?? userSetting === true;
}

/** Ask once per workspace, unless the user already opted in everywhere. */
export function shouldAskForCapture(consent: CaptureConsent, userSetting: unknown, hasWorkspace: boolean): boolean {
  return hasWorkspace && consent === undefined && userSetting !== true;
}

export function captureExplanation(dataFolder: string): string {
  return (
    'Goldiff can learn from this workspace: it records your edits, the suggestions you ' +
    'accept or reject, and commands run in the terminal (with exit code and the start and ' +
    `end of their output) in a local database in ${dataFolder}. Nothing leaves this ` +
    'machine; secrets are redacted before anything is written, and files matching ' +
    'goldiff.capture.exclude are skipped. You can change this any time with "Goldiff: ' +
    'Disable Capture for This Workspace" and delete what was recorded.'
  );
}

export const ENABLE_CAPTURE = 'Enable Capture';
export const NOT_NOW = 'Not Now';
