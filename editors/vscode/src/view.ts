// Transcript entries → what the webview draws. Markdown is rendered here (in
// the extension host) so the webview runs no Markdown library; everything
// else is plain data the webview escapes itself. Pure logic (no `vscode`).

import { Entry, Update } from './transcript';
import { renderMarkdown } from './markdown';

export type ViewEntry = Entry & { html?: string; summaryHtml?: string; children?: ViewEntry[]; inputText?: string };

/** Pretty input for a tool row: the command for run_command, JSON otherwise. */
export function inputText(tool: string, input: unknown): string | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input === 'string') return input;
  const o = input as Record<string, unknown>;
  if (tool === 'run_command' && typeof o.command === 'string') {
    const cwd = typeof o.cwd === 'string' ? `  (in ${o.cwd})` : '';
    return `$ ${o.command}${cwd}`;
  }
  try {
    return JSON.stringify(input, null, 2);
  } catch {
    return String(input);
  }
}

export function toView(e: Entry): ViewEntry {
  switch (e.type) {
    case 'assistant':
      return { ...e, html: renderMarkdown(e.text) };
    case 'subagent':
      return {
        ...e,
        summaryHtml: e.summary ? renderMarkdown(e.summary) : undefined,
        children: e.children.map(toView),
      } as ViewEntry;
    case 'tool':
      return { ...e, inputText: inputText(e.tool, e.input) };
    default:
      return { ...e };
  }
}

/** A label for the context a prompt was asked about: `src/a.ts:3-10`. */
export function contextLabel(relPath: string, startLine?: number, endLine?: number): string {
  if (startLine === undefined) return relPath;
  const a = startLine + 1;
  const b = (endLine ?? startLine) + 1;
  return a === b ? `${relPath}:${a}` : `${relPath}:${a}-${b}`;
}

/** The status line for an update (undefined: unchanged). */
export function activityFor(u: Update): string | undefined {
  switch (u.kind) {
    case 'text':
      return 'Replying…';
    case 'toolCall':
      if (u.status === 'running' || u.status === 'pending') return `Running ${u.title || u.tool}…`;
      return 'Thinking…';
    case 'approval':
      return u.status === 'asked' ? 'Waiting for your approval…' : 'Working…';
    case 'subagent':
      return `Subagent: ${u.goal}`;
    default:
      return undefined;
  }
}
