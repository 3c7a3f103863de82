/**
 * The one module that calls the `vscode` API. Everything else in the extension asks this
 * module for settings, messages, pickers, terminals and the status bar, which keeps the
 * product logic in plain modules that unit tests run without an editor, and makes the
 * extension's whole surface on the editor readable in one file.
 */
import * as vscode from 'vscode';
import type { SettingScopes, SettingTarget } from './mode';
import { PercentSteps } from './progress';

export type Disposable = vscode.Disposable;
export type ExtensionContext = vscode.ExtensionContext;
export type LogOutputChannel = vscode.LogOutputChannel;
export type CancellationToken = vscode.CancellationToken;
export type Uri = vscode.Uri;

const SECTION = 'goldiff';

// ---- settings ------------------------------------------------------------------------

function scopeUri(): vscode.Uri | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri;
}

/** A `goldiff.*` setting as seen from the first workspace folder (resource scope). */
export function getSetting(key: string): unknown {
  return vscode.workspace.getConfiguration(SECTION, scopeUri()).get(key);
}

export function inspectSetting(key: string): SettingScopes | undefined {
  return vscode.workspace.getConfiguration(SECTION, scopeUri()).inspect(key);
}

const TARGETS: Record<SettingTarget, vscode.ConfigurationTarget> = {
  global: vscode.ConfigurationTarget.Global,
  workspace: vscode.ConfigurationTarget.Workspace,
  workspaceFolder: vscode.ConfigurationTarget.WorkspaceFolder,
};

export async function updateSetting(key: string, value: unknown, target: SettingTarget): Promise<void> {
  const effective = target !== 'global' && !hasWorkspace() ? 'global' : target;
  await vscode.workspace.getConfiguration(SECTION, scopeUri()).update(key, value, TARGETS[effective]);
}

export function onDidChangeSettings(listener: () => void): vscode.Disposable {
  return vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration(SECTION)) {
      listener();
    }
  });
}

export function openSettings(query: string): Thenable<unknown> {
  return vscode.commands.executeCommand('workbench.action.openSettings', query);
}

// ---- workspace -----------------------------------------------------------------------

export function hasWorkspace(): boolean {
  return (vscode.workspace.workspaceFolders?.length ?? 0) > 0;
}

export function workspaceFolderPaths(): string[] {
  return (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
}

export function workspaceFolderUris(): string[] {
  return (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.toString());
}

export function fileUri(fsPath: string): vscode.Uri {
  return vscode.Uri.file(fsPath);
}

export interface EditorSelection {
  uri: string;
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
  isEmpty: boolean;
}

export function activeSelection(): EditorSelection | undefined {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined) {
    return undefined;
  }
  const s = editor.selection;
  return {
    uri: editor.document.uri.toString(),
    range: {
      start: { line: s.start.line, character: s.start.character },
      end: { line: s.end.line, character: s.end.character },
    },
    isEmpty: s.isEmpty,
  };
}

// ---- messages and pickers ------------------------------------------------------------

export function info<T extends string>(message: string, ...actions: T[]): Thenable<T | undefined> {
  return vscode.window.showInformationMessage(message, ...actions);
}

export function warn<T extends string>(message: string, ...actions: T[]): Thenable<T | undefined> {
  return vscode.window.showWarningMessage(message, ...actions);
}

export function error<T extends string>(message: string, ...actions: T[]): Thenable<T | undefined> {
  return vscode.window.showErrorMessage(message, ...actions);
}

/** A modal question; resolves to the chosen action or undefined on Cancel. */
export function confirm<T extends string>(message: string, detail: string, ...actions: T[]): Thenable<T | undefined> {
  return vscode.window.showWarningMessage(message, { modal: true, detail }, ...actions);
}

export interface PickItem {
  label: string;
  description?: string;
  detail?: string;
}

export function pick<T extends PickItem>(items: T[], placeHolder: string, title: string): Thenable<T | undefined> {
  return vscode.window.showQuickPick(items, { placeHolder, title, matchOnDetail: true });
}

