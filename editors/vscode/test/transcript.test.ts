import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statusFromOutput, toolTitle, Transcript, Update } from '../src/transcript';

const S = 'session-1';
const T = 'turn-1';
const up = (u: Record<string, unknown>): Update => ({ sessionId: S, turnId: T, ...u }) as Update;

function types(t: Transcript) {
  return t.entries.map((e) => e.type);
}

test('streamed text deltas build one assistant message until a tool call', () => {
  const t = new Transcript(S);
  t.addUser('delete build');
  t.apply(up({ kind: 'text', delta: 'Hello ' }));
  t.apply(up({ kind: 'text', delta: 'from the scripted model' }));
  assert.deepEqual(types(t), ['user', 'assistant']);
  const a = t.entries[1];
  assert.equal(a.type === 'assistant' && a.text, 'Hello from the scripted model');
  assert.equal(a.type === 'assistant' && a.streaming, true);

  t.apply(
    up({
      kind: 'toolCall',
      toolCallId: 'c1',
      tool: 'run_command',
      title: 'run rm -rf build',
      status: 'pending',
      input: { command: 'rm -rf build' },
    }),
  );
  assert.equal(a.type === 'assistant' && a.streaming, false, 'a tool call closes the streamed text');
  t.apply(up({ kind: 'text', delta: 'Done.' }));
  assert.deepEqual(types(t), ['user', 'assistant', 'tool', 'assistant']);
});

test('a tool call goes pending → running → completed, keeping its input and taking its output', () => {
  const t = new Transcript(S);
  t.apply(up({ kind: 'toolCall', toolCallId: 'c1', tool: 'run_command', title: 'run ls', status: 'pending', input: { command: 'ls' } }));
  t.apply(up({ kind: 'toolCall', toolCallId: 'c1', tool: 'run_command', title: 'run ls', status: 'running' }));
  t.apply(up({ kind: 'toolCall', toolCallId: 'c1', tool: 'run_command', title: 'run ls', status: 'running', output: 'a\n' }));
  t.apply(up({ kind: 'toolCall', toolCallId: 'c1', tool: 'run_command', title: 'run ls', status: 'completed', output: 'a\nb\n' }));
  // A late "running" must not reopen a finished call.
  t.apply(up({ kind: 'toolCall', toolCallId: 'c1', tool: 'run_command', title: 'run ls', status: 'running' }));
  assert.equal(t.entries.length, 1);
  const e = t.entries[0];
  assert.equal(e.type, 'tool');
  if (e.type !== 'tool') return;
  assert.equal(e.status, 'completed');
  assert.deepEqual(e.input, { command: 'ls' });
  assert.equal(e.output, 'a\nb\n');
});

test('a compaction is one line in the chat, saying why and what was shortened', () => {
  const t = new Transcript(S);
  t.apply(up({ kind: 'text', delta: 'partial' }));
  t.apply(
    up({
      kind: 'compaction',
      reason: 'budget',
      tokensBefore: 13900,
      tokensAfter: 4100,
      window: 16384,
      prunedOutputs: 12,
      summarizedMessages: 30,
    }),
  );
  const e = t.entries[t.entries.length - 1];
  assert.ok(e.type === 'notice' && e.level === 'info');
  assert.equal(
    e.text,
    "Context compacted (it neared the model's window of 16384 tokens): about 13900 → 4100 tokens; 12 old tool outputs shortened, 30 messages summarised. The full history is kept.",
  );
});

test('approvals are one row that changes status', () => {
  const t = new Transcript(S);
  t.apply(up({ kind: 'approval', approvalId: 'ap1', status: 'asked', command: 'rm -rf build', reason: 'recursive delete' }));
  t.apply(up({ kind: 'approval', approvalId: 'ap1', status: 'allowed', reason: 'allowed once by the person' }));
  assert.equal(t.entries.length, 1);
  const e = t.entries[0];
  assert.ok(e.type === 'approval' && e.status === 'allowed' && e.command === 'rm -rf build');
});

test('subagents nest their tool calls, by child session or by agent label', () => {
  const t = new Transcript(S);
  t.apply(up({ kind: 'subagent', childSessionId: 'child-1', goal: 'read the docs', status: 'running' }));
  // Updates from the child session itself.
  t.apply({
    sessionId: 'child-1',
    turnId: 'x',
    kind: 'toolCall',
    toolCallId: 'k1',
    tool: 'read_file',
    title: 'read README.md',
    status: 'running',
  });
  // Updates on the parent session labelled with the agent.
  t.apply(up({ kind: 'toolCall', toolCallId: 'k2', tool: 'search', title: 'search TODO', status: 'running', agent: 'read the docs' }));
  t.apply(up({ kind: 'subagent', childSessionId: 'child-1', goal: 'read the docs', status: 'completed', summary: 'It says hi.' }));
  assert.deepEqual(types(t), ['subagent']);
  const sub = t.entries[0];
  assert.ok(sub.type === 'subagent');
  if (sub.type !== 'subagent') return;
  assert.deepEqual(
    sub.children.map((c) => c.id),
    ['tool:k1', 'tool:k2'],
  );
  assert.equal(sub.status, 'completed');
  assert.equal(sub.summary, 'It says hi.');
  assert.ok(t.accepts({ sessionId: 'child-1', turnId: 'x' }));
  assert.ok(!t.accepts({ sessionId: 'other', turnId: 'x' }));

  // An agent label with no subagent update yet gets its own group.
  t.apply(up({ kind: 'toolCall', toolCallId: 'k3', tool: 'list_dir', title: 'list .', status: 'running', agent: 'subagent 2' }));
  assert.deepEqual(types(t), ['subagent', 'subagent']);
});

