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
import { completionBlocked, Snooze, triggerMode } from './control';
import { bundledWheel, decideSetup, findPython, noPythonMessage, runSetup, SetupError, type Wheel } from './setup';
import { nodeSetupSystem, withSetupLock } from './setupSystem';
import { diagnoseProbe, probePython, resolvePython } from './python';
import { INTEGRATION_GRACE_MS, TerminalCapture } from './terminalCapture';

const STATUS_POLL_MS = 30000;

let server: GoldiffServer | undefined;

export async function activate(context: host.ExtensionContext): Promise<void> {
  const log = host.createLog('Goldiff');
  const statusItem = host.createStatusItem('goldiff.status', 'Goldiff');
  let state: ClientState = 'starting';
  let status: ServerStatus | undefined;
  let apiKey: string | undefined;
  let failure: string | undefined;
  const snooze = new Snooze();

  const captureConsent = (): boolean | undefined => context.workspaceState.get<boolean>(CAPTURE_CONSENT_KEY);
  const provider = (): Provider => {
    const p = host.getSetting('frontier.provider');
    return (PROVIDERS as readonly unknown[]).includes(p) ? (p as Provider) : 'openai';
  };
  const reloadApiKey = async (): Promise<void> => {
    apiKey = await context.secrets.get(apiKeySecretName(provider()));
  };
  const render = (): void => {
    const now = Date.now();
    const view = formatStatus(state, status, {
      now,
      snoozedUntil: snooze.active(now),
      failure,
      manual: triggerMode(host.getSetting('trigger')) === 'manual',
    });
    statusItem.set(view.text, view.tooltip, view.warning, 'goldiff.statusMenu', view.label);
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

  // ---- first run: Goldiff's own server environment (see setup.ts)
  const storageDir = context.globalStorageUri.fsPath;
  const system = nodeSetupSystem(serverEnvironment(process.env, host.getSetting('home')));
  let offered = false;
  // `force`: run the steps even when the version stamp says the environment is current
  // (the user asked, for instance because the environment broke).
  const install = async (wheel: Wheel, fresh: boolean, force = false): Promise<string> =>
    host.withProgress(`Goldiff: ${fresh ? 'setting up' : 'upgrading'} its server`, true, (report, token) =>
      withSetupLock(storageDir, 30 * 60000, (ms) => new Promise((r) => setTimeout(r, ms)), async () => {
        // Another window may have finished it while this one waited for the lock.
        const now = decideSetup(system, { pythonPathSetting: '', storageDir, extensionDir: context.extensionPath });
        if (now.kind === 'ready' && !force) {
          return now.python;
        }
        let base;
        if (fresh) {
          const { found, tried } = await findPython(system);
          if (found === undefined) {
            throw new SetupError(noPythonMessage(process.platform, tried));
          }
          base = found;
        }
        return runSetup(
          system,
          storageDir,
          base,
          wheel,
          (step, i, n) => report(`${i + 1}/${n}: ${step}…`),
          (line) => log.info(line),
          () => token.isCancellationRequested,
        );
      }),
    );
  const managedPython = async (): Promise<string | undefined> => {
    const decision = decideSetup(system, {
      pythonPathSetting: host.getSetting('pythonPath'),
      storageDir,
      extensionDir: context.extensionPath,
    });
    log.info(`Server set-up: ${decision.kind}`);
    if (decision.kind === 'ready') {
      return decision.python;
    }
    if (decision.kind === 'upgrade') {
      try {
        return await install(decision.to, false);
      } catch (err) {
        log.error(`Upgrading Goldiff's server from ${decision.from}: ${String(err)}`);
        void host.error(`${err instanceof Error ? err.message : String(err)} The previous version keeps running.`);
        return decision.python;
      }
    }
    if (decision.kind !== 'install' || offered) {
      return undefined;
    }
    offered = true;
    // An interpreter that already has Goldiff (the Python extension's, or python3) is used as is.
    const usual = resolvePython('', await host.pythonExtensionInterpreter(), process.platform);
    if (diagnoseProbe(usual, await probePython(usual.command, serverEnvironment(process.env, host.getSetting('home')))) === undefined) {
      return undefined;
    }
    const SET_UP = 'Set Up';
    const answer = await host.info(
      `Goldiff needs its server (Python). Set it up now? Goldiff ${decision.wheel.version} and its default model go into a Python environment in VS Code's storage, shared by every window; it takes a few minutes.`,
      SET_UP,
      'Choose Interpreter…',
    );
    if (answer === 'Choose Interpreter…') {
      await host.openSettings('goldiff.pythonPath');
      return undefined;
    }
    if (answer !== SET_UP) {
      return undefined;
    }
    return setUpNow(decision.wheel);
  };
  const setUpNow = async (wheel: Wheel, force = false): Promise<string | undefined> => {
    try {
      const python = await install(wheel, true, force);
      void host.info('Goldiff set up its server. Completions come from the local model.');
      return python;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log.error(message);
      void host.error(message, 'Show Log').then((a) => (a === 'Show Log' ? log.show() : undefined));
      return undefined;
    }
  };

  await reloadApiKey();
  server = new GoldiffServer(log, {
    settings,
    environment: () => serverEnvironment(process.env, host.getSetting('home')),
    managedPython,
    completionBlocked: (doc, invoked) =>
      completionBlocked(
        { languageId: doc.languageId, path: doc.path, invoked, now: Date.now() },
        {
          enable: host.getSetting('enable'),
          disabledFiles: host.getSetting('disabledFiles'),
          trigger: host.getSetting('trigger'),
          snoozedUntil: snooze.active(Date.now()),
        },
      ),
    onState: (next, reason) => {
      failure = next === 'failed' ? reason : undefined;
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
    snooze,
    clientState: () => state,
    render,
    system,
    extensionDir: context.extensionPath,
    setUpServer: async () => {
      const decision = decideSetup(system, { pythonPathSetting: '', storageDir, extensionDir: context.extensionPath });
      if (decision.kind === 'none') {
        void host.error('This build of the Goldiff extension carries no server wheel; set goldiff.pythonPath to an interpreter with Goldiff.');
        return;
      }
      const wheel = bundledWheel(system, context.extensionPath);
      if (decision.kind === 'configured' || wheel === undefined) {
        return; // unreachable: decided with no pythonPath, and 'none' means no wheel
      }
      // Asked for explicitly, the steps run even over a current environment: that is how
      // a broken one is repaired.
      if ((await setUpNow(wheel, true)) === undefined) {
        return;
      }
      if (typeof host.getSetting('pythonPath') === 'string' && host.getSetting('pythonPath') !== '') {
        void host.info("Goldiff set up its server, but goldiff.pythonPath is set and wins: clear it to use Goldiff's own.");
      }
      await s.restart();
    },
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
