/**
 * Entry point: wires the server, the status bar, the commands and terminal capture
 * together and does nothing else. The behaviour lives in the modules it connects.
 */
import * as host from './host';
import { CAPTURE_CONSENT_KEY, Commands } from './commands';
import { captureEnabled } from './consent';
import { Notifications, PROVIDERS, ServerCommands, type Provider, type ServerStatus } from './protocol';
import { GoldiffServer } from './server';
import { apiKeySecretName, buildServerSettings, serverEnvironment } from './settings';
import { formatStatus, type ClientState } from './status';
import { INTEGRATION_GRACE_MS, TerminalCapture } from './terminalCapture';

const STATUS_POLL_MS = 30000;

let server: GoldiffServer | undefined;

export async function activate(context: host.ExtensionContext): Promise<void> {
  const log = host.createLog('Goldiff');
  const statusItem = host.createStatusItem('goldiff.status', 'Goldiff');
  let state: ClientState = 'starting';
  let status: ServerStatus | undefined;
  let apiKey: string | undefined;

  const captureConsent = (): boolean | undefined => context.workspaceState.get<boolean>(CAPTURE_CONSENT_KEY);
  const provider = (): Provider => {
    const p = host.getSetting('frontier.provider');
    return (PROVIDERS as readonly unknown[]).includes(p) ? (p as Provider) : 'openai';
  };
  const reloadApiKey = async (): Promise<void> => {
    apiKey = await context.secrets.get(apiKeySecretName(provider()));
  };
  const render = (): void => {
    const view = formatStatus(state, status);
    statusItem.set(view.text, view.tooltip, view.warning, state === 'failed' ? 'goldiff.restartServer' : 'goldiff.toggleModel');
  };
  const refreshStatus = async (): Promise<ServerStatus | undefined> => {
    if (server?.running === true) {
      try {
        status = await server.execute<ServerStatus>(ServerCommands.status);
      } catch (err) {
        log.debug(`goldiff.status: ${String(err)}`);
      }
    }
    render();
    return status;
  };
  const settings = (): ReturnType<typeof buildServerSettings>['settings'] => {
    const result = buildServerSettings(host.getSetting, apiKey, captureConsent());
    for (const p of result.problems) {
      log.warn(p);
    }
    return result.settings;
  };

  await reloadApiKey();
  server = new GoldiffServer(log, {
    settings,
    environment: () => serverEnvironment(process.env, host.getSetting('home')),
    onState: (next) => {
      state = next;
      if (next !== 'running') {
        status = undefined;
      }
      render();
      if (next === 'running') {
        // After a restart the status bar would otherwise wait for the next poll.
        void refreshStatus();
      }
      void host.setContext('goldiff.serverRunning', next === 'running');
    },
  });
  const s = server;
  const commands = new Commands({
    server: s,
    context,
    log,
    refreshStatus,
    lastStatus: () => status,
    reloadApiKey,
  });

  // Settings that change how the server process is started need a restart; the rest
  // travel as didChangeConfiguration.
  const launchKey = (): string => JSON.stringify([host.getSetting('pythonPath'), host.getSetting('home')]);
  let launched = launchKey();
  const poll = setInterval(() => void refreshStatus(), STATUS_POLL_MS);

  context.subscriptions.push(
    log,
    statusItem,
    ...commands.register(),
    host.onDidChangeSettings(() => {
      void (async (): Promise<void> => {
        await reloadApiKey();
        if (launchKey() !== launched) {
          launched = launchKey();
          await s.restart();
        } else {
          await s.sendSettings();
        }
        await refreshStatus();
      })();
    }),
    context.secrets.onDidChange(() => void reloadApiKey().then(() => s.sendSettings())),
    new TerminalCapture(
      host.terminalEvents(),
      INTEGRATION_GRACE_MS,
      () => captureEnabled(captureConsent(), host.getSetting('capture.enabled')) && s.running,
      () => {
        const n = host.getSetting('terminal.maxOutputBytes');
        return typeof n === 'number' && n >= 0 ? n : 16384;
      },
      (payload) => s.notify(Notifications.terminalCommand, payload),
      log,
      (message) => void host.info(message),
    ),
    { dispose: () => clearInterval(poll) },
  );

  render();
  // Activation returns at once; the server comes up in the background (the status bar
  // shows it starting), so a slow interpreter never holds up the editor.
  void s.start().then((ok) => (ok ? commands.askForCaptureOnce() : undefined));
}

export async function deactivate(): Promise<void> {
  await server?.dispose();
  server = undefined;
}
