// The chat view (a webview view in the Tether sidebar) and the controller that
// sends prompts, applies `tether/update` to the transcript, stops turns, and
// switches sessions (`tether/sessions`, `tether/history`).

import * as vscode from 'vscode';
import { CancellationTokenSource, ResponseError } from 'vscode-languageclient/node';
import { TetherServer } from './server';
import { Transcript, Update } from './transcript';
import { activityFor, toView } from './view';

export interface PromptContext {
  uri: string;
  range?: { start: { line: number; character: number }; end: { line: number; character: number } };
  label: string;
}

interface PromptResult {
  sessionId: string;
  turnId: string;
  stopReason: string;
  text: string;
  error?: string;
}

interface SessionInfo {
  id: string;
  title: string;
  parentId?: string;
  createdAt: string;
  updatedAt: string;
  messageCount: number;
  snippet?: string;
}

/** One prompt in flight. */
interface Running {
  cts: CancellationTokenSource;
  sessionId?: string;
  turnId?: string;
}

export interface ActivityListener {
  (activity: { busy: boolean; text?: string }): void;
}

export class ChatController implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewId = 'tether.chatView';
  private view: vscode.WebviewView | undefined;
  private transcript = new Transcript();
  private running = new Set<Running>();
  private flushTimer: NodeJS.Timeout | undefined;
  private activityText: string | undefined;
  private disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly server: TetherServer,
    private readonly onActivity: ActivityListener,
  ) {}

  // ---- webview ---------------------------------------------------------

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    view.webview.options = { enableScripts: true, localResourceRoots: [media] };
    view.webview.html = this.html(view.webview);
    this.disposables.push(
      view.webview.onDidReceiveMessage((m) => this.onMessage(m)),
      view.onDidDispose(() => (this.view = undefined)),
    );
  }

  private html(webview: vscode.Webview): string {
    const nonce = [...Array(32)].map(() => Math.floor(Math.random() * 36).toString(36)).join('');
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    const css = webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.css'));
    const js = webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.js'));
    // img-src: the extension's own files and data: only. A remote image in a
    // reply would be fetched as it renders; markdown.ts shows it as a link.
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${webview.cspSource}; script-src 'nonce-${nonce}'; img-src ${webview.cspSource} data:;">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${css}">
<title>Tether</title>
</head>
<body>
<header id="toolbar">
  <span id="session-title" title="Current session">New session</span>
  <span class="spacer"></span>
  <button id="sessions" class="icon" title="Open a session (search history)">History</button>
  <button id="new" class="icon" title="Start a new session">New</button>
</header>
<main id="log" aria-live="polite"></main>
<div id="activity" hidden><span class="spinner"></span><span id="activity-text">Working…</span><button id="stop" title="Stop the running turn (tether/cancel)">Stop</button></div>
<form id="composer">
  <textarea id="prompt" rows="3" placeholder="Ask Tether… (Enter to send, Shift+Enter for a new line)" aria-label="Prompt"></textarea>
  <div class="row"><span id="hint"></span><button id="send" type="submit">Send</button></div>
</form>
<script nonce="${nonce}" src="${js}"></script>
</body>
</html>`;
  }

  private post(message: unknown): void {
    void this.view?.webview.postMessage(message);
  }

  private onMessage(m: { type: string; text?: string }): void {
    switch (m.type) {
      case 'ready':
        this.resetView();
        break;
      case 'send':
        if (m.text && m.text.trim()) void this.send(m.text.trim());
        break;
      case 'stop':
        this.stop();
        break;
      case 'new':
        this.newSession();
        break;
      case 'sessions':
        void this.pickSession();
        break;
    }
  }

  private resetView(): void {
    this.post({
      type: 'reset',
      title: this.transcript.title ?? (this.transcript.sessionId ? 'Session' : 'New session'),
      sessionId: this.transcript.sessionId,
      entries: this.transcript.entries.map(toView),
    });
    this.transcript.takeChanged();
    this.postActivity();
  }

  /** Sends the entries changed since the last flush (at most ~20 times a second). */
  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      const changed = this.transcript.takeChanged();
      if (changed.length) this.post({ type: 'upsert', entries: changed.map(toView) });
    }, 50);
  }

  private busyHere(): boolean {
    for (const r of this.running) {
      if (r.sessionId === undefined || r.sessionId === this.transcript.sessionId) return true;
    }
    return false;
  }

  private postActivity(): void {
    const busy = this.busyHere();
    this.post({ type: 'busy', busy, text: this.activityText });
    void vscode.commands.executeCommand('setContext', 'tether.busy', this.running.size > 0);
    this.onActivity({ busy: this.running.size > 0, text: this.activityText });
  }

  private setActivity(text: string | undefined): void {
    if (text === this.activityText) return;
    this.activityText = text;
    this.postActivity();
  }

  // ---- prompts -----------------------------------------------------------

  async reveal(): Promise<void> {
    await vscode.commands.executeCommand(`${ChatController.viewId}.focus`);
  }

  async send(text: string, context: PromptContext[] = []): Promise<void> {
    const client = await this.server.ensure();
    const label = context.length ? context.map((c) => c.label).join(', ') : undefined;
    this.transcript.addUser(text, label);
    if (!client) {
      this.transcript.addNotice('error', 'Tether is not running: see the Tether output channel (command "Tether: Show Server Output").');
      this.scheduleFlush();
      return;
    }
    const run: Running = { cts: new CancellationTokenSource(), sessionId: this.transcript.sessionId };
    this.running.add(run);
    const transcript = this.transcript;
    this.setActivity('Thinking…');
    this.postActivity();
    this.scheduleFlush();
    try {
      const result = await client.sendRequest<PromptResult>(
        'tether/prompt',
        {
          sessionId: transcript.sessionId,
          text,
          context: context.map((c) => ({ uri: c.uri, range: c.range })),
        },
        run.cts.token,
      );
      if (transcript.sessionId === undefined) transcript.sessionId = result.sessionId;
      if (!transcript.title) transcript.title = titleFrom(text);
      transcript.finishTurn(result);
    } catch (e) {
      const msg = e instanceof ResponseError ? e.message : e instanceof Error ? e.message : String(e);
      transcript.endTurn(run.turnId);
      transcript.addNotice(
        run.cts.token.isCancellationRequested ? 'warning' : 'error',
        run.cts.token.isCancellationRequested ? 'Stopped.' : `Tether: ${msg}`,
      );
    } finally {
      this.running.delete(run);
      run.cts.dispose();
      if (this.running.size === 0) this.activityText = undefined;
      if (transcript === this.transcript) {
        this.post({ type: 'title', title: transcript.title ?? 'Session', sessionId: transcript.sessionId });
        this.scheduleFlush();
      }
      this.postActivity();
    }
  }

  /** A `tether/update` from the server. */
  onUpdate(u: Update): void {
    // A new session's id is learnt from its first update.
    for (const r of this.running) {
      if (r.sessionId === undefined && ![...this.running].some((o) => o.sessionId === u.sessionId)) {
        r.sessionId = u.sessionId;
        if (this.transcript.sessionId === undefined) this.transcript.sessionId = u.sessionId;
      }
      if (r.sessionId === u.sessionId && !r.turnId) r.turnId = u.turnId;
    }
    this.setActivity(activityFor(u) ?? this.activityText);
    if (!this.transcript.accepts(u)) return;
    this.transcript.apply(u);
    if (u.kind === 'turnEnd' && u.sessionId === this.transcript.sessionId) this.setActivity(undefined);
    this.scheduleFlush();
  }

  /** A `window/showMessage` from the server, mirrored into the chat. */
  onServerMessage(level: 'info' | 'warning' | 'error', message: string): void {
    if (level === 'info') return;
    this.transcript.addNotice(level, message);
    this.scheduleFlush();
  }

  onApprovalDialog(open: boolean): void {
    this.setActivity(open ? 'Waiting for your approval…' : this.running.size ? 'Working…' : undefined);
  }

  /** Stops the running turn of the shown session (or every turn, if none is shown). */
  stop(): void {
    const client = this.server.running;
    const runs = [...this.running].filter((r) => r.sessionId === undefined || r.sessionId === this.transcript.sessionId);
    const targets = runs.length ? runs : [...this.running];
    for (const r of targets) {
      if (r.sessionId && client) {
        // The turn ends on the server and the prompt answers with stopReason "cancelled".
        void client.sendNotification('tether/cancel', { sessionId: r.sessionId });
      } else {
        r.cts.cancel(); // $/cancelRequest: the server cancels the turn when the request is dropped.
      }
    }
    if (targets.length) this.setActivity('Stopping…');
  }

  newSession(): void {
    this.transcript = new Transcript();
    this.resetView();
  }

  async pickSession(): Promise<void> {
    const client = await this.server.ensure();
    if (!client) {
      void vscode.window.showErrorMessage('Tether is not running.');
      return;
    }
    const qp = vscode.window.createQuickPick<vscode.QuickPickItem & { id?: string }>();
    qp.placeholder = 'Search sessions (full text over messages)';
    qp.matchOnDescription = true;
    qp.matchOnDetail = true;
    let seq = 0;
    const load = async (query: string) => {
      const mine = ++seq;
      qp.busy = true;
      try {
        const r = await client.sendRequest<{ sessions: SessionInfo[] }>('tether/sessions', {
          query: query.trim() || undefined,
          limit: 50,
        });
        if (mine !== seq) return;
        qp.items = r.sessions
          .filter((s) => !s.parentId)
          .map((s) => ({
            id: s.id,
            label: s.title || s.id,
            description: `${s.messageCount} messages · ${formatDate(s.updatedAt)}`,
            detail: s.snippet,
            alwaysShow: !!query.trim(),
          }));
        if (!qp.items.length) qp.items = [{ label: query.trim() ? 'No session matches' : 'No sessions yet', alwaysShow: true }];
      } catch (e) {
        qp.items = [{ label: `Could not list sessions: ${e instanceof Error ? e.message : String(e)}`, alwaysShow: true }];
      } finally {
        if (mine === seq) qp.busy = false;
      }
    };
    let debounce: NodeJS.Timeout | undefined;
    qp.onDidChangeValue((v) => {
      if (debounce) clearTimeout(debounce);
      debounce = setTimeout(() => void load(v), 200);
    });
    qp.onDidAccept(async () => {
      const picked = qp.selectedItems[0];
      qp.hide();
      if (picked?.id) await this.openSession(picked.id, picked.label);
    });
    qp.onDidHide(() => qp.dispose());
    qp.show();
    await load('');
  }

  async openSession(sessionId: string, title?: string): Promise<void> {
    const client = await this.server.ensure();
    if (!client) return;
    try {
      const r = await client.sendRequest<{ messages: import('./transcript').HistoryMessage[] }>('tether/history', { sessionId });
      const t = new Transcript(sessionId);
      t.title = title;
      t.loadHistory(r.messages);
      this.transcript = t;
      this.resetView();
      await this.reveal();
    } catch (e) {
      void vscode.window.showErrorMessage(`Tether: could not open the session: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** The server restarted: turns in flight are gone. */
  serverStopped(): void {
    for (const r of this.running) r.cts.cancel();
  }

  focusPrompt(text?: string): void {
    this.post({ type: 'focus', text });
  }

  dispose(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const d of this.disposables) d.dispose();
  }
}

function titleFrom(text: string): string {
  const line = text.split('\n')[0].trim();
  return line.length > 60 ? line.slice(0, 59) + '…' : line;
}

function formatDate(iso: string): string {
  const d = new Date(iso);
  return isNaN(d.getTime()) ? iso : d.toLocaleString();
}
