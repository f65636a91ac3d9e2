// Starts, restarts and stops the tether language server, and wires its
// requests and notifications into the extension (approvals, updates, messages).

import * as os from 'os';
import * as vscode from 'vscode';
import {
  ApplyWorkspaceEditParams,
  ApplyWorkspaceEditRequest,
  ApplyWorkspaceEditResult,
  LanguageClient,
  LanguageClientOptions,
  MessageType,
  RevealOutputChannelOn,
  ServerOptions,
  ShowMessageNotification,
  ShowMessageRequest,
  ShowMessageRequestParams,
  State,
  TransportKind,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
} from 'vscode-languageclient/node';
import { documentsToSave, LspWorkspaceEdit, versionMismatch } from './agentEdits';
import { ActionItem, approvalDialog, approvalIdOf, isApprovalRequest, KnownApproval, replyFor } from './approval';
import { initializationOptions, missingBinaryMessage, resolveBinary } from './settings';
import { Update } from './transcript';

export interface ServerEvents {
  onUpdate(u: Update): void;
  onMessage(type: MessageType, message: string): void;
  onApprovalDialog(open: boolean): void;
  onStateChange(state: 'starting' | 'running' | 'stopped' | 'missing', detail?: string): void;
  /** `$/progress` of one server-created token ("thinking", "running `make`", …); `done` at the end. */
  onProgress(token: string, p: { title?: string; message?: string; done?: boolean }): void;
}

