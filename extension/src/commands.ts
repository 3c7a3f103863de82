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
  dateProblem,
  defaultExportName,
  emptyExport,
  EXPORT_EVERYTHING,
  exportedFiles,
  exportedRows,
  exportExtension,
  exportMessage,
  filtersFor,
  formatPickItems,
  OPEN,
  REVEAL,
  scopeItems,
  sinceItems,
  START_RECORDING,
  type ExportFilters,
} from './exportTraces';
import { compareMarkdown, compareTargets } from './compareView';
import { parseRecorded, recordedDiffTitle, recordedMarkdown, serverMessage } from './recordedView';
import { progressText } from './progress';
import { asksForChecksum, describeDownload, DOWNLOAD, HUB_EXAMPLE, isRemote, pullMessage, PULL_CANCELLED, pullSourceProblem, sha256Problem } from './pull';
import { bundledWheel, type SetupSystem } from './setup';
import { CPU_INDEX, INSTALL_TRAIN, manualTrainInstall, parseTrainProbe, reachable, TRAIN_PROBE, trainInstall } from './trainExtra';
import { isMode, modePickItems, targetFor } from './mode';
import { dataFolder } from './paths';
import { ServerCommands, type Mode, type Provider, type ServerStatus } from './protocol';
import type { GoldiffServer } from './server';
import { apiKeySecretName } from './settings';
import { statsMarkdown } from './statsView';
import { Cancelled } from './cancel';
import { SNOOZE_MINUTES, Snooze, triggerMode } from './control';
import { distillOutcome, evaluateArgs, EVALUATE, keptBaseMessage, USE_IT } from './distill';
import { menuItems, snoozeItems } from './menu';
import { modelPickItems, type ModelsAnswer } from './models';
import { answeringModel, captureEnabled, type ClientState } from './status';

export const CAPTURE_CONSENT_KEY = 'goldiff.captureConsent';

export interface CommandDeps {
  server: GoldiffServer;
  context: host.ExtensionContext;
  log: host.LogOutputChannel;
  refreshStatus(): Promise<ServerStatus | undefined>;
  lastStatus(): ServerStatus | undefined;
  reloadApiKey(): Promise<void>;
  snooze: Snooze;
  clientState(): ClientState;
  /** Redraws the status bar from what the client knows (after a snooze). */
  render(): void;
  /** Offers to set up Goldiff's own server environment (first run). */
  setUpServer(): Promise<void>;
  /** Runs programs (pip, probes) in the server's interpreter. */
  system: SetupSystem;
  /** Where the extension lies (its bundled wheel). */
  extensionDir: string;
}

