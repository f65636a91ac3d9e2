import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT_EDIT_LABEL, documentsToSave, touchedUris, versionMismatch } from '../src/agentEdits';

const versioned = (uri: string, version: number | null) => ({
  documentChanges: [{ textDocument: { uri, version }, edits: [] }],
});

test('an agent edit saves the documents that were clean before it, and only those', () => {
  const edit = {
    documentChanges: [
      { textDocument: { uri: 'file:///w/clean.rs', version: 3 }, edits: [] },
      { textDocument: { uri: 'file:///w/dirty.rs', version: 5 }, edits: [] },
      { textDocument: { uri: 'file:///w/closed.rs', version: null }, edits: [] },
    ],
  };
  const dirty = (uri: string) => (({ 'file:///w/clean.rs': false, 'file:///w/dirty.rs': true }) as Record<string, boolean>)[uri];
  assert.deepEqual(documentsToSave(AGENT_EDIT_LABEL, edit, dirty), ['file:///w/clean.rs']);
});

test("Tether's chat-file writes and other servers' edits are never saved", () => {
  const edit = { changes: { 'file:///w/notes.tether.md': [] } };
  for (const label of ['Tether', undefined, 'Rename', 'tether: agent edit']) {
    assert.deepEqual(
      documentsToSave(label, edit, () => false),
      [],
      String(label),
    );
  }
});

test('the touched documents come from changes and documentChanges, once each', () => {
  assert.deepEqual(
    touchedUris({
      changes: { 'file:///a': [], 'file:///b': [] },
      documentChanges: [{ textDocument: { uri: 'file:///b', version: 1 } }, { kind: 'create' }],
    }),
    ['file:///b', 'file:///a'],
  );
  assert.deepEqual(touchedUris({}), []);
});

test('a versioned edit for another version of an open document is refused', () => {
  const open = (v: number) => (uri: string) => (uri === 'file:///a' ? v : undefined);
  assert.equal(versionMismatch(versioned('file:///a', 4), open(4)), false);
  assert.equal(versionMismatch(versioned('file:///a', 4), open(5)), true);
  // Unversioned, or a document that is not open: nothing to compare.
  assert.equal(versionMismatch(versioned('file:///a', null), open(5)), false);
  assert.equal(versionMismatch(versioned('file:///b', 4), open(5)), false);
});
