// Tether's wire protocol, typed for the extension: the TypeScript mirror of
// the server's `src/protocol.rs` (documented in `docs/PROTOCOL.md`). Pure
// types and constants (no `vscode` import) so the unit tests run under Node.
// When protocol.rs changes, change this file and PROTOCOL.md with it, then
// the hash below (tests/protocol_doc.rs checks it and names the new one).
// protocol.rs hash: b61ba19e238e6575

/** Session and turn ids: opaque strings the server mints. */
export type SessionId = string;
export type TurnId = string;

export type StopReason = 'end_turn' | 'cancelled' | 'max_iterations' | 'error';
export type ToolStatus = 'pending' | 'running' | 'completed' | 'failed' | 'denied' | 'cancelled';
export type ApprovalStatus = 'asked' | 'allowed' | 'denied' | 'timed_out';
export type SubagentStatus = 'started' | 'completed' | 'failed' | 'cancelled';
export type PlanStatus = 'pending' | 'in_progress' | 'completed';
export type Role = 'system' | 'user' | 'assistant' | 'tool' | 'compaction';

/** What an approval is for: what "Allow for session" and "Always allow" apply to. */
export type ActionKind = 'command' | 'edit' | 'read' | 'unsandboxed' | 'mcp';

/** A button of the approval dialog, as the server reads it back. */
export type ApprovalChoice = 'allow_once' | 'allow_session' | 'always_allow' | 'deny';

/** The buttons in the order the server sends them (the safe one first), with their titles. */
export const APPROVAL_CHOICES: readonly { choice: ApprovalChoice; title: string }[] = [
  { choice: 'deny', title: 'Deny' },
  { choice: 'allow_once', title: 'Allow once' },
  { choice: 'allow_session', title: 'Allow for session' },
  { choice: 'always_allow', title: 'Always allow' },
];

/**
 * One action item of an approval dialog (`window/showMessageRequest`):
 * besides its title, what is asked, structured. Older servers send only
 * `title` and `approvalId`.
 */
export interface ApprovalItem {
  title: string;
  approvalId?: string;
  choice?: ApprovalChoice;
  kind?: ActionKind;
  /** The command that will run, or the path that will be written. */
  action?: string;
  /** The directory the command runs in (the workspace root for an edit). */
  cwd?: string;
  reason?: string;
  /** The subagent that asks; absent for the main agent. */
  agent?: string;
}

export interface PlanItem {
  content: string;
  status: PlanStatus;
}

export interface UpdateBase {
  sessionId: SessionId;
  turnId: TurnId;
}

/** One `tether/update` notification. */
export type Update = UpdateBase &
  (
    | { kind: 'text'; delta: string }
    | {
        kind: 'toolCall';
        toolCallId: string;
        tool: string;
        title: string;
        status: ToolStatus;
        input?: unknown;
        output?: string;
        agent?: string;
      }
    | { kind: 'approval'; approvalId: string; status: ApprovalStatus; command?: string; reason: string; agent?: string }
    | { kind: 'subagent'; childSessionId: SessionId; goal: string; status: SubagentStatus; summary?: string }
    | { kind: 'plan'; entries: PlanItem[] }
    | { kind: 'usage'; promptTokens: number; completionTokens: number }
    | {
        kind: 'compaction';
        reason: 'budget' | 'overflow' | 'command';
        tokensBefore: number;
        tokensAfter: number;
        window: number;
        prunedOutputs: number;
        summarizedMessages: number;
      }
    | { kind: 'turnEnd'; stopReason: StopReason }
  );

/** Params of `tether/prompt`. */
export interface PromptParams {
  sessionId?: SessionId;
  text: string;
  context?: { uri: string; range?: { start: { line: number; character: number }; end: { line: number; character: number } } }[];
}

/** Result of `tether/prompt`, sent when the turn ends. */
export interface PromptResult {
  sessionId: SessionId;
  turnId: TurnId;
  stopReason: StopReason;
  text: string;
  error?: string;
}

/** One entry of `tether/sessions`. */
export interface SessionInfo {
  id: SessionId;
  title: string;
  parentId?: SessionId;
  createdAt: string;
  updatedAt: string;
  messageCount: number;
  snippet?: string;
}

/** One message of `tether/history`. */
export interface HistoryMessage {
  role: Role;
  text: string;
  toolCalls?: unknown;
  toolCallId?: string;
  createdAt?: string;
}