function message(err: unknown): string {
  return serverMessage(err instanceof Error ? err.message : String(err));
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
      ['goldiff.statusMenu', () => this.statusMenu()],
      ['goldiff.pickModel', () => this.pickModel()],
      ['goldiff.snooze', (minutes) => this.snoozeFor(minutes)],
      ['goldiff.resume', () => this.resume()],
      ['goldiff.triggerCompletion', () => this.triggerCompletion()],
      ['goldiff.showLog', () => this.d.log.show()],
      ['goldiff.doctor', () => this.runCli('Goldiff Doctor', ['-m', 'goldiff', 'doctor'])],
      ['goldiff.setUpServer', () => this.d.setUpServer()],
      ['goldiff.downloadModel', () => this.downloadModel()],
      ['goldiff.compareModels', () => this.compareModels()],
      ['goldiff.showRecorded', () => this.showRecorded()],
    ];
    return entries.map(([id, run]) =>
      host.registerCommand(id, async (...args: unknown[]) => {
        try {
          return await run(...args);
        } catch (err) {
          if (err instanceof Cancelled) {
            this.d.log.info(`${id}: cancelled`);
            return undefined;
          }
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
    const scope = await host.pick(
      scopeItems(host.workspaceFolderUris(), host.workspaceFolderPaths().map((p) => path.basename(p))),
      'Which workspace’s data',
      'Goldiff: Export Traces',
    );
    if (scope === undefined) {
      return;
    }
    const period = await host.pick(sinceItems(new Date()), 'Recorded since', 'Goldiff: Export Traces');
    if (period === undefined) {
      return;
    }
    let since = period.since;
    if (period.ask === true) {
      since = (
        await host.input({ title: 'Goldiff: Export Traces', prompt: 'Only data recorded from this date on (UTC)', placeHolder: 'YYYY-MM-DD', validate: dateProblem })
      )?.trim();
      if (since === undefined) {
        return;
      }
    }
    // The data folder's exports/ by default: where `goldiff export` writes too.
    const file = await host.saveDialog(
      path.join(this.dataFolder(), 'exports', defaultExportName(format.format, new Date())),
      `Goldiff ${format.label}`,
      exportExtension(format.format),
    );
    if (file === undefined) {
      return;
    }
    await this.runExport(format.format, format.label, file, filtersFor(scope, since));
  }

  private async runExport(format: string, label: string, file: string, filters: ExportFilters): Promise<void> {
    const result = await host.withPercentProgress(`Goldiff: exporting ${label} traces`, (report, token) =>
      this.d.server.executeWithProgress(
        ServerCommands.exportTraces,
        { format, path: file, filters },
        (value) => report(progressText(value), value.percentage),
        token,
      ),
    );
    this.d.log.info(`Exported ${format} to ${file}: ${JSON.stringify(result)}`);
    const rows = exportedRows(result);
    if (rows === 0) {
      const empty = emptyExport(result, filters, captureEnabled(this.d.lastStatus()));
      const choice = await host.warn(empty.message, ...empty.actions);
      if (choice === EXPORT_EVERYTHING) {
        await this.runExport(format, label, file, {});
      } else if (choice === START_RECORDING) {
        await this.setCapture(true);
      }
      return;
    }
    const files = exportedFiles(result, file);
    const choice = await host.info(exportMessage(rows, files.join(', ')), REVEAL, OPEN);
    if (choice === REVEAL) {
      await host.revealFile(files[0]!);
    } else if (choice === OPEN) {
      await host.openFile(files[0]!);
    }
  }

  private async showStats(): Promise<void> {
    const stats = await this.d.server.execute(ServerCommands.stats);
    await host.showReadOnly('Goldiff Stats.md', statsMarkdown(stats, new Date()), 'markdown');
  }

  private async distill(): Promise<void> {
    if (!(await this.ensureTrainExtra())) {
      return;
    }
    const started = Date.now();
    const result = await host.withProgress('Goldiff: distilling a local model', true, (report, token) => {
      report('exporting the gold, fine-tuning, converting to GGUF (minutes; Cancel stops it)…');
      return this.d.server.execute(ServerCommands.distill, {}, token);
    });
    this.d.log.info(`Distilled in ${Math.round((Date.now() - started) / 1000)} s: ${JSON.stringify(result)}`);
    const outcome = distillOutcome(result);
    const kept = keptBaseMessage(result);
    if (kept !== undefined) {
      void host.info(kept);
      return;
    }
    if (outcome === undefined) {
      void host.info(`Goldiff distillation finished: ${JSON.stringify(result)}`);
      return;
    }
    const choice = await host.info(outcome.message, USE_IT, EVALUATE);
    if (choice === USE_IT) {
      await this.useModel(outcome.name);
    } else if (choice === EVALUATE) {
      this.runCli('Goldiff Eval', evaluateArgs(outcome.name));
    }
  }

  /**
   * Whether the server's interpreter can train; when it cannot, offers to install the
   * `train` extra (size and time said first) and answers whether it now can.
   */
  private async ensureTrainExtra(): Promise<boolean> {
    const python = this.d.server.pythonCommand;
    if (python === undefined) {
      return true; // the server says what is wrong when it is asked to distill
    }
    const r = await this.d.system.run(python, ['-c', TRAIN_PROBE]);
    const probe = parseTrainProbe(r.code, r.stdout);
    if (probe === undefined || probe.missing.length === 0) {
      return true;
    }
    this.d.log.info(`Distill Now: the training extra is missing (${probe.missing.join(', ')})`);
    const checkout = probe.root !== undefined && this.d.system.exists(path.join(probe.root, 'pyproject.toml')) ? probe.root : undefined;
    const cpuIndex = process.platform === 'darwin' || (await reachable(CPU_INDEX));
    if (!cpuIndex) {
      this.d.log.info(`Distill Now: ${CPU_INDEX} does not answer; pip installs from its configured indexes`);
    }
    const plan = trainInstall(process.platform, bundledWheel(this.d.system, this.d.extensionDir), checkout, cpuIndex);
    if (plan === undefined) {
      void host.error(manualTrainInstall(probe.missing));
      return false;
    }
    const answer = await host.confirm('Install Goldiff’s training extra?', plan.warning, INSTALL_TRAIN);
    if (answer !== INSTALL_TRAIN) {
      return false;
    }
    // Not cancellable: pip stopped half-way leaves an environment worse than before.
    const done = await host.withProgress('Goldiff: installing the training extra', false, async (report) => {
      report('downloading PyTorch, transformers, peft and trl (about 1 GB; the Goldiff output shows pip)…');
      this.d.log.info(`$ ${python} ${plan.args.join(' ')}`);
      return this.d.system.run(python, plan.args, (line) => this.d.log.info(line));
    });
    if (done.code !== 0) {
      const last = done.stderr.trim().split(/\r?\n/).pop() ?? done.spawnError ?? `exit code ${String(done.code)}`;
      void host.error(`Installing the training extra failed: ${last}. The Goldiff output has pip's whole log.`);
      return false;
    }
    void host.info('Goldiff’s training extra is installed; distilling now.');
    return true;
  }

  /** Local mode with this model: the setting wins over the registry's default. */
  async useModel(name: string): Promise<void> {
    await host.updateSetting('local.model', name, targetFor(host.inspectSetting('local.model')));
    // An adapter set for another base would be loaded on top of the new model.
    if (host.getSetting('local.adapter')) {
      await host.updateSetting('local.adapter', '', targetFor(host.inspectSetting('local.adapter')));
    }
    if (host.getSetting('mode') !== 'local') {
      await host.updateSetting('mode', 'local', targetFor(host.inspectSetting('mode')));
    }
    await this.d.server.sendSettings();
    await this.d.refreshStatus();
    void host.info(`Goldiff completes with ${name === '' ? 'the registry default' : name} now (local mode).`);
  }

  private runCli(name: string, args: string[]): void {
    const python = this.d.server.pythonCommand;
    if (python === undefined) {
      void host.error('Goldiff has no working Python interpreter yet: run "Goldiff: Set Up Server" first.');
      return;
    }
    host.runInTerminal(name, python, args);
  }

  private async statusMenu(): Promise<void> {
    const status = this.d.lastStatus();
    const items = menuItems({
      state: this.d.clientState(),
      mode: status?.mode ?? (isMode(host.getSetting('mode')) ? (host.getSetting('mode') as string) : 'local'),
      model: answeringModel(status),
      recording: captureEnabled(status),
      snoozedUntil: this.d.snooze.active(Date.now()),
      manual: triggerMode(host.getSetting('trigger')) === 'manual',
      now: Date.now(),
    });
    const chosen = await host.pick(items, 'Goldiff', 'Goldiff');
    if (chosen !== undefined) {
      await host.executeCommand(chosen.command);
    }
  }

  private async pickModel(): Promise<void> {
    const answer = await this.d.server.execute(ServerCommands.models);
    const setting = typeof host.getSetting('local.model') === 'string' ? String(host.getSetting('local.model')) : '';
    const chosen = await host.pick(
      modelPickItems(answer, setting),
      'The local model (goldiff.local.model wins over `goldiff models use`)',
      'Goldiff: Local Model',
    );
    if (chosen === undefined) {
      return;
    }
    if (chosen.download === true) {
      await this.downloadModel();
      return;
    }
    if (chosen.addFile === true) {
      const file = await host.openFileDialog('Goldiff: add a GGUF model', 'GGUF model', 'gguf');
      if (file !== undefined) {
        await this.useModel(file);
      }
      return;
    }
    await this.useModel(chosen.value ?? '');
  }

  /** "Download…": a GGUF from the hub, a URL or a file, into the registry. */
  private async downloadModel(): Promise<void> {
    const FROM_FILE = '$(file) A GGUF file on this machine…';
    const FROM_URL = '$(cloud-download) From the hub or a URL…';
    const how = await host.pick(
      [
        { label: FROM_URL, detail: `${HUB_EXAMPLE} or https://…/model.gguf; resumes if interrupted, SHA-256 checked.` },
        { label: FROM_FILE, detail: 'Copied into Goldiff’s models folder and registered.' },
      ],
      'Where is the model?',
      'Goldiff: Download Model',
    );
    if (how === undefined) {
      return;
    }
    let source: string | undefined;
    if (how.label === FROM_FILE) {
      source = await host.openFileDialog('Goldiff: a GGUF model to add', 'GGUF model', 'gguf');
    } else {
      source = (
        await host.input({ title: 'Goldiff: Download Model', prompt: 'The model file', placeHolder: HUB_EXAMPLE, validate: pullSourceProblem })
      )?.trim();
    }
    if (source === undefined || source === '') {
      return;
    }
    let sha256: string | undefined;
    if (isRemote(source)) {
      // Size, licence and checksum before a byte is fetched.
      const described = await this.d.server.execute(ServerCommands.pullModel, { source, describe: true });
      const about = describeDownload(described);
      if ((await host.confirm(about.message, about.detail, DOWNLOAD)) !== DOWNLOAD) {
        return;
      }
      if (asksForChecksum(source, described)) {
        sha256 = await this.askChecksum();
        if (sha256 === undefined) {
          return;
        }
      }
    }
    let answer: unknown;
    try {
      answer = await host.withPercentProgress('Goldiff: downloading a model', (report, token) =>
        this.d.server.executeWithProgress(
          ServerCommands.pullModel,
          { source, ...(sha256 ? { sha256 } : {}) },
          (value) => report(progressText(value), value.percentage),
          token,
        ),
      );
    } catch (err) {
      if (err instanceof Cancelled) {
        void host.info(PULL_CANCELLED);
        return;
      }
      throw err;
    }
    this.d.log.info(`Downloaded ${source}: ${JSON.stringify(answer)}`);
    const name = (answer as { name?: unknown } | undefined)?.name;
    const choice = await host.info(pullMessage(answer), USE_IT);
    if (choice === USE_IT && typeof name === 'string') {
      await this.useModel(name);
    }
  }

  private async askChecksum(): Promise<string | undefined> {
    return (
      await host.input({
        title: 'Goldiff: Download Model',
        prompt: 'Its SHA-256, from the page you got the URL from (empty: record the checksum without verifying it)',
        validate: sha256Problem,
      })
    )?.trim();
  }

  /** The current local model beside another (or the frontier) on recent held-out gold. */
  private async compareModels(): Promise<void> {
    const answer = await this.d.server.execute<ModelsAnswer>(ServerCommands.models);
    const setting = host.getSetting('local.model');
    const current = typeof setting === 'string' && setting !== '' ? setting : (answer?.default ?? undefined);
    if (current === undefined || current === null) {
      void host.info('Goldiff has no local model to compare yet: choose one with "Goldiff: Choose Local Model".');
      return;
    }
    const target = await host.pick(compareTargets(answer, current), `Compare ${current} with…`, 'Goldiff: Compare Models');
    if (target === undefined) {
      return;
    }
    const result = await host.withProgress(`Goldiff: comparing ${current} with ${target.other}`, true, (report, token) => {
      report('running both on your newest held-out completions (a minute or more; Cancel stops it)…');
      return this.d.server.execute(ServerCommands.compare, { current, other: target.other, limit: 200 }, token);
    });
    this.d.log.info(`Compared ${current} with ${target.other}: ${JSON.stringify(result).slice(0, 2000)}`);
    await host.showMarkdown('Goldiff Compare.md', compareMarkdown(result, new Date()));
  }

  /** The open file as the store holds it, in a diff with the file, and its newest suggestions. */
  private async showRecorded(): Promise<void> {
    const doc = host.activeDocument();
    if (doc === undefined) {
      void host.info('Open a file first: "Show What Was Recorded" shows what Goldiff recorded of the file in the editor.');
      return;
    }
    const raw = await this.d.server.execute(ServerCommands.recorded, { uri: doc.uri, limit: 20 });
    const answer = parseRecorded(raw);
    if (answer === undefined) {
      throw new Error(`The Goldiff server gave no recorded text for ${doc.fileName}.`);
    }
    this.d.log.info(`Recorded for ${doc.uri}: version ${String(answer.version)}, verified ${String(answer.verified)}, ${answer.suggestions.length} suggestions`);
    await host.showRecordedDiff(doc.uri, answer.text, recordedDiffTitle(doc.fileName, answer));
    await host.showMarkdownBeside('Goldiff Recorded.md', recordedMarkdown(answer, doc.fileName, doc.languageId));
  }

  private async snoozeFor(minutes: unknown): Promise<void> {
    let m = typeof minutes === 'number' && minutes > 0 ? minutes : undefined;
    if (m === undefined) {
      const chosen = await host.pick(snoozeItems(SNOOZE_MINUTES), 'No completions for…', 'Goldiff: Snooze');
      if (chosen === undefined) {
        return;
      }
      m = chosen.minutes;
    }
    const until = this.d.snooze.snooze(m, Date.now());
    this.d.render();
    // Redraw when it ends, so the item does not keep saying "snoozed".
    setTimeout(() => this.d.render(), until - Date.now() + 500);
    void host.info(`Goldiff completions are snoozed for ${m} minutes. Recording is not affected.`);
  }

  private resume(): void {
    this.d.snooze.resume();
    this.d.render();
  }

  private async triggerCompletion(): Promise<void> {
    await host.triggerInlineCompletion();
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
