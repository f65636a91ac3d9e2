// Tether for VS Code: starts the tether language server, shows its chat view,
// turns its approvals into modal dialogs, and offers the palette commands.

import * as path from 'path';
import * as vscode from 'vscode';
import { MessageType } from 'vscode-languageclient/node';
import { ChatController, PromptContext } from './chat';
import { TetherServer } from './server';
import { SERVER_SETTINGS } from './settings';
import { contextLabel } from './view';

let server: TetherServer | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<{ server: TetherServer; chat: ChatController }> {
  const output = vscode.window.createOutputChannel('Tether');
  const status = vscode.window.createStatusBarItem('tether.status', vscode.StatusBarAlignment.Left, 100);
  status.name = 'Tether';
  status.command = 'tether.client.openChat';
  let serverState: 'starting' | 'running' | 'stopped' | 'missing' = 'stopped';
  let serverDetail: string | undefined;
  let activity: { busy: boolean; text?: string } = { busy: false };
  let approvalOpen = false;
  /** Server progress by token, newest last. */
  const progress = new Map<string, { title?: string; message?: string }>();
  const renderStatus = () => {
    status.backgroundColor = undefined;
    if (serverState === 'missing') {
      status.text = '$(error) Tether: not found';
      status.tooltip = serverDetail;
      status.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
    } else if (serverState === 'stopped') {
      status.text = '$(circle-slash) Tether: stopped';
      status.tooltip = serverDetail ?? 'The tether server is not running (click to open the chat; it starts on the next prompt).';
    } else if (serverState === 'starting') {
      status.text = '$(loading~spin) Tether: starting';
      status.tooltip = 'Starting the tether server';
    } else if (approvalOpen) {
      status.text = '$(shield) Tether: approval needed';
      status.tooltip = 'Tether is waiting for your decision in a dialog';
      status.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    } else if (progress.size) {
      const p = [...progress.values()].pop()!;
      status.text = `$(loading~spin) Tether: ${p.message ?? p.title ?? 'working'}`;
      status.tooltip = 'Click to open the chat; "Tether: Cancel" stops the turn';
    } else if (activity.busy) {
      status.text = `$(loading~spin) Tether: ${activity.text ?? 'working…'}`;
      status.tooltip = 'Click to open the chat; "Tether: Cancel" stops the turn';
    } else {
      status.text = '$(comment-discussion) Tether';
      status.tooltip = 'Tether is ready: click to open the chat';
    }
    status.show();
  };

  let chat: ChatController | undefined;
  server = new TetherServer(output, {
    onUpdate: (u) => chat?.onUpdate(u),
    onMessage: (type, message) =>
      chat?.onServerMessage(type === MessageType.Error ? 'error' : type === MessageType.Warning ? 'warning' : 'info', message),
    onApprovalDialog: (open) => {
      approvalOpen = open;
      chat?.onApprovalDialog(open);
      renderStatus();
    },
    onStateChange: (state, detail) => {
      serverState = state;
      serverDetail = detail;
      if (state === 'stopped') {
        progress.clear();
        chat?.serverStopped();
      }
      renderStatus();
    },
    onProgress: (token, p) => {
      if (p.done) progress.delete(token);
      else progress.set(token, { ...progress.get(token), ...Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) });
      renderStatus();
    },
  });
  chat = new ChatController(context.extensionUri, server, (a) => {
    activity = a;
    renderStatus();
  });
  const srv = server;
  const ch = chat;

  context.subscriptions.push(
    srv,
    ch,
    status,
    vscode.window.registerWebviewViewProvider(ChatController.viewId, ch, { webviewOptions: { retainContextWhenHidden: true } }),
    vscode.commands.registerCommand('tether.client.openChat', async () => {
      await ch.reveal();
      ch.focusPrompt();
    }),
    vscode.commands.registerCommand('tether.client.ask', async (text?: unknown) => {
      const prompt =
        typeof text === 'string' ? text : await vscode.window.showInputBox({ prompt: 'Ask Tether', placeHolder: 'What should Tether do?' });
      if (!prompt?.trim()) return;
      await ch.reveal();
      await ch.send(prompt.trim());
    }),
    vscode.commands.registerCommand('tether.client.askAboutSelection', async () => {
      const editor = vscode.window.activeTextEditor;
      if (!editor) {
        void vscode.window.showInformationMessage('Tether: open a file and select some text first.');
        return;
      }
      const sel = editor.selection;
      const rel = vscode.workspace.asRelativePath(editor.document.uri, false) || path.basename(editor.document.uri.fsPath);
      const ctx: PromptContext = {
        uri: editor.document.uri.toString(),
        range: sel.isEmpty
          ? undefined
          : {
              start: { line: sel.start.line, character: sel.start.character },
              end: { line: sel.end.line, character: sel.end.character },
            },
        label: sel.isEmpty ? rel : contextLabel(rel, sel.start.line, sel.end.line),
      };
      const prompt = await vscode.window.showInputBox({
        prompt: `Ask Tether about ${ctx.label}`,
        placeHolder: 'Explain this / fix this / …',
      });
      if (!prompt?.trim()) return;
      await ch.reveal();
      await ch.send(prompt.trim(), [ctx]);
    }),
    vscode.commands.registerCommand('tether.client.newSession', async () => {
      ch.newSession();
      await ch.reveal();
      ch.focusPrompt();
    }),
    vscode.commands.registerCommand('tether.client.cancel', () => ch.stop()),
    vscode.commands.registerCommand('tether.client.openSession', () => ch.pickSession()),
    vscode.commands.registerCommand('tether.client.openChatFile', () => openChatFile()),
    vscode.commands.registerCommand('tether.client.restart', async () => {
      await srv.restart();
    }),
    vscode.commands.registerCommand('tether.client.showOutput', () => output.show(true)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (SERVER_SETTINGS.some((s) => e.affectsConfiguration(s))) {
        output.appendLine('Settings changed: restarting the server');
        scheduleRestart(srv);
      }
    }),
    output, // last: the server's stderr may still arrive while it stops
  );
  renderStatus();
  void srv.ensure();
  return { server: srv, chat: ch };
}

let restartTimer: NodeJS.Timeout | undefined;
function scheduleRestart(s: TetherServer): void {
  if (restartTimer) clearTimeout(restartTimer);
  restartTimer = setTimeout(() => {
    restartTimer = undefined;
    void s.restart();
  }, 300);
}

/**
 * Opens the workspace's chat file (`.tether/chat.tether.md`, docs/DESIGN.md §3), creating
 * it with a short how-to. The server answers into it through the code action
 * "Send to Tether" once it offers one.
 */
async function openChatFile(): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  const header =
    '# Tether chat\n\nWrite below the last reply, then run the code action **Send to Tether** ' +
    '(Ctrl+. on the text). Replies, tool activity and approvals are written into this file.\n\n';
  if (!folder) {
    const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content: header });
    await vscode.window.showTextDocument(doc);
    return;
  }
  const uri = vscode.Uri.joinPath(folder.uri, '.tether', 'chat.tether.md');
  try {
    await vscode.workspace.fs.stat(uri);
  } catch {
    await vscode.workspace.fs.createDirectory(vscode.Uri.joinPath(folder.uri, '.tether'));
    await vscode.workspace.fs.writeFile(uri, Buffer.from(header, 'utf8'));
  }
  const doc = await vscode.workspace.openTextDocument(uri);
  const editor = await vscode.window.showTextDocument(doc);
  const end = doc.lineAt(doc.lineCount - 1).range.end;
  editor.selection = new vscode.Selection(end, end);
}

export async function deactivate(): Promise<void> {
  await server?.stop();
}