export function input(options: {
  title: string;
  prompt: string;
  placeHolder?: string;
  password?: boolean;
  value?: string;
  /** The reason the text cannot be accepted, shown under the box; undefined when it can. */
  validate?: (text: string) => string | undefined;
}): Thenable<string | undefined> {
  const { validate, ...rest } = options;
  return vscode.window.showInputBox({ ...rest, ignoreFocusOut: true, validateInput: validate });
}

export async function saveDialog(defaultPath: string, filterName: string, ext: string): Promise<string | undefined> {
  const uri = await vscode.window.showSaveDialog({
    defaultUri: vscode.Uri.file(defaultPath),
    filters: { [filterName]: [ext] },
    title: 'Export Goldiff traces',
    saveLabel: 'Export',
  });
  return uri?.fsPath;
}

/** A cancellable notification with progress while `task` runs. */
export function withProgress<R>(
  title: string,
  cancellable: boolean,
  task: (report: (message: string) => void, token: vscode.CancellationToken) => Thenable<R>,
): Thenable<R> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title, cancellable },
    (progress, token) => task((message) => progress.report({ message }), token),
  );
}

/**
 * A cancellable notification whose bar follows the percentages `task` reports (absolute,
 * 0-100, as work-done progress carries them).
 */
export function withPercentProgress<R>(
  title: string,
  task: (report: (message: string | undefined, percent: number | undefined) => void, token: vscode.CancellationToken) => Thenable<R>,
): Thenable<R> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, token) => {
    const steps = new PercentSteps();
    return task((message, percent) => progress.report({ message, increment: steps.step(percent) }), token);
  });
}

// Read-only documents Goldiff shows (the stats). A scheme of our own keeps them out of
// the language client's document selector, so the server never records its own reports.
const READONLY_SCHEME = 'goldiff';
const readonlyContents = new Map<string, string>();
const readonlyChanged = new vscode.EventEmitter<vscode.Uri>();
let readonlyProvider: vscode.Disposable | undefined;

/** The URI of a read-only document named `name` holding `content` (registered on first use). */
function readOnlyUri(name: string, content: string): vscode.Uri {
  readonlyProvider ??= vscode.workspace.registerTextDocumentContentProvider(READONLY_SCHEME, {
    onDidChange: readonlyChanged.event,
    provideTextDocumentContent: (uri) => readonlyContents.get(uri.path) ?? '',
  });
  const uri = vscode.Uri.from({ scheme: READONLY_SCHEME, path: name });
  readonlyContents.set(uri.path, content);
  readonlyChanged.fire(uri);
  return uri;
}

export async function showReadOnly(name: string, content: string, language: string): Promise<void> {
  const uri = readOnlyUri(name, content);
  const doc = await vscode.workspace.openTextDocument(uri);
  await vscode.window.showTextDocument(await vscode.languages.setTextDocumentLanguage(doc, language), {
    preview: true,
  });
}

/** Markdown Goldiff wrote, rendered in the preview (the source stays read-only). */
export async function showMarkdown(name: string, content: string): Promise<void> {
  await showReadOnly(name, content, 'markdown');
  const uri = vscode.Uri.from({ scheme: READONLY_SCHEME, path: name });
  try {
    await vscode.commands.executeCommand('markdown.showPreview', uri);
  } catch {
    // Without the built-in markdown extension the source view stays: still readable.
  }
}

// The text the store rebuilt for a file, on the left of a diff with the file. Its own
// scheme keeps it read-only and out of the language client's selector (never recorded).
const RECORDED_SCHEME = 'goldiff-recorded';
const recordedContents = new Map<string, string>();
const recordedOriginals = new Map<string, vscode.Uri>();
const recordedChanged = new vscode.EventEmitter<vscode.Uri>();
let recordedProvider: vscode.Disposable | undefined;

/** A diff: `recorded` (read-only) on the left, the file `fileUri` as it is now on the right. */
export async function showRecordedDiff(fileUri: string, recorded: string, title: string): Promise<void> {
  recordedProvider ??= vscode.workspace.registerTextDocumentContentProvider(RECORDED_SCHEME, {
    onDidChange: recordedChanged.event,
    provideTextDocumentContent: (uri) => recordedContents.get(uri.toString()) ?? '',
  });
  const file = vscode.Uri.parse(fileUri);
  // The file's own path, so the left side gets its language and its name in the tab.
  const left = vscode.Uri.from({ scheme: RECORDED_SCHEME, path: file.path, query: 'recorded' });
  recordedContents.set(left.toString(), recorded);
  recordedOriginals.set(left.toString(), file);
  recordedChanged.fire(left);
  await vscode.commands.executeCommand('vscode.diff', left, file, title, { preview: false });
}