export class TetherServer implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<void> | undefined;
  /** What `tether/update` said about approvals, by id (the dialog shows it). */
  private approvals = new Map<string, KnownApproval>();
  /** Edits from the server are applied one after the other, in order. */
  private edits: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly output: vscode.OutputChannel,
    private readonly events: ServerEvents,
  ) {}

  get running(): LanguageClient | undefined {
    return this.client && this.client.state === State.Running ? this.client : undefined;
  }

  /** The running client, starting it first if needed (undefined: could not start). */
  async ensure(): Promise<LanguageClient | undefined> {
    if (this.running) return this.client;
    if (!this.starting) this.starting = this.start().finally(() => (this.starting = undefined));
    await this.starting;
    return this.running;
  }

  async start(): Promise<void> {
    const config = vscode.workspace.getConfiguration('tether');
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const bin = resolveBinary(config.get('path'), process.env, os.homedir(), folder);
    if (!bin.command) {
      const msg = missingBinaryMessage(config.get('path'), bin);
      this.output.appendLine(msg);
      this.events.onStateChange('missing', msg);
      void vscode.window.showErrorMessage(msg, 'Open Settings', 'Show Output').then((choice) => {
        if (choice === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'tether.path');
        if (choice === 'Show Output') this.output.show(true);
      });
      return;
    }
    const initOptions = initializationOptions((k) => config.get(k));
    this.output.appendLine(`Starting ${bin.command} (initializationOptions: ${JSON.stringify(initOptions)})`);
    const serverOptions: ServerOptions = {
      command: bin.command,
      transport: TransportKind.stdio,
      options: { cwd: folder, env: process.env },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      initializationOptions: initOptions,
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationFailedHandler: (error) => {
        const msg = `Tether: the server failed to initialize: ${error instanceof Error ? error.message : String(error)}`;
        this.output.appendLine(msg);
        void vscode.window.showErrorMessage(msg, 'Show Output').then((c) => c && this.output.show(true));
        return false;
      },
    };
    const client = new LanguageClient('tether', 'Tether', serverOptions, clientOptions);
    this.client = client;
    // Tells the server that this client shows `tether/update` (docs/PROTOCOL.md):
    // without it, `tether.ask` turns are also written into a transcript file.
    client.registerFeature({
      fillClientCapabilities: (caps) => {
        // savesAgentEdits: an agent edit into a clean document is saved (agentEdits.ts).
        caps.experimental = { ...(caps.experimental ?? {}), tether: { updates: true, savesAgentEdits: true } };
      },
      initialize: () => {},
      getState: () => ({ kind: 'static' }),
      clear: () => {},
    });
    // Registered before start(): the client installs these after its own
    // defaults, so Tether's approvals get a modal dialog instead of a toast.
    client.onRequest(ShowMessageRequest.type, (params) => this.showMessageRequest(params));
    // Agent edits: applied, then saved when the document was clean before.
    client.onRequest(ApplyWorkspaceEditRequest.type, (params) => {
      const done = this.edits.then(() => this.applyEdit(client, params));
      this.edits = done.catch(() => undefined);
      return done;
    });
    client.onNotification(ShowMessageNotification.type, (params) => {
      this.defaultShowMessage(params.type, params.message);
      this.events.onMessage(params.type, params.message);
    });
    client.onNotification('tether/update', (u: Update) => {
      if (u.kind === 'approval') {
        if (u.status === 'asked') {
          this.approvals.set(u.approvalId, {
            approvalId: u.approvalId,
            command: u.command,
            reason: u.reason,
            agent: u.agent,
            sessionId: u.sessionId,
          });
        } else {
          this.approvals.delete(u.approvalId);
        }
      }
      this.events.onUpdate(u);
    });
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) this.events.onStateChange('running');
      else if (e.newState === State.Starting) this.events.onStateChange('starting');
      else this.events.onStateChange('stopped');
    });
    this.events.onStateChange('starting');
    try {
      await client.start();
      // The server's work-done progress goes to Tether's own status bar item
      // (instead of the client's generic window progress): replaces the
      // handler the client installed while starting.
      client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
        const key = String(token);
        const sub = client.onProgress(WorkDoneProgress.type, token, (v) => {
          if (v.kind === 'begin') this.events.onProgress(key, { title: v.title, message: v.message });
          else if (v.kind === 'report') this.events.onProgress(key, { message: v.message });
          else {
            this.events.onProgress(key, { message: v.message, done: true });
            sub.dispose();
          }
        });
        return null;
      });
    } catch (e) {
      const msg = `Tether: could not start ${bin.command}: ${e instanceof Error ? e.message : String(e)}`;
      this.output.appendLine(msg);
      this.events.onStateChange('stopped', msg);
      void vscode.window.showErrorMessage(msg, 'Show Output').then((c) => c && this.output.show(true));
    }
  }

  /**
   * `workspace/applyEdit`, as the language client applies it (versions
   * checked), and then, for an agent edit, the documents that were clean
   * before it are saved before the server gets the answer: the disk then has
   * the edit for the agent's next command (docs/PROTOCOL.md).
   */
  private async applyEdit(client: LanguageClient, params: ApplyWorkspaceEditParams): Promise<ApplyWorkspaceEditResult> {
    const p2c = client.protocol2CodeConverter;
    const open = new Map<string, vscode.TextDocument>();
    for (const d of vscode.workspace.textDocuments) open.set(d.uri.toString(), d);
    const doc = (uri: string) => open.get(p2c.asUri(uri).toString());
    const edit = params.edit as LspWorkspaceEdit;
    if (versionMismatch(edit, (uri) => doc(uri)?.version)) {
      return { applied: false, failureReason: 'the document changed since the server made the edit' };
    }
    const save = documentsToSave(params.label, edit, (uri) => doc(uri)?.isDirty);
    const applied = await vscode.workspace.applyEdit(await p2c.asWorkspaceEdit(params.edit));
    if (!applied) return { applied: false };
    for (const uri of save) {
      const d = doc(uri);
      if (!d || !d.isDirty) continue;
      // Not saved (a failing save participant, a read-only file…): the server
      // sees the disk differ and tells the model the edit is unsaved.
      if (!(await d.save())) this.output.appendLine(`Tether: could not save ${d.uri.fsPath} after the agent's edit`);
    }
    return { applied: true };
  }

  /** Tether's approvals: a modal dialog. Anything else: VS Code's default toast. */
  private async showMessageRequest(params: ShowMessageRequestParams): Promise<ActionItem | null> {
    if (!isApprovalRequest(params)) {
      const chosen = await this.defaultShowMessage(params.type, params.message, params.actions ?? []);
      return (chosen as ActionItem | undefined) ?? null;
    }
    const id = approvalIdOf(params);
    const dialog = approvalDialog(params, id ? this.approvals.get(id) : undefined);
    this.events.onApprovalDialog(true);
    try {
      const chosen = await vscode.window.showWarningMessage(dialog.message, { modal: true, detail: dialog.detail }, ...dialog.items);
      const reply = replyFor(params, chosen);
      this.output.appendLine(`Approval ${id ?? ''}: ${reply ? reply.title : 'dismissed (deny)'}`);
      return reply;
    } finally {
      this.events.onApprovalDialog(false);
    }
  }

  private defaultShowMessage<T extends vscode.MessageItem>(type: MessageType, message: string, actions: T[] = []) {
    switch (type) {
      case MessageType.Error:
        return vscode.window.showErrorMessage(message, ...actions);
      case MessageType.Warning:
        return vscode.window.showWarningMessage(message, ...actions);
      default:
        return vscode.window.showInformationMessage(message, ...actions);
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.ensure();
  }

  async stop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    this.approvals.clear();
    if (!c) return;
    try {
      if (c.needsStop()) await c.stop(5000);
    } catch (e) {
      this.output.appendLine(`Stopping the server: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.events.onStateChange('stopped');
  }

  dispose(): void {
    void this.stop();
  }
}
