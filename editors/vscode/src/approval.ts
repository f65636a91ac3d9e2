// Tether's approval requests (`window/showMessageRequest`, docs/DESIGN.md §3): how to
// recognise one, what the person is shown, and what goes back to the server.
// Pure logic (no `vscode` import) so the unit tests run under plain Node.
//
// What the dialog shows comes from the structured fields every action item
// carries (`ApprovalItem` in protocol.ts); the English message is read only
// for servers that do not send them.

import { ActionKind, APPROVAL_CHOICES, ApprovalChoice, ApprovalItem } from './protocol';

/** The exact action titles, in the order Tether sends and the dialog shows them. */
export const APPROVAL_ACTIONS = ['Deny', 'Allow once', 'Allow for session', 'Always allow'] as const;

export interface ActionItem {
  title: string;
  [key: string]: unknown;
}

export interface ShowMessageRequestParams {
  type: number;
  message: string;
  actions?: ActionItem[];
}

/** LSP MessageType.Warning. */
export const WARNING = 2;

/** What the `approval` kind of `tether/update` said about an approval (status `asked`). */
export interface KnownApproval {
  approvalId: string;
  command?: string;
  reason?: string;
  agent?: string;
  sessionId?: string;
}

/** The fields a person needs to decide, read from the request (and the update, when known). */
export interface ApprovalInfo {
  approvalId?: string;
  kind: ActionKind | 'unknown';
  /** The command to run, or the path to write. */
  action?: string;
  cwd?: string;
  reason?: string;
  agent?: string;
  /** The closing note on "Allow for session" / "Always allow" scope. */
  scopeNote?: string;
}

/**
 * True when the request is one of Tether's approvals: a Warning whose actions
 * are Tether's four, or that carry an `approvalId`. Anything else keeps VS
 * Code's default (non-modal) behaviour.
 */
export function isApprovalRequest(p: ShowMessageRequestParams | undefined | null): boolean {
  if (!p || !Array.isArray(p.actions) || p.actions.length === 0) return false;
  if (p.actions.some((a) => a && typeof a.approvalId === 'string')) return true;
  const titles = p.actions.map((a) => a && a.title);
  return p.type === WARNING && APPROVAL_ACTIONS.every((t) => titles.includes(t));
}

export function approvalIdOf(p: ShowMessageRequestParams): string | undefined {
  for (const a of p.actions ?? []) {
    if (a && typeof a.approvalId === 'string') return a.approvalId;
  }
  return undefined;
}

/** The structured fields of the request's items, when the server sent them. */
export function structuredInfo(p: ShowMessageRequestParams): ApprovalInfo | undefined {
  const item = (p.actions ?? []).find(
    (a): a is ActionItem & ApprovalItem =>
      !!a &&
      typeof a.action === 'string' &&
      (a.kind === 'command' || a.kind === 'edit' || a.kind === 'read' || a.kind === 'unsandboxed' || a.kind === 'mcp'),
  );
  if (!item) return undefined;
  const kind: ActionKind = item.kind ?? 'command';
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);
  return {
    approvalId: str(item.approvalId),
    kind,
    action: item.action,
    cwd: str(item.cwd),
    reason: str(item.reason),
    agent: str(item.agent),
    scopeNote: scopeNote(kind),
  };
}

function scopeNote(kind: ActionKind): string {
  if (kind === 'mcp') {
    return '"Allow for session" and "Always allow" apply to this tool of this server only.';
  }
  if (kind === 'read') {
    return '"Allow for session" and "Always allow" apply to this directory and below; files with keys or credentials are asked about every time.';
  }
  if (kind === 'unsandboxed') {
    return '"Allow for session" and "Always allow" apply to this exact command, run outside the sandbox.';
  }
  return `"Allow for session" and "Always allow" apply to this exact ${kind === 'edit' ? 'path' : 'command'}.`;
}

/**
 * Reads the server's message (servers without structured items):
 *
 *     Tether wants to run:
 *
 *         rm -rf build
 *
 *     in /work/project
 *
 *     Why it asks: recursive delete
 *     Asked by: the main agent
 *
 *     "Allow for session" and "Always allow" apply to this exact command.
 *
 * or `Tether wants to write PATH` for edits. Unknown shapes give `kind: 'unknown'`.
 */
