/**
 * Where Goldiff keeps its data when the user did not say: the same folder the server
 * picks (`GOLDIFF_HOME`, else platformdirs' user data dir for "goldiff"), so "Open Data
 * Folder" and the capture explanation name the folder that really holds `traces.db`.
 */
import * as path from 'node:path';

export function dataFolder(
  setting: unknown,
  env: Readonly<Record<string, string | undefined>>,
  platform: NodeJS.Platform,
  homedir: string,
): string {
  if (typeof setting === 'string' && setting.trim() !== '') {
    return setting.trim();
  }
  const fromEnv = env.GOLDIFF_HOME;
  if (fromEnv !== undefined && fromEnv !== '') {
    return fromEnv;
  }
  if (platform === 'win32') {
    const local = env.LOCALAPPDATA ?? path.win32.join(homedir, 'AppData', 'Local');
    // platformdirs uses the app name as the author folder when none is given.
    return path.win32.join(local, 'goldiff', 'goldiff');
  }
  if (platform === 'darwin') {
    return path.posix.join(homedir, 'Library', 'Application Support', 'goldiff');
  }
  const xdg = env.XDG_DATA_HOME;
  return path.posix.join(xdg !== undefined && xdg !== '' ? xdg : path.posix.join(homedir, '.local', 'share'), 'goldiff');
}
