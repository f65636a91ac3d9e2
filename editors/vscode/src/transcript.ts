// The chat view's state: one session's transcript, built from the user's
// prompts, `tether/update` notifications (docs/DESIGN.md §3) and `tether/history`.
// Pure logic (no `vscode` import) so the unit tests run under plain Node.
//
// Every entry has a stable `id`; `apply` records which top-level entries
// changed so the view can re-render only those (keeping scroll and the
// open/closed state of the others).

import type { ApprovalStatus, HistoryMessage, ToolStatus, Update, UpdateBase } from './protocol';

// The wire types live in protocol.ts; re-exported for the modules that
// import them from here.
export type { ApprovalStatus, HistoryMessage, ToolStatus, Update, UpdateBase } from './protocol';

export interface UserEntry {
  id: string;
  type: 'user';
  text: string;
  context?: string;
}
export interface AssistantEntry {
  id: string;
  type: 'assistant';
  turnId?: string;
  text: string;
  streaming: boolean;
}
export interface ToolEntry {
  id: string;
  type: 'tool';
  toolCallId: string;
  tool: string;
  title: string;
  status: ToolStatus;
  input?: unknown;
  output?: string;
  agent?: string;
}
export interface ApprovalEntry {
  id: string;
  type: 'approval';
  approvalId: string;
  status: ApprovalStatus;
  command?: string;
  reason: string;
  agent?: string;
}
export interface SubagentEntry {
  id: string;
  type: 'subagent';
  childSessionId: string;
  goal: string;
  status: string;
  summary?: string;
  children: Entry[];
}
export interface PlanEntry {
  id: string;
  type: 'plan';
  entries: { content: string; status: string }[];
}
export interface NoticeEntry {
  id: string;
  type: 'notice';
  level: 'info' | 'warning' | 'error';
  text: string;
}
export type Entry = UserEntry | AssistantEntry | ToolEntry | ApprovalEntry | SubagentEntry | PlanEntry | NoticeEntry;

/** The chat's line for a `compaction` update (what the model is sent was shortened). */
export function compactionText(u: {
  reason: string;
  tokensBefore: number;
  tokensAfter: number;
  window: number;
  prunedOutputs: number;
  summarizedMessages: number;
}): string {
  const why =
    u.reason === 'overflow'
      ? 'the server said the conversation was too long'
      : u.reason === 'command'
        ? '/compact'
        : `it neared the model's window of ${u.window} tokens`;
  const parts: string[] = [];
  if (u.prunedOutputs > 0) parts.push(`${u.prunedOutputs} old tool outputs shortened`);
  if (u.summarizedMessages > 0) parts.push(`${u.summarizedMessages} messages summarised`);
  return `Context compacted (${why}): about ${u.tokensBefore} → ${u.tokensAfter} tokens${
    parts.length ? `; ${parts.join(', ')}` : ''
  }. The full history is kept.`;
}

const FINAL_TOOL: ToolStatus[] = ['completed', 'failed', 'denied', 'cancelled'];

export function isFinalToolStatus(s: string): boolean {
  return (FINAL_TOOL as string[]).includes(s);
}

/** A short human label for a stop reason other than a normal end. */
export function stopReasonNotice(stopReason: string, error?: string): { level: NoticeEntry['level']; text: string } | undefined {
  switch (stopReason) {
    case 'end_turn':
      return error ? { level: 'error', text: error } : undefined;
    case 'cancelled':
      return { level: 'warning', text: 'Stopped.' };
    case 'max_iterations':
      return { level: 'warning', text: error ?? 'Stopped after the maximum number of model calls; say "continue" to go on.' };
    case 'error':
      return { level: 'error', text: error ?? 'The turn failed (see the Tether output channel).' };
    default:
      return error ? { level: 'error', text: error } : undefined;
  }
}

export class Transcript {
  sessionId: string | undefined;
  title: string | undefined;
  readonly entries: Entry[] = [];
  /** The turn being streamed, if any. */
  runningTurn: string | undefined;
  usage = { promptTokens: 0, completionTokens: 0 };
  private byId = new Map<string, { entry: Entry; top: Entry }>();
  private changed = new Set<string>();
  private seq = 0;

  constructor(sessionId?: string) {
    this.sessionId = sessionId;
  }

  private nextId(prefix: string): string {
    this.seq += 1;
    return `${prefix}-${this.seq}`;
  }

  private add(entry: Entry, container: Entry[], top?: Entry): Entry {
    container.push(entry);
    const t = top ?? entry;
    this.byId.set(entry.id, { entry, top: t });
    this.changed.add(t.id);
    return entry;
  }

  private touch(id: string): void {
    const found = this.byId.get(id);
    if (found) this.changed.add(found.top.id);
  }

  get(id: string): Entry | undefined {
    return this.byId.get(id)?.entry;
  }

  /** Top-level entries changed since the last call, in display order. */
  takeChanged(): Entry[] {
    const out = this.entries.filter((e) => this.changed.has(e.id));
    this.changed.clear();
    return out;
  }