export interface ActiveDocument {
  /** The URI as the language client sends it (`file:///…`). */
  uri: string;
  fileName: string;
  languageId: string;
}

/**
 * The file in the active editor. From a diff Goldiff opened, the file it compares (so the
 * command run again on its own diff shows the same file).
 */
export function activeDocument(): ActiveDocument | undefined {
  const doc = vscode.window.activeTextEditor?.document;
  if (doc === undefined) {
    return undefined;
  }
  const uri = doc.uri.scheme === RECORDED_SCHEME ? recordedOriginals.get(doc.uri.toString()) : doc.uri;
  if (uri === undefined) {
    return undefined;
  }
  return { uri: uri.toString(), fileName: uri.path.split('/').pop() ?? uri.path, languageId: doc.languageId };
}

/** Markdown Goldiff wrote, rendered in a preview beside the active editor. */
export async function showMarkdownBeside(name: string, content: string): Promise<void> {
  const uri = readOnlyUri(name, content);
  const doc = await vscode.workspace.openTextDocument(uri);
  try {
    await vscode.commands.executeCommand('markdown.showPreviewToSide', uri);
  } catch {
    // Without the built-in markdown extension the source is shown instead: still readable.
    await vscode.window.showTextDocument(await vscode.languages.setTextDocumentLanguage(doc, 'markdown'), {
      viewColumn: vscode.ViewColumn.Beside,
      preview: true,
    });
  }
}

/** Shows a file selected in the OS file manager (on a remote, in the Explorer). */
export async function revealFile(fsPath: string): Promise<void> {
  const uri = vscode.Uri.file(fsPath);
  if (vscode.env.uiKind === vscode.UIKind.Desktop && vscode.env.remoteName === undefined) {
    await vscode.commands.executeCommand('revealFileInOS', uri);
  } else {
    await vscode.commands.executeCommand('revealInExplorer', uri);
  }
}

export async function openFile(fsPath: string): Promise<void> {
  await vscode.commands.executeCommand('vscode.open', vscode.Uri.file(fsPath));
}

/** Shows a folder: the OS file manager on a local desktop, else a new window on it. */
export async function revealFolder(fsPath: string): Promise<void> {
  const uri = vscode.Uri.file(fsPath);
  if (vscode.env.uiKind === vscode.UIKind.Desktop && vscode.env.remoteName === undefined) {
    await vscode.commands.executeCommand('revealFileInOS', uri);
  } else {
    await vscode.commands.executeCommand('vscode.openFolder', uri, { forceNewWindow: true });
  }
}

export function copyToClipboard(text: string): Thenable<void> {
  return vscode.env.clipboard.writeText(text);
}

/** Runs a program in a new integrated terminal, so its progress and result stay visible. */
export function runInTerminal(name: string, program: string, args: string[]): void {
  const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  const terminal = vscode.window.createTerminal({ name });
  terminal.show();
  terminal.sendText([program, ...args].map(quote).join(' '));
}

export async function openFileDialog(title: string, filterName: string, ext: string): Promise<string | undefined> {
  const uris = await vscode.window.showOpenDialog({
    title,
    canSelectMany: false,
    canSelectFiles: true,
    filters: { [filterName]: [ext] },
  });
  return uris?.[0]?.fsPath;
}

/** Asks the editor for an inline completion at the cursor now. */
export function triggerInlineCompletion(): Thenable<unknown> {
  return vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
}

export function createLog(name: string): vscode.LogOutputChannel {
  return vscode.window.createOutputChannel(name, { log: true });
}

// ---- commands ------------------------------------------------------------------------

export function registerCommand(id: string, run: (...args: unknown[]) => unknown): vscode.Disposable {
  return vscode.commands.registerCommand(id, run);
}

export function executeCommand(id: string, ...args: unknown[]): Thenable<unknown> {
  return vscode.commands.executeCommand(id, ...args);
}

