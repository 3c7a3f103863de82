/**
 * The capture opt-in. Nothing is recorded until the user says so for a workspace; the
 * question is asked once per workspace and only when no setting already answers it (a
 * user or team that set `goldiff.capture.enabled` anywhere has decided).
 */
import type { SettingScopes } from './mode';

export function shouldAskForCapture(
  scopes: SettingScopes | undefined,
  alreadyAsked: boolean,
  hasWorkspace: boolean,
): boolean {
  if (!hasWorkspace || alreadyAsked) {
    return false;
  }
  return (
    scopes?.globalValue === undefined &&
    scopes?.workspaceValue === undefined &&
    scopes?.workspaceFolderValue === undefined
  );
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