  /** Child session ids of the subagents seen in this transcript. */
  childSessions(): string[] {
    const out: string[] = [];
    const walk = (list: Entry[]) => {
      for (const e of list) {
        if (e.type === 'subagent') {
          out.push(e.childSessionId);
          walk(e.children);
        }
      }
    };
    walk(this.entries);
    return out;
  }

  /** Does this update belong here (the session or one of its subagents)? */
  accepts(u: UpdateBase): boolean {
    if (this.sessionId === undefined) return false;
    return u.sessionId === this.sessionId || this.childSessions().includes(u.sessionId);
  }

  addUser(text: string, context?: string): UserEntry {
    return this.add({ id: this.nextId('user'), type: 'user', text, context }, this.entries) as UserEntry;
  }

  addNotice(level: NoticeEntry['level'], text: string): NoticeEntry {
    return this.add({ id: this.nextId('notice'), type: 'notice', level, text }, this.entries) as NoticeEntry;
  }

  /** The list an update's entries go into, and the top-level entry that owns it. */
  private containerFor(u: Update): { list: Entry[]; top?: Entry } {
    const agent = 'agent' in u ? u.agent : undefined;
    if (u.sessionId !== this.sessionId) {
      const sub = this.byId.get(`sub:${u.sessionId}`);
      if (sub && sub.entry.type === 'subagent') return { list: sub.entry.children, top: sub.top };
    }
    if (agent) {
      const sub = this.subagentForAgent(agent);
      return { list: sub.entry.children, top: sub.top };
    }
    return { list: this.entries };
  }

  /** The subagent group an `agent` label belongs to (created when no subagent update named it). */
  private subagentForAgent(agent: string): { entry: SubagentEntry; top: Entry } {
    for (const { entry, top } of this.byId.values()) {
      if (entry.type === 'subagent' && (entry.childSessionId === agent || entry.goal === agent || agent.includes(entry.childSessionId))) {
        return { entry, top };
      }
    }
    const id = `sub:agent:${agent}`;
    const existing = this.byId.get(id);
    if (existing && existing.entry.type === 'subagent') return { entry: existing.entry, top: existing.top };
    const entry: SubagentEntry = { id, type: 'subagent', childSessionId: agent, goal: agent, status: 'running', children: [] };
    this.add(entry, this.entries);
    return { entry, top: entry };
  }

  apply(u: Update): void {
    if (u.sessionId === this.sessionId && u.kind !== 'turnEnd') this.runningTurn = u.turnId;
    switch (u.kind) {
      case 'text': {
        if (!u.delta) return;
        const { list, top } = this.containerFor(u);
        const last = list[list.length - 1];
        if (last && last.type === 'assistant' && last.streaming && last.turnId === u.turnId) {
          last.text += u.delta;
          this.touch(last.id);
        } else {
          this.add({ id: this.nextId('assistant'), type: 'assistant', turnId: u.turnId, text: u.delta, streaming: true }, list, top);
        }
        return;
      }
      case 'toolCall': {
        const id = `tool:${u.toolCallId}`;
        const found = this.byId.get(id);
        if (found && found.entry.type === 'tool') {
          const e = found.entry;
          // A final status is final: a late "running" never reopens it.
          if (!(isFinalToolStatus(e.status) && !isFinalToolStatus(u.status))) e.status = u.status;
          if (u.title) e.title = u.title;
          if (u.input !== undefined) e.input = u.input;
          if (u.output !== undefined) e.output = u.output;
          this.touch(id);
        } else {
          const { list, top } = this.containerFor(u);
          this.closeStreaming(list);
          this.add(
            {
              id,
              type: 'tool',
              toolCallId: u.toolCallId,
              tool: u.tool,
              title: u.title,
              status: u.status,
              input: u.input,
              output: u.output,
              agent: u.agent,
            },
            list,
            top,
          );
        }
        return;
      }
      case 'approval': {
        const id = `approval:${u.approvalId}`;
        const found = this.byId.get(id);
        if (found && found.entry.type === 'approval') {
          const e = found.entry;
          e.status = u.status;
          if (u.reason) e.reason = u.reason;
          if (u.command) e.command = u.command;
          this.touch(id);
        } else {
          const { list, top } = this.containerFor(u);
          this.add(
            { id, type: 'approval', approvalId: u.approvalId, status: u.status, command: u.command, reason: u.reason, agent: u.agent },
            list,
            top,
          );
        }
        return;
      }
      case 'subagent': {
        const id = `sub:${u.childSessionId}`;
        const found = this.byId.get(id);
        if (found && found.entry.type === 'subagent') {
          const e = found.entry;
          e.status = u.status;
          if (u.goal) e.goal = u.goal;
          if (u.summary !== undefined) e.summary = u.summary;
          this.touch(id);
        } else {
          const { list, top } = this.containerFor(u);
          this.closeStreaming(list);
          this.add(
            { id, type: 'subagent', childSessionId: u.childSessionId, goal: u.goal, status: u.status, summary: u.summary, children: [] },
            list,
            top,
          );
        }
        return;
      }
      case 'plan': {
        const id = `plan:${u.turnId}`;
        const found = this.byId.get(id);
        if (found && found.entry.type === 'plan') {
          found.entry.entries = u.entries;
          this.touch(id);
        } else {
          this.add({ id, type: 'plan', entries: u.entries }, this.entries);
        }
        return;
      }
      case 'compaction': {
        const what = compactionText(u);
        this.closeStreaming(this.entries);
        this.addNotice('info', what);
        return;
      }
      case 'usage':
        this.usage.promptTokens += u.promptTokens;
        this.usage.completionTokens += u.completionTokens;
        return;
      case 'turnEnd':
        if (u.sessionId === this.sessionId) this.endTurn(u.turnId);
        return;
    }
  }