test('takeChanged reports only the top-level entries that changed', () => {
  const t = new Transcript(S);
  t.addUser('hi');
  t.apply(up({ kind: 'text', delta: 'a' }));
  assert.deepEqual(
    t.takeChanged().map((e) => e.type),
    ['user', 'assistant'],
  );
  t.apply(up({ kind: 'text', delta: 'b' }));
  assert.deepEqual(
    t.takeChanged().map((e) => e.type),
    ['assistant'],
  );
  assert.deepEqual(t.takeChanged(), []);
  t.apply(up({ kind: 'subagent', childSessionId: 'c', goal: 'g', status: 'running' }));
  t.takeChanged();
  t.apply({ sessionId: 'c', turnId: 'x', kind: 'toolCall', toolCallId: 'k', tool: 'search', title: 's', status: 'running' });
  assert.deepEqual(
    t.takeChanged().map((e) => e.id),
    ['sub:c'],
    'a nested change re-renders its subagent',
  );
});

test('the turn end stops streaming; the result adds text only when none streamed, and says why it stopped', () => {
  const t = new Transcript(S);
  t.apply(up({ kind: 'text', delta: 'partial' }));
  t.apply(up({ kind: 'turnEnd', stopReason: 'cancelled' }));
  t.finishTurn({ turnId: T, stopReason: 'cancelled', text: 'partial' });
  assert.deepEqual(types(t), ['assistant', 'notice']);
  const a = t.entries[0];
  assert.ok(a.type === 'assistant' && !a.streaming);
  const n = t.entries[1];
  assert.ok(n.type === 'notice' && n.text === 'Stopped.');

  const quiet = new Transcript(S);
  quiet.finishTurn({ turnId: 'turn-9', stopReason: 'end_turn', text: 'all at once' });
  assert.deepEqual(types(quiet), ['assistant']);
  const failed = new Transcript(S);
  failed.finishTurn({ turnId: 'turn-9', stopReason: 'error', text: '', error: 'model endpoint down' });
  assert.ok(failed.entries[0].type === 'notice' && failed.entries[0].level === 'error' && failed.entries[0].text === 'model endpoint down');
});

test('history becomes the same rows: prompts, replies, tool calls with their results', () => {
  const t = new Transcript(S);
  t.loadHistory([
    { role: 'user', text: 'delete build', createdAt: '2025-01-01T00:00:00Z' },
    {
      role: 'assistant',
      text: '',
      toolCalls: [{ id: 'c1', type: 'function', function: { name: 'run_command', arguments: '{"command":"rm -rf build"}' } }],
      createdAt: '',
    },
    { role: 'tool', text: 'exit code 0', toolCallId: 'c1', createdAt: '' },
    { role: 'assistant', text: 'Deleted.', createdAt: '' },
  ]);
  assert.deepEqual(types(t), ['user', 'tool', 'assistant']);
  const tool = t.entries[1];
  assert.ok(tool.type === 'tool');
  if (tool.type !== 'tool') return;
  assert.equal(tool.title, 'Run `rm -rf build`');
  assert.equal(tool.output, 'exit code 0');
  assert.equal(tool.status, 'completed');
  assert.deepEqual(tool.input, { command: 'rm -rf build' });
});

test('updates of other sessions are not accepted; a transcript without a session accepts none', () => {
  assert.ok(!new Transcript().accepts({ sessionId: S, turnId: T }));
  assert.ok(new Transcript(S).accepts({ sessionId: S, turnId: T }));
});

test('stored tool titles and statuses', () => {
  assert.equal(toolTitle('read_file', { path: 'a.rs' }), 'Read a.rs');
  assert.equal(toolTitle('search', { pattern: 'TODO' }), 'Search /TODO/');
  assert.equal(toolTitle('delegate', { goal: 'tidy up' }), 'Delegate: tidy up');
  assert.equal(toolTitle('delegate', { tasks: [{ goal: 'a' }, { goal: 'b' }] }), 'Delegate 2 tasks');
  assert.equal(toolTitle('mystery', {}), 'mystery');
  assert.equal(statusFromOutput('Denied by the person'), 'denied');
  assert.equal(statusFromOutput('ok'), 'completed');
});