export function setContext(key: string, value: unknown): Thenable<unknown> {
  return vscode.commands.executeCommand('setContext', key, value);
}

// ---- status bar ----------------------------------------------------------------------

export interface StatusItem extends vscode.Disposable {
  set(text: string, tooltip: string, warning: boolean, command: string, label?: string): void;
}

export function createStatusItem(id: string, name: string): StatusItem {
  const item = vscode.window.createStatusBarItem(id, vscode.StatusBarAlignment.Right, 100);
  item.name = name;
  item.show();
  return {
    set(text, tooltip, warning, command, label): void {
      item.text = text;
      item.tooltip = tooltip;
      item.command = command;
      item.accessibilityInformation = { label: `${name}: ${label ?? text.replace(/\$\([^)]*\)\s*/g, '')}` };
      item.backgroundColor = warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    },
    dispose(): void {
      item.dispose();
    },
  };
}

// ---- terminals -----------------------------------------------------------------------

export interface ShellExecutionStart {
  execution: object;
  terminalName: string;
  commandLine: string;
  cwd: string | undefined;
  read(): AsyncIterable<string>;
}

export interface ShellExecutionEnd {
  execution: object;
  commandLine: string;
  cwd: string | undefined;
  exitCode: number | undefined;
}

export interface TerminalEvents {
  /** False on VS Code builds without the shell-integration API. */
  supported: boolean;
  onStart(listener: (e: ShellExecutionStart) => void): vscode.Disposable;
  onEnd(listener: (e: ShellExecutionEnd) => void): vscode.Disposable;
  onOpen(listener: (terminal: object, name: string) => void): vscode.Disposable;
  onIntegration(listener: (terminal: object) => void): vscode.Disposable;
  onClose(listener: (terminal: object) => void): vscode.Disposable;
  hasIntegration(terminal: object): boolean;
  openTerminals(): { terminal: object; name: string }[];
}

export function terminalEvents(): TerminalEvents {
  const w = vscode.window;
  const supported = typeof w.onDidStartTerminalShellExecution === 'function';
  const none = new vscode.Disposable(() => undefined);
  return {
    supported,
    onStart: (listener) =>
      supported
        ? w.onDidStartTerminalShellExecution((e) =>
            listener({
              execution: e.execution,
              terminalName: e.terminal.name,
              commandLine: e.execution.commandLine.value,
              cwd: e.execution.cwd?.fsPath,
              read: () => e.execution.read(),
            }),
          )
        : none,
    onEnd: (listener) =>
      supported
        ? w.onDidEndTerminalShellExecution((e) =>
            listener({
              execution: e.execution,
              commandLine: e.execution.commandLine.value,
              cwd: e.execution.cwd?.fsPath,
              exitCode: e.exitCode,
            }),
          )
        : none,
    onOpen: (listener) => w.onDidOpenTerminal((t) => listener(t, t.name)),
    onIntegration: (listener) =>
      supported ? w.onDidChangeTerminalShellIntegration((e) => listener(e.terminal)) : none,
    onClose: (listener) => w.onDidCloseTerminal((t) => listener(t)),
    hasIntegration: (t) => (t as vscode.Terminal).shellIntegration !== undefined,
    openTerminals: () => w.terminals.map((t) => ({ terminal: t, name: t.name })),
  };
}

// ---- other extensions ----------------------------------------------------------------

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { path: string } | undefined;
    resolveEnvironment?(
      env: { path: string } | string,
    ): Promise<{ executable?: { uri?: vscode.Uri } } | undefined>;
  };
}

/** The interpreter selected in the Python extension, if that extension is installed. */
export async function pythonExtensionInterpreter(): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension<PythonExtensionApi>('ms-python.python');
  if (ext === undefined) {
    return undefined;
  }
  try {
    const api = ext.isActive ? ext.exports : await ext.activate();
    const envPath = api.environments?.getActiveEnvironmentPath(scopeUri());
    if (envPath === undefined) {
      return undefined;
    }
    const resolved = await api.environments?.resolveEnvironment?.(envPath);
    return resolved?.executable?.uri?.fsPath ?? envPath.path;
  } catch {
    // A broken Python extension must not keep Goldiff from starting with the next choice.
    return undefined;
  }
}