  private closeStreaming(list: Entry[]): void {
    const last = list[list.length - 1];
    if (last && last.type === 'assistant' && last.streaming) {
      last.streaming = false;
      this.touch(last.id);
    }
  }

  /** Marks the turn's streamed text done (from `turnEnd` or the prompt's result). */
  endTurn(turnId?: string): void {
    const walk = (list: Entry[]) => {
      for (const e of list) {
        if (e.type === 'assistant' && e.streaming && (turnId === undefined || e.turnId === turnId || e.turnId === undefined)) {
          e.streaming = false;
          this.touch(e.id);
        } else if (e.type === 'subagent') walk(e.children);
      }
    };
    walk(this.entries);
    if (turnId === undefined || this.runningTurn === turnId) this.runningTurn = undefined;
  }

  /**
   * The prompt's result arrived. When no text streamed for this turn (a
   * server that does not stream, or a turn that failed before the model
   * answered) the final text is shown from the result.
   */
  finishTurn(result: { turnId?: string; stopReason: string; text?: string; error?: string }): void {
    const streamed = this.entries.some((e) => e.type === 'assistant' && e.turnId === result.turnId);
    if (!streamed && result.text) {
      this.add(
        { id: this.nextId('assistant'), type: 'assistant', turnId: result.turnId, text: result.text, streaming: false },
        this.entries,
      );
    }
    this.endTurn(result.turnId);
    const n = stopReasonNotice(result.stopReason, result.error);
    if (n) this.addNotice(n.level, n.text);
  }

  /** Rebuilds the transcript from `tether/history`. */
  loadHistory(messages: HistoryMessage[]): void {
    for (const m of messages) {
      if (m.role === 'user') {
        this.addUser(m.text);
      } else if (m.role === 'assistant') {
        if (m.text) this.add({ id: this.nextId('assistant'), type: 'assistant', text: m.text, streaming: false }, this.entries);
        const calls = Array.isArray(m.toolCalls) ? m.toolCalls : [];
        for (const c of calls as { id?: string; function?: { name?: string; arguments?: string } }[]) {
          const id = c.id ?? this.nextId('call');
          let input: unknown = c.function?.arguments;
          try {
            input = typeof input === 'string' ? JSON.parse(input) : input;
          } catch {
            /* keep the raw string */
          }
          const name = c.function?.name ?? 'tool';
          this.add(
            { id: `tool:${id}`, type: 'tool', toolCallId: id, tool: name, title: toolTitle(name, input), status: 'completed', input },
            this.entries,
          );
        }
      } else if (m.role === 'tool' && m.toolCallId) {
        const found = this.byId.get(`tool:${m.toolCallId}`);
        if (found && found.entry.type === 'tool') {
          found.entry.output = m.text;
          found.entry.status = statusFromOutput(m.text);
        }
      }
    }
  }
}

/** A title for a stored tool call, as the server titles live ones (src/tools `Parsed::title`). */
export function toolTitle(tool: string, input: unknown): string {
  const o = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  const s = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  const firstLine = (t: string, max: number) => {
    const line = t.split('\n')[0];
    return line.length > max ? line.slice(0, max) + '…' : line;
  };
  switch (tool) {
    case 'run_command':
      return `Run \`${firstLine(s('command') ?? '', 80)}\``;
    case 'read_file':
      return `Read ${s('path') ?? ''}`.trim();
    case 'write_file':
      return `Write ${s('path') ?? ''}`.trim();
    case 'edit_file':
      return `Edit ${s('path') ?? ''}`.trim();
    case 'list_dir':
      return `List ${s('path') ?? '.'}`;
    case 'search':
      return `Search /${s('pattern') ?? ''}/`;
    case 'todo':
      return 'Update plan';
    case 'delegate': {
      const tasks = Array.isArray(o.tasks) ? o.tasks : undefined;
      if (tasks && tasks.length !== 1) return `Delegate ${tasks.length} tasks`;
      const goal = tasks ? (tasks[0] as Record<string, unknown>).goal : o.goal;
      return `Delegate: ${firstLine(typeof goal === 'string' ? goal : '', 60)}`;
    }
    default:
      return tool;
  }
}

/** Stored tool results carry no status; denials and cancels say so in their text. */
export function statusFromOutput(text: string): ToolStatus {
  const t = text.trimStart().toLowerCase();
  if (t.startsWith('denied') || t.includes('was denied')) return 'denied';
  if (t.startsWith('cancelled')) return 'cancelled';
  if (t.startsWith('error') || t.startsWith('failed')) return 'failed';
  return 'completed';
}
