// Agent edits into open documents (docs/PROTOCOL.md, "Agent edits and open
// buffers"): Tether never writes the disk behind an open document; an
// agent's edit arrives only as `workspace/applyEdit` with the label below.
// When the document had no unsaved changes before the edit, the extension
// saves it before answering, so the commands the agent runs next see it and
// Ctrl+Z, save, revert and close behave as after the person's own saved edit.
// A document with the person's unsaved changes is left unsaved (saving would
// save their half-done text); Tether tells the model so.
//
// The decisions are here, without `vscode`, so the unit tests can run them.

/** The `label` Tether gives an agent's file edit; chat-file writes carry another. */
export const AGENT_EDIT_LABEL = 'Tether: agent edit';

/** The parts of an LSP `WorkspaceEdit` this module reads. */
export interface LspWorkspaceEdit {
  changes?: { [uri: string]: unknown[] };
  documentChanges?: Array<{ textDocument?: { uri?: string; version?: number | null }; kind?: string }>;
}

/** The documents (LSP uris) a workspace edit changes, each once. */
export function touchedUris(edit: LspWorkspaceEdit): string[] {
  const uris: string[] = [];
  for (const c of edit.documentChanges ?? []) {
    const uri = c.textDocument?.uri;
    if (typeof uri === 'string' && !uris.includes(uri)) uris.push(uri);
  }
  for (const uri of Object.keys(edit.changes ?? {})) {
    if (!uris.includes(uri)) uris.push(uri);
  }
  return uris;
}

/**
 * Whether a versioned edit was made for another version of an open
 * document than the one it has now (then it is refused, as the language
 * client's default handler does). `versionOf` gives an open document's
 * version, undefined when it is not open.
 */
export function versionMismatch(edit: LspWorkspaceEdit, versionOf: (uri: string) => number | undefined): boolean {
  for (const c of edit.documentChanges ?? []) {
    const uri = c.textDocument?.uri;
    const want = c.textDocument?.version;
    if (typeof uri !== 'string' || typeof want !== 'number' || want < 0) continue;
    const have = versionOf(uri);
    if (have !== undefined && have !== want) return true;
  }
  return false;
}

/**
 * The documents to save once the edit is applied: for an agent edit, those
 * open and clean before it. `dirtyBefore` says whether an open document had
 * unsaved changes (undefined: not open). Chat-file writes are never saved.
 */
export function documentsToSave(
  label: string | undefined,
  edit: LspWorkspaceEdit,
  dirtyBefore: (uri: string) => boolean | undefined,
): string[] {
  if (label !== AGENT_EDIT_LABEL) return [];
  return touchedUris(edit).filter((uri) => dirtyBefore(uri) === false);
}
