// A scripted OpenAI-compatible model for the end-to-end test: POST
// /v1/chat/completions answers with the next scripted response as an SSE
// stream (`data: {chunk}` … `data: [DONE]`), and every request is recorded.
//
// A script is a list of functions `(request body) => response`, one per model
// call, where a response is `{ text, chunkDelayMs? }` (streamed in pieces) or
// `{ toolCalls: [{ name, arguments }] }`.
'use strict';

const http = require('node:http');

function chunk(id, delta, finishReason, usage) {
  const c = {
    id,
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model: 'scripted',
    choices: [{ index: 0, delta, finish_reason: finishReason ?? null }],
  };
  if (usage) c.usage = usage;
  return `data: ${JSON.stringify(c)}\n\n`;
}

/** Splits text into a few pieces so the editor sees it stream. */
function pieces(text, n) {
  const out = [];
  const size = Math.max(1, Math.ceil(text.length / n));
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts the model on 127.0.0.1 (a free port). Returns
 * `{ url, requests, close() }`; `url` ends in `/v1`.
 */
async function startScriptedModel(script) {
  const requests = [];
  let next = 0;
  const server = http.createServer(async (req, res) => {
    if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
      return;
    }
    let raw = '';
    for await (const part of req) raw += part;
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      res.writeHead(400).end();
      return;
    }
    requests.push(body);
    const step = script[next++];
    if (!step) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `the script has no response #${next}` } }));
      return;
    }
    const answer = step(body);
    const id = `chatcmpl-${next}`;
    let closed = false;
    res.on('close', () => (closed = true));
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(chunk(id, { role: 'assistant' }));
    if (answer.text !== undefined) {
      for (const p of pieces(answer.text, answer.pieces ?? 6)) {
        await sleep(answer.chunkDelayMs ?? 0);
        if (closed) return; // the client hung up (a cancelled turn)
        res.write(chunk(id, { content: p }));
      }
      res.write(chunk(id, {}, 'stop', { prompt_tokens: 10, completion_tokens: answer.text.length }));
    } else {
      answer.toolCalls.forEach((call, index) => {
        const args = typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments);
        const callId = call.id ?? `call_${next}_${index}`;
        res.write(chunk(id, { tool_calls: [{ index, id: callId, type: 'function', function: { name: call.name, arguments: '' } }] }));
        // Arguments arrive split, as real providers send them.
        for (const p of pieces(args, 3)) res.write(chunk(id, { tool_calls: [{ index, function: { arguments: p } }] }));
      });
      res.write(chunk(id, {}, 'tool_calls', { prompt_tokens: 10, completion_tokens: 5 }));
    }
    res.write('data: [DONE]\n\n');
    res.end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    /** How many scripted responses were used. */
    used: () => next,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** The last message of a request, for scripts that answer to it. */
function lastMessage(body) {
  return body.messages[body.messages.length - 1];
}

module.exports = { startScriptedModel, lastMessage };
