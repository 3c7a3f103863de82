/**
 * The handlers behind the extension's commands. Each one gathers what it needs from the
 * user through `host`, asks the server through `GoldiffServer`, and reports back in one
 * message; errors the user can act on are shown as such, not as stack traces.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as host from './host';
import { captureExplanation, ENABLE_CAPTURE, NOT_NOW, shouldAskForCapture } from './consent';
import { EditEpisodes, episodeOf } from './episodes';
import {
  defaultExportName,
  exportedFiles,
  exportedRows,
  exportExtension,
  exportMessage,
  formatPickItems,
} from './exportTraces';
import { isMode, modePickItems, targetFor } from './mode';
import { dataFolder } from './paths';
import { ServerCommands, type Mode, type Provider, type ServerStatus } from './protocol';
import type { GoldiffServer } from './server';
import { apiKeySecretName } from './settings';
import { statsMarkdown } from './statsView';

export const CAPTURE_CONSENT_KEY = 'goldiff.captureConsent';

export interface CommandDeps {
  server: GoldiffServer;
  context: host.ExtensionContext;
  log: host.LogOutputChannel;
  refreshStatus(): Promise<ServerStatus | undefined>;
  lastStatus(): ServerStatus | undefined;
  reloadApiKey(): Promise<void>;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class Commands {
  private readonly episodes = new EditEpisodes();

  constructor(private readonly d: CommandDeps) {}

  register(): host.Disposable[] {
    const entries: [string, (...args: unknown[]) => unknown][] = [
      [ServerCommands.accepted, (...args) => this.accepted(args)],
      ['goldiff.toggleModel', () => this.toggleModel()],
      ['goldiff.exportTraces', () => this.exportTraces()],
      ['goldiff.showStats', () => this.showStats()],
      ['goldiff.distill', () => this.distill()],
      ['goldiff.editWithModel', () => this.editWithModel()],
      ['goldiff.setApiKey', () => this.setApiKey()],
      ['goldiff.enableCapture', () => this.setCapture(true)],
      ['goldiff.disableCapture', () => this.setCapture(false)],
      ['goldiff.restartServer', () => this.d.server.restart()],
      ['goldiff.openDataFolder', () => this.openDataFolder()],
      ['goldiff.forgetWorkspace', () => this.forgetWorkspace()],
    ];
    return entries.map(([id, run]) =>
      host.registerCommand(id, async (...args: unknown[]) => {
        try {
          return await run(...args);
        } catch (err) {
          this.d.log.error(`${id}: ${message(err)}`);
          // An acceptance the server missed (it was restarting) is not the user's
          // business at the moment they press Tab; the log keeps it.
          if (id !== ServerCommands.accepted) {
            void host.error(message(err));
          }
          return undefined;
        }
      }),
    );
  }

  /** Run by VS Code when an inline completion is accepted (the item's command). */
  private async accepted(args: unknown[]): Promise<void> {
    await this.d.server.execute(ServerCommands.accepted, args[0]);
    void this.d.refreshStatus();
  }

  private async toggleModel(): Promise<void> {
    const raw = host.getSetting('mode');
    const current: Mode = isMode(raw) ? raw : 'local';
    const chosen = await host.pick(modePickItems(current), `Current: ${current}`, 'Goldiff: Completion Model');
    if (chosen === undefined || chosen.mode === current) {
      return;
    }
    // The setting is the source of truth; its change event sends the new settings.
    await host.updateSetting('mode', chosen.mode, targetFor(host.inspectSetting('mode')));
    await this.d.server.execute(ServerCommands.setMode, { mode: chosen.mode });
    await this.d.refreshStatus();
  }

  private async exportTraces(): Promise<void> {
    const format = await host.pick(formatPickItems(), 'Export format', 'Goldiff: Export Traces');
    if (format === undefined) {
      return;
    }
    const folder = host.workspaceFolderPaths()[0] ?? os.homedir();
    const file = await host.saveDialog(
      path.join(folder, defaultExportName(format.format, new Date())),
      `Goldiff ${format.label}`,
      exportExtension(format.format),
    );
    if (file === undefined) {
      return;
    }
    const result = await host.withProgress(`Goldiff: exporting ${format.label} traces`, true, (_report, token) =>
      this.d.server.execute(ServerCommands.exportTraces, { format: format.format, path: file, filters: {} }, token),
    );
    this.d.log.info(`Exported ${format.format} to ${file}: ${JSON.stringify(result)}`);
    const files = exportedFiles(result, file);
    const open = await host.info(exportMessage(exportedRows(result), files.join(', ')), 'Open');
    if (open === 'Open') {
      await host.openFile(files[0]!);
    }
  }

  private async showStats(): Promise<void> {
    const stats = await this.d.server.execute(ServerCommands.stats);
    await host.showReadOnly('Goldiff Stats.md', statsMarkdown(stats, new Date()), 'markdown');
  }

  private async distill(): Promise<void> {
    const result = await host.withProgress('Goldiff: distilling a local model', true, (report, token) => {
      report('training on the kept completions and edits…');
      return this.d.server.execute(ServerCommands.distill, {}, token);
    });
    const adapter =
      result !== null && typeof result === 'object' ? (result as Record<string, unknown>).adapter : undefined;
    if (typeof adapter === 'string' && adapter !== '') {
      const use = await host.info(`Goldiff distilled a new adapter: ${adapter}`, 'Use It');
      if (use === 'Use It') {
        await host.updateSetting('local.adapter', adapter, targetFor(host.inspectSetting('local.adapter')));
      }
    } else {
      void host.info(`Goldiff distillation finished: ${JSON.stringify(result)}`);
    }
  }

  private async editWithModel(): Promise<void> {
    const selection = host.activeSelection();
    if (selection === undefined || selection.isEmpty) {
      void host.info('Select the code the model should edit, then run "Goldiff: Edit with Model" again.');
      return;
    }
    const episode = this.episodes.followUp(selection.uri, Date.now());
    const instruction = await host.input({
      title: 'Goldiff: Edit with Model',
      prompt:
        episode === undefined
          ? 'What should the model change in the selection?'
          : 'Follow-up instruction (continues the previous edit of this file)',
      placeHolder: 'e.g. handle the empty list case',
    });
    if (instruction === undefined || instruction.trim() === '') {
      return;
    }
    // The server answers with workspace/applyEdit whose change annotations need
    // confirmation, so VS Code shows the proposal as a preview to apply or discard.
    const result = await host.withProgress('Goldiff: asking the model', true, (_report, token) =>
      this.d.server.execute(
        ServerCommands.proposeEdit,
        { uri: selection.uri, range: selection.range, instruction: instruction.trim(), episode },
        token,
      ),
    );
    const next = episodeOf(result) ?? episode;
    if (next !== undefined) {
      this.episodes.remember(selection.uri, next, Date.now());
    }
  }

  private async setApiKey(): Promise<void> {
    const raw = host.getSetting('frontier.provider');
    const provider: Provider = raw === 'anthropic' ? 'anthropic' : 'openai';
    const key = await host.input({
      title: `Goldiff: ${provider} API key`,
      prompt: `API key for ${provider}, kept in VS Code's secret storage (empty to remove it).`,
      password: true,
    });
    if (key === undefined) {
      return;
    }
    const name = apiKeySecretName(provider);
    if (key.trim() === '') {
      await this.d.context.secrets.delete(name);
      void host.info(`Goldiff removed the ${provider} API key.`);
    } else {
      await this.d.context.secrets.store(name, key.trim());
      void host.info(`Goldiff stored the ${provider} API key in secret storage.`);
    }
    // secrets.onDidChange also fires; reloading here makes the command's effect immediate.
    await this.d.reloadApiKey();
    await this.d.server.sendSettings();
  }

  async setCapture(enabled: boolean): Promise<void> {
    await this.d.context.workspaceState.update(CAPTURE_CONSENT_KEY, enabled);
    await this.d.server.sendSettings();
    await this.d.refreshStatus();
    void host.info(
      enabled
        ? `Goldiff is recording this workspace into ${this.dataFolder()}.`
        : 'Goldiff stopped recording this workspace. Recorded data stays until you delete it.',
    );
  }

  /** Asks for the capture opt-in once per workspace, unless the user opted in everywhere. */
  async askForCaptureOnce(): Promise<void> {
    const consent = this.d.context.workspaceState.get<boolean>(CAPTURE_CONSENT_KEY);
    if (!shouldAskForCapture(consent, host.getSetting('capture.enabled'), host.hasWorkspace())) {
      return;
    }
    // "Not now" (or closing the message) is an answer too: the question comes once.
    await this.d.context.workspaceState.update(CAPTURE_CONSENT_KEY, false);
    const answer = await host.info(captureExplanation(this.dataFolder()), ENABLE_CAPTURE, NOT_NOW);
    if (answer === ENABLE_CAPTURE) {
      await this.setCapture(true);
    }
  }

  dataFolder(): string {
    const fromServer = this.d.lastStatus()?.home;
    if (typeof fromServer === 'string' && fromServer !== '') {
      return fromServer;
    }
    return dataFolder(host.getSetting('home'), process.env, process.platform, os.homedir());
  }

  private async openDataFolder(): Promise<void> {
    await host.revealFolder(this.dataFolder());
  }

  private async forgetWorkspace(): Promise<void> {
    const folders = host.workspaceFolderPaths();
    if (folders.length === 0) {
      void host.info('Open a folder first: "Delete Recorded Data" deletes what Goldiff recorded for a workspace.');
      return;
    }
    const ok = await host.confirm(
      'Delete everything Goldiff recorded for this workspace?',
      `Edits, suggestions, outcomes and terminal commands of ${folders.join(', ')} are removed from ${this.dataFolder()}. This cannot be undone.`,
      'Delete',
    );
    if (ok !== 'Delete') {
      return;
    }
    // The store keys workspaces by their file:// URI, as the editor sent them.
    const results: unknown[] = [];
    for (const workspace of host.workspaceFolderUris()) {
      results.push(await this.d.server.execute(ServerCommands.forget, { workspace }));
    }
    this.d.log.info(`Forgot ${folders.join(', ')}: ${JSON.stringify(results)}`);
    void host.info('Goldiff deleted the data it recorded for this workspace.');
    await this.d.refreshStatus();
  }
}
