// The chat view's page. The extension sends `reset` (whole transcript),
// `upsert` (changed top-level entries), `busy`, `title` and `focus`; this page
// sends `ready`, `send`, `stop`, `new` and `sessions`. Assistant text arrives
// as HTML rendered (and made safe) by the extension; everything else is
// escaped here.
// @ts-check
(function () {
  // @ts-expect-error: the webview defines it
  const vscode = acquireVsCodeApi();
  const log = /** @type {HTMLElement} */ (document.getElementById('log'));
  const prompt = /** @type {HTMLTextAreaElement} */ (document.getElementById('prompt'));
  const form = /** @type {HTMLFormElement} */ (document.getElementById('composer'));
  const send = /** @type {HTMLButtonElement} */ (document.getElementById('send'));
  const stop = /** @type {HTMLButtonElement} */ (document.getElementById('stop'));
  const activity = /** @type {HTMLElement} */ (document.getElementById('activity'));
  const activityText = /** @type {HTMLElement} */ (document.getElementById('activity-text'));
  const title = /** @type {HTMLElement} */ (document.getElementById('session-title'));
  const hint = /** @type {HTMLElement} */ (document.getElementById('hint'));

  /** Tool rows and subagents the person opened (or closed), by entry id. */
  const openState = new Map();
  let busy = false;

  const state = vscode.getState() || {};
  if (state.draft) prompt.value = state.draft;

  function esc(s) {
    return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  }

  /** Escaped text with `backticked` spans as code (server titles use them). */
  function inline(s) {
    return esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');
  }

  const STATUS_LABEL = {
    pending: 'pending',
    running: 'running',
    completed: 'done',
    failed: 'failed',
    denied: 'denied',
    cancelled: 'cancelled',
    asked: 'asked',
    allowed: 'allowed',
    timed_out: 'timed out',
  };

  function badge(status) {
    return `<span class="badge status-${esc(status)}">${esc(STATUS_LABEL[status] || status)}</span>`;
  }

  function isOpen(id, fallback) {
    return openState.has(id) ? openState.get(id) : fallback;
  }

  function renderEntry(e) {
    switch (e.type) {
      case 'user':
        return `<div class="msg user" data-id="${esc(e.id)}"><div class="who">You${e.context ? ` <span class="ctx">about ${esc(e.context)}</span>` : ''}</div><div class="text">${esc(e.text)}</div></div>`;
      case 'assistant':
        return `<div class="msg assistant${e.streaming ? ' streaming' : ''}" data-id="${esc(e.id)}"><div class="who">Tether</div><div class="md">${e.html || ''}</div></div>`;
      case 'tool': {
        const open = isOpen(e.id, false);
        const body = [
          e.inputText ? `<div class="label">Input</div><pre class="input">${esc(e.inputText)}</pre>` : '',
          e.output !== undefined && e.output !== null
            ? `<div class="label">Output</div><pre class="output">${esc(e.output) || '<span class="muted">(no output)</span>'}</pre>`
            : '',
        ].join('');
        return `<details class="tool status-${esc(e.status)}" data-id="${esc(e.id)}" data-tool="${esc(e.tool)}"${open ? ' open' : ''}>
<summary>${badge(e.status)}<span class="tool-name">${esc(e.tool)}</span><span class="tool-title">${inline(e.title)}</span>${e.agent ? `<span class="agent">${esc(e.agent)}</span>` : ''}</summary>
<div class="body">${body || '<span class="muted">No details yet.</span>'}</div></details>`;
      }
      case 'approval':
        return `<div class="approval status-${esc(e.status)}" data-id="${esc(e.id)}">${badge(e.status)}<span class="label">Approval</span>${
          e.command ? `<code>${esc(e.command)}</code>` : ''
        }<span class="reason">${inline(e.reason)}</span>${e.agent ? `<span class="agent">${esc(e.agent)}</span>` : ''}</div>`;
      case 'subagent': {
        const open = isOpen(e.id, true);
        const kids = (e.children || []).map(renderEntry).join('');
        return `<details class="subagent status-${esc(e.status)}" data-id="${esc(e.id)}"${open ? ' open' : ''}>
<summary>${badge(e.status)}<span class="label">Subagent</span><span class="goal">${inline(e.goal)}</span></summary>
<div class="children">${kids}${e.summaryHtml ? `<div class="summary md">${e.summaryHtml}</div>` : ''}</div></details>`;
      }
      case 'plan':
        return `<div class="plan" data-id="${esc(e.id)}"><div class="label">Plan</div><ul>${(e.entries || [])
          .map(
            (p) =>
              `<li class="plan-${esc(p.status)}"><span class="check">${p.status === 'completed' ? '☑' : p.status === 'in_progress' ? '◐' : '☐'}</span>${esc(p.content)}</li>`,
          )
          .join('')}</ul></div>`;
      case 'notice':
        return `<div class="notice ${esc(e.level)}" data-id="${esc(e.id)}">${inline(e.text)}</div>`;
      default:
        return '';
    }
  }

  function atBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }

  function toElement(html) {
    const t = document.createElement('template');
    t.innerHTML = html.trim();
    return /** @type {HTMLElement} */ (t.content.firstElementChild);
  }

  function upsert(entries) {
    const stick = atBottom();
    for (const e of entries) {
      const html = renderEntry(e);
      if (!html) continue;
      const el = toElement(html);
      const old = log.querySelector(`:scope > [data-id="${CSS.escape(e.id)}"]`);
      if (old) old.replaceWith(el);
      else log.appendChild(el);
    }
    updateEmpty();
    if (stick) log.scrollTop = log.scrollHeight;
  }

  function updateEmpty() {
    const empty = log.querySelector(':scope > .empty');
    const hasEntries = log.querySelector(':scope > [data-id]');
    if (!hasEntries && !empty) {
      log.appendChild(
        toElement(
          '<div class="empty">Ask Tether to read, change or run something in this workspace. Dangerous commands ask you first.</div>',
        ),
      );
    } else if (hasEntries && empty) {
      empty.remove();
    }
  }

  function setBusy(b, text) {
    busy = b;
    activity.hidden = !b;
    activityText.textContent = text || 'Working…';
    stop.disabled = !b;
    send.disabled = b;
    hint.textContent = b ? 'A turn is running — Stop it or wait.' : '';
  }

  log.addEventListener(
    'toggle',
    (ev) => {
      const d = /** @type {HTMLElement} */ (ev.target);
      if (d instanceof HTMLDetailsElement && d.dataset.id) openState.set(d.dataset.id, d.open);
    },
    true,
  );

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
  });
  prompt.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submit();
    }
  });
  prompt.addEventListener('input', () => vscode.setState({ ...state, draft: prompt.value }));

  function submit() {
    const text = prompt.value.trim();
    if (!text || busy) return;
    vscode.postMessage({ type: 'send', text });
    prompt.value = '';
    vscode.setState({ ...state, draft: '' });
  }

  stop.addEventListener('click', () => vscode.postMessage({ type: 'stop' }));
  document.getElementById('new')?.addEventListener('click', () => vscode.postMessage({ type: 'new' }));
  document.getElementById('sessions')?.addEventListener('click', () => vscode.postMessage({ type: 'sessions' }));

  window.addEventListener('message', (ev) => {
    const m = ev.data;
    switch (m.type) {
      case 'reset':
        log.innerHTML = '';
        openState.clear();
        title.textContent = m.title || 'New session';
        title.title = m.sessionId ? `Session ${m.sessionId}` : 'A new session starts with your first prompt';
        upsert(m.entries || []);
        log.scrollTop = log.scrollHeight;
        break;
      case 'upsert':
        upsert(m.entries || []);
        break;
      case 'busy':
        setBusy(!!m.busy, m.text);
        break;
      case 'title':
        title.textContent = m.title || 'Session';
        if (m.sessionId) title.title = `Session ${m.sessionId}`;
        break;
      case 'focus':
        if (typeof m.text === 'string') prompt.value = m.text;
        prompt.focus();
        break;
    }
  });

  setBusy(false);
  updateEmpty();
  vscode.postMessage({ type: 'ready' });
})();
