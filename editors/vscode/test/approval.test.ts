import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  APPROVAL_ACTIONS,
  approvalDialog,
  isApprovalRequest,
  parseApprovalMessage,
  replyFor,
  ShowMessageRequestParams,
} from '../src/approval';
import { APPROVAL_CHOICES, ApprovalItem } from '../src/protocol';

// What tether sends (src/gate/mod.rs Question::message and src/lsp/asker.rs).
const commandMessage =
  'Tether wants to run:\n\n    rm -rf build\n\nin /work/project\n\nWhy it asks: recursive delete (rm -r)\nAsked by: the main agent\n\n' +
  '"Allow for session" and "Always allow" apply to this exact command.';
const editMessage =
  'Tether wants to write /etc/hosts\n\nWhy it asks: outside the workspace\nAsked by: subagent 1 (tidy)\n\n' +
  '"Allow for session" and "Always allow" apply to this exact path.';

function request(message: string, id = 'ap-1'): ShowMessageRequestParams {
  return { type: 2, message, actions: APPROVAL_ACTIONS.map((title) => ({ title, approvalId: id })) };
}

test("tether's approvals are recognised; other message requests are not", () => {
  assert.ok(isApprovalRequest(request(commandMessage)));
  // A client that dropped additional properties still sends the four titles back.
  assert.ok(isApprovalRequest({ type: 2, message: 'x', actions: APPROVAL_ACTIONS.map((title) => ({ title })) }));
  assert.ok(!isApprovalRequest({ type: 1, message: 'Model endpoint down', actions: [{ title: 'Retry' }] }));
  assert.ok(!isApprovalRequest({ type: 3, message: 'hello' }));
  assert.ok(!isApprovalRequest({ type: 2, message: 'x', actions: [{ title: 'Allow once' }, { title: 'Deny' }] }));
  assert.ok(!isApprovalRequest(null));
});

test('the message is read into command, directory, reason and agent', () => {
  const info = parseApprovalMessage(commandMessage);
  assert.equal(info.kind, 'command');
  assert.equal(info.action, 'rm -rf build');
  assert.equal(info.cwd, '/work/project');
  assert.equal(info.reason, 'recursive delete (rm -r)');
  assert.equal(info.agent, 'the main agent');
  assert.match(info.scopeNote ?? '', /exact command/);

  const multi = parseApprovalMessage(
    'Tether wants to run:\n\n    git push --force \\\n      origin main\n\nin /w\n\nWhy it asks: force push\nAsked by: the main agent',
  );
  assert.equal(multi.action, 'git push --force \\\n  origin main');

  const edit = parseApprovalMessage(editMessage);
  assert.equal(edit.kind, 'edit');
  assert.equal(edit.action, '/etc/hosts');
  assert.equal(edit.agent, 'subagent 1 (tidy)');
  assert.equal(parseApprovalMessage('something else').kind, 'unknown');
});

test('the modal dialog shows command, directory, reason and agent, with the four actions, Deny the default', () => {
  const d = approvalDialog(request(commandMessage));
  assert.equal(d.message, 'Tether wants to run: rm -rf build');
  assert.match(d.detail, /^Command: rm -rf build$/m);
  assert.match(d.detail, /^Directory: \/work\/project$/m);
  assert.match(d.detail, /^Why it asks: recursive delete \(rm -r\)$/m);
  assert.match(d.detail, /^Asked by: the main agent$/m);
  assert.deepEqual(
    d.items.map((i) => i.title),
    ['Deny', 'Allow once', 'Allow for session', 'Always allow'],
    'the first button is the default (Enter): the harmless one',
  );
  assert.ok(d.items.every((i) => i.approvalId === 'ap-1'));
});

test('the structured approval update fills in what the message lacks', () => {
  const d = approvalDialog(request('Please approve'), {
    approvalId: 'ap-1',
    command: 'curl x | sh',
    reason: 'pipes a download into a shell',
    agent: 'subagent 2',
  });
  assert.match(d.detail, /^Command: curl x \| sh$/m);
  assert.match(d.detail, /^Why it asks: pipes a download into a shell$/m);
  assert.match(d.detail, /^Asked by: subagent 2$/m);
});

test('an unknown shape still shows the whole server message', () => {
  const d = approvalDialog(request('Do the thing?'));
  assert.equal(d.message, 'Tether asks for approval');
  assert.match(d.detail, /Do the thing\?/);
});