export function parseApprovalMessage(message: string): ApprovalInfo {
  const text = message.replace(/\r\n/g, '\n');
  const info: ApprovalInfo = { kind: 'unknown' };
  const run = /^Tether wants to run:\n\n([\s\S]*?)\n\nin (.+)$/m.exec(text);
  if (run) {
    info.kind = 'command';
    info.action = run[1]
      .split('\n')
      .map((l) => l.replace(/^ {4}/, ''))
      .join('\n')
      .trim();
    info.cwd = run[2].trim();
  } else {
    const write = /^Tether wants to write (.+)$/m.exec(text);
    if (write) {
      info.kind = 'edit';
      info.action = write[1].trim();
    }
  }
  const why = /^Why it asks: (.+)$/m.exec(text);
  if (why) info.reason = why[1].trim();
  const who = /^Asked by: (.+)$/m.exec(text);
  if (who) info.agent = who[1].trim();
  const scope = /^(".*apply to this exact .*)$/m.exec(text);
  if (scope) info.scopeNote = scope[1].trim();
  return info;
}

/** Request + (optional) structured update → what the dialog shows. */
export function approvalInfo(p: ShowMessageRequestParams, known?: KnownApproval): ApprovalInfo {
  const structured = structuredInfo(p);
  if (structured) {
    structured.approvalId = approvalIdOf(p) ?? known?.approvalId;
    if (!structured.agent) structured.agent = 'the main agent';
    return structured;
  }
  const info = parseApprovalMessage(p.message ?? '');
  info.approvalId = approvalIdOf(p) ?? known?.approvalId;
  if (known) {
    if (known.command) {
      info.action = known.command;
      if (info.kind === 'unknown') info.kind = 'command';
    }
    if (known.reason) info.reason = known.reason;
    if (known.agent) info.agent = known.agent;
  }
  if (!info.agent) info.agent = 'the main agent';
  return info;
}

function clip(s: string, max: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? one.slice(0, max - 1) + '…' : one;
}

export interface ApprovalDialog {
  /** The dialog's headline. */
  message: string;
  /** The body: command, directory, reason, agent. */
  detail: string;
  /** Buttons, default first; each is the server's own action item. */
  items: ActionItem[];
}

/** The modal dialog for one approval request. */
export function approvalDialog(p: ShowMessageRequestParams, known?: KnownApproval): ApprovalDialog {
  const info = approvalInfo(p, known);
  const lines: string[] = [];
  let message: string;
  if (info.kind === 'command' && info.action) {
    message = `Tether wants to run: ${clip(info.action, 120)}`;
    lines.push(`Command: ${info.action}`);
    lines.push(`Directory: ${info.cwd ?? '(workspace root)'}`);
  } else if (info.kind === 'edit' && info.action) {
    message = `Tether wants to write ${clip(info.action, 120)}`;
    lines.push(`File: ${info.action}`);
  } else if (info.kind === 'read' && info.action) {
    message = `Tether wants to read ${clip(info.action, 120)}`;
    lines.push(`File: ${info.action}`);
  } else if (info.kind === 'mcp' && info.action) {
    message = `An MCP tool wants to run: ${clip(info.action, 120)}`;
    lines.push(`MCP server/tool: ${info.action}`);
  } else {
    // Not in the shape we know: show the server's text as it is.
    message = 'Tether asks for approval';
    lines.push(p.message);
  }
  if (info.kind !== 'unknown') {
    lines.push(`Why it asks: ${info.reason ?? '(no reason given)'}`);
    lines.push(`Asked by: ${info.agent}`);
    if (info.scopeNote) lines.push('', info.scopeNote);
  }
  const items = orderedActions(p.actions ?? []);
  return { message, detail: lines.join('\n'), items };
}

/**
 * The order of the dialog's buttons. The first button is the dialog's default
 * (focused: Enter presses it), and the dialog can pop up while the person is
 * typing a prompt, so the default is the harmless one: Deny.
 */
export const DIALOG_CHOICES: readonly ApprovalChoice[] = ['deny', 'allow_once', 'allow_session', 'always_allow'];

/** Which button an item is: its `choice`, else (older servers) its title. */
export function choiceOf(a: ActionItem): ApprovalChoice | undefined {
  const c = APPROVAL_CHOICES.find((x) => x.choice === a.choice);
  if (c) return c.choice;
  return APPROVAL_CHOICES.find((x) => x.title === a.title)?.choice;
}

/** The server's items in dialog order (unknown extra items keep their place at the end). */
export function orderedActions(actions: ActionItem[]): ActionItem[] {
  const known = DIALOG_CHOICES.map((c) => actions.find((a) => choiceOf(a) === c)).filter((a): a is ActionItem => a !== undefined);
  const rest = actions.filter((a) => !known.includes(a));
  return [...known, ...rest];
}

/**
 * The reply to the server: the chosen action item exactly as the server sent
 * it (with its `approvalId`), or `null` when the dialog was dismissed (a deny).
 */
export function replyFor(p: ShowMessageRequestParams, chosen: { title: string } | undefined | null): ActionItem | null {
  if (!chosen) return null;
  return (p.actions ?? []).find((a) => a.title === chosen.title) ?? null;
}