test('a long command is clipped in the headline but complete in the detail', () => {
  const long = 'rm -rf ' + 'x/'.repeat(100);
  const d = approvalDialog(request(`Tether wants to run:\n\n    ${long}\n\nin /w\n\nWhy it asks: r\nAsked by: the main agent`));
  assert.ok(d.message.length < 150);
  assert.ok(d.message.endsWith('…'));
  assert.ok(d.detail.includes(long));
});

test("the reply is the server's own item (with approvalId), or null when dismissed", () => {
  const p = request(commandMessage, 'ap-9');
  assert.deepEqual(replyFor(p, { title: 'Allow once' }), { title: 'Allow once', approvalId: 'ap-9' });
  assert.deepEqual(replyFor(p, { title: 'Deny' }), { title: 'Deny', approvalId: 'ap-9' });
  assert.equal(replyFor(p, undefined), null);
  assert.equal(replyFor(p, { title: 'Cancel' }), null);
});

// What a current server sends: every item carries the question, structured
// (ApprovalItem in src/protocol.ts), and the message is for people.
function structured(message: string, fields: Partial<ApprovalItem>, id = 'ap-7'): ShowMessageRequestParams {
  return {
    type: 2,
    message,
    actions: APPROVAL_CHOICES.map(({ choice, title }) => ({ title, approvalId: id, choice, ...fields })),
  };
}

test('the dialog shows command, directory, reason and agent whatever the message says', () => {
  const fields: Partial<ApprovalItem> = {
    kind: 'command',
    action: 'rm -rf build',
    cwd: '/work/project',
    reason: 'recursive delete (rm -r)',
    agent: 'subagent 2 of 3: tidy',
  };
  // The English wording changed (or is translated): nothing of it is parsed.
  for (const message of [
    'Tether möchte ausführen: rm -rf build (in /work/project)',
    'Run this?\n\n    rm -rf build\n\nat /work/project\n\nReason: recursive delete',
    '',
  ]) {
    const d = approvalDialog(structured(message, fields));
    assert.equal(d.message, 'Tether wants to run: rm -rf build');
    assert.match(d.detail, /^Command: rm -rf build$/m);
    assert.match(d.detail, /^Directory: \/work\/project$/m);
    assert.match(d.detail, /^Why it asks: recursive delete \(rm -r\)$/m);
    assert.match(d.detail, /^Asked by: subagent 2 of 3: tidy$/m);
    assert.match(d.detail, /apply to this exact command/);
    assert.deepEqual(
      d.items.map((i) => i.choice),
      ['deny', 'allow_once', 'allow_session', 'always_allow'],
    );
    assert.ok(d.items.every((i) => i.approvalId === 'ap-7'));
  }
  // The main agent is not named in the items.
  const main = approvalDialog(structured('x', { ...fields, agent: undefined }));
  assert.match(main.detail, /^Asked by: the main agent$/m);
});

test('an edit is shown as the file it writes, and the scope note says path', () => {
  const d = approvalDialog(
    structured('Schreiben?', { kind: 'edit', action: '/etc/hosts', cwd: '/work/project', reason: 'outside the workspace' }),
  );
  assert.equal(d.message, 'Tether wants to write /etc/hosts');
  assert.match(d.detail, /^File: \/etc\/hosts$/m);
  assert.match(d.detail, /^Why it asks: outside the workspace$/m);
  assert.match(d.detail, /apply to this exact path/);
});

test('a read is shown as the file it reads (a link with its target), and the scope note says directory', () => {
  const d = approvalDialog(
    structured('Lesen?', {
      kind: 'read',
      action: 'notes.md → ~/.ssh/id_rsa',
      cwd: '/work/project',
      reason: 'read of a file that holds keys or credentials (asked every time)',
    }),
  );
  assert.equal(d.message, 'Tether wants to read notes.md → ~/.ssh/id_rsa');
  assert.match(d.detail, /^File: notes\.md → ~\/\.ssh\/id_rsa$/m);
  assert.match(d.detail, /apply to this directory and below/);
});

test('the reply is the chosen item with its choice, so the server reads the button, not the title', () => {
  const p = structured('x', { kind: 'command', action: 'ls', cwd: '/w', reason: 'r' });
  const reply = replyFor(p, { title: 'Always allow' });
  assert.equal(reply?.choice, 'always_allow');
  assert.equal(reply?.approvalId, 'ap-7');
  // The buttons are the server's four, in the server's order, with the titles the dialog shows.
  assert.deepEqual(
    APPROVAL_CHOICES.map((c) => c.title),
    [...APPROVAL_ACTIONS],
  );
});
