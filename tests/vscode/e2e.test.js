// The Tether extension in a real VS Code: code-server serves the workbench,
// headless Chromium (Debian's, driven by playwright-core) is the person, and
// a scripted OpenAI-compatible model is the agent's brain.
//
// The story: the person opens the Tether chat, says hello and watches the
// reply stream in; then asks to delete build/. The model calls
// run_command `rm -rf build`; Tether asks the editor; a modal dialog shows
// the command, the directory, the reason and the agent; the person clicks
// "Allow once"; build/ is gone and the chat shows the command's result.
// Then: the session is found again in the searchable history; a second
// dangerous command's dialog is dismissed (Escape), which is a deny — dist/
// stays and the model is told; Stop cancels a slow reply; a settings change
// restarts the server with the new initializationOptions and "Tether: Ask"
// continues the session; a reply with a remote image is shown with a link in
// its place and the webview sends no request; an agent edit to an open file
// is saved when the file was clean and left unsaved beside the person's own
// unsaved text, and Ctrl+Z, Revert File and Ctrl+S behave as after the
// person's own edit; a missing binary gives a clear message.
//
// Environment: CODE_SERVER (the code-server executable; default: the one
// .ci/vscode-e2e.sh installs), TETHER_VSIX (the packaged extension),
// TETHER_BIN (the tether binary), CHROMIUM (default /usr/bin/chromium),
// KEEP_E2E_TMP=1 keeps the temp dir. Screenshots and logs go to
// tests/vscode/artifacts/ (a failing step saves the page too).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const http = require('node:http');
const { spawn, execFile } = require('node:child_process');
const { chromium } = require('playwright-core');
const { startScriptedModel, lastMessage } = require('./scripted-model');

const ARTIFACTS = path.join(__dirname, 'artifacts');
const CACHED_CODE_SERVER = path.join(
  process.env.TETHER_CI_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'tether-ci'),
  'code-server-4.100.3/node_modules/.bin/code-server',
);
const CODE_SERVER = process.env.CODE_SERVER || (fs.existsSync(CACHED_CODE_SERVER) ? CACHED_CODE_SERVER : 'code-server');
const TETHER_VSIX = process.env.TETHER_VSIX || path.join(__dirname, '../../editors/vscode/tether.vsix');
const TETHER_BIN = process.env.TETHER_BIN || path.join(__dirname, '../../target/debug/tether');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT = 60_000;

const SLOW = Array.from({ length: 20 }, (_, i) => `${i + 1}`).join(', ') + '. Done counting.';
const CALC = 'first line\ntotal = a + b\nlast line\n';
const CALC_EDITED = 'first line\ntotal = sum(a, b)\nlast line\n';
const HELLO = 'Hello from the scripted model. I can read, change and run things in this workspace.';

let tmp;
let workspace;
let model;
let codeServer;
let codeServerLog = '';
let context;
let page;
let shot = 0;
let userData;
// A TCP listener standing in for an attacker's server: every connection to it
// (an image fetch would be one, TLS or not) is counted.
let bait;
const baitConnections = [];

function log(...args) {
  console.log(`[e2e ${new Date().toISOString().slice(11, 23)}]`, ...args);
}

async function screenshot(name) {
  shot += 1;
  const file = path.join(ARTIFACTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  log('screenshot', path.relative(process.cwd(), file));
  return file;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function run(cmd, args, opts) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { ...opts, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

async function waitForHttp(url, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const req = http.get(url, (res) => {
        res.resume();
        resolve(res.statusCode !== undefined && res.statusCode < 500);
      });
      req.on('error', () => resolve(false));
      req.setTimeout(2000, () => {
        req.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (codeServer && codeServer.exitCode !== null) throw new Error(`code-server exited (${codeServer.exitCode}):\n${codeServerLog}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer within ${ms} ms:\n${codeServerLog}`);
}

/** The environment for code-server (and so for the extension host and tether). */
function cleanEnv(home) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    // The server's environment overrides initializationOptions: keep the
    // machine's model settings out so the extension's settings are what counts.
    if (/^(TETHER_|OPENAI_)/.test(k) || k === 'VSCODE_IPC_HOOK_CLI') continue;
    env[k] = v;
  }
  return {
    ...env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_DATA_HOME: path.join(home, '.local/share'),
    XDG_CACHE_HOME: path.join(home, '.cache'),
    RUST_LOG: 'info',
  };
}

/** The Tether output channel's log (server stderr, LSP trace, the extension's notes). */
function tetherOutput() {
  const found = [];
  const walk = (d) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/Tether\.log$/.test(e.name)) found.push(p);
    }
  };
  walk(path.join(userData, 'logs'));
  return found.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
}

async function until(what, fn, ms = STEP_TIMEOUT) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Changes a setting the way a person does: in the Settings editor. */
async function setSetting(key, value) {
  await runCommand('Preferences: Open User Settings');
  const search = page.locator('.settings-editor .settings-header .suggest-input-container .monaco-editor').first();
  await search.waitFor({ state: 'visible' });
  await search.click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.type(key);
  const row = page.locator(`.settings-editor .setting-item-contents[data-key="${key}"], .settings-editor [data-key="${key}"] .setting-item-contents`).first();
  await row.waitFor({ state: 'visible' });
  const input = row.locator('.setting-item-control input').first();
  await input.fill(String(value));
  await input.press('Enter');
  await page.keyboard.press('ControlOrMeta+S').catch(() => {});
  // The Settings editor writes after a short debounce: wait until the value
  // is in the user's settings file.
  const file = path.join(userData, 'User', 'settings.json');
  await until(`${key} = ${value} in settings.json`, () => {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8'))[key] === value;
    } catch {
      return false;
    }
  });
}

async function closeEditors() {
  await runCommand('View: Close All Editors');
}

/** The chat view's frame (a webview: iframe in iframe). */
async function chatFrame() {
  const deadline = Date.now() + STEP_TIMEOUT;
  while (Date.now() < deadline) {
    for (const f of page.frames()) {
      try {
        if (await f.$('#composer #prompt')) return f;
      } catch {
        /* detached while we looked */
      }
    }
    await page.waitForTimeout(200);
  }
  throw new Error('the Tether chat view did not appear');
}

async function runCommand(title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  await input.fill(`>${title}`);
  await pickRow(title);
}

/**
 * Picks the row labelled exactly `label` in the open quick pick, by clicking
 * it (the widget must be open). Enter would take the *focused* row, which is not always this one: a
 * recently used "View: Close All Editors" is focused above "View: Close
 * Editor", and before the filter runs the focused row is whatever was there.
 */
async function pickRow(label) {
  const exact = new RegExp(`^\\s*${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
  const row = page
    .locator('.quick-input-widget .quick-input-list .monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: exact }) })
    .first();
  // The list re-renders as the filter runs, so a click can land where the row
  // was a moment ago and pick nothing. Accepting the row takes it away (the
  // widget hides, or shows the picked command's own input box), so click
  // until it is gone.
  await row.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  await until(`"${label}" picked in the quick pick`, async () => {
    if (!(await row.isVisible())) return true;
    await row.click({ timeout: 2000 }).catch(() => {});
    return row.waitFor({ state: 'hidden', timeout: 2000 }).then(
      () => true,
      () => false,
    );
  });
}

async function dumpPage(name) {
  try {
    await screenshot(name);
    fs.writeFileSync(path.join(ARTIFACTS, `${name}.html`), await page.content());
  } catch (e) {
    log('could not save page state:', e.message);
  }
}

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of fs.readdirSync(ARTIFACTS)) fs.rmSync(path.join(ARTIFACTS, f), { recursive: true, force: true });
  for (const [what, p] of [
    ['TETHER_VSIX', TETHER_VSIX],
    ['TETHER_BIN', TETHER_BIN],
    ['CHROMIUM', CHROMIUM],
  ]) {
    if (!fs.existsSync(p)) throw new Error(`${what}: ${p} does not exist`);
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-vscode-e2e-'));
  log('temp dir', tmp);

  // A workspace with something to delete.
  workspace = path.join(tmp, 'project');
  fs.mkdirSync(path.join(workspace, 'build', 'out'), { recursive: true });
  fs.writeFileSync(path.join(workspace, 'build', 'out', 'app.o'), 'object code\n');
  fs.mkdirSync(path.join(workspace, 'dist'));
  fs.writeFileSync(path.join(workspace, 'dist', 'bundle.js'), 'console.log(1)\n');
  fs.writeFileSync(path.join(workspace, 'README.md'), '# Demo project\n\nbuild/ holds generated files.\n');
  fs.writeFileSync(path.join(workspace, 'calc.txt'), CALC);

  bait = net.createServer((socket) => {
    baitConnections.push(Date.now());
    socket.destroy();
  });
  await new Promise((resolve) => bait.listen(0, '127.0.0.1', resolve));

  // The model: hello; then a dangerous command; then a reply quoting its result.
  model = await startScriptedModel([
    () => ({ text: HELLO, chunkDelayMs: 250, pieces: 8 }),
    () => ({ toolCalls: [{ name: 'run_command', arguments: { command: 'rm -rf build' } }] }),
    (body) => {
      const result = lastMessage(body);
      assert.equal(result.role, 'tool', 'the model is called back with the tool result');
      return { text: `I ran \`rm -rf build\`. The command's result:\n\n\`\`\`\n${result.content}\n\`\`\`\n\nbuild/ is gone.` };
    },
    () => ({ toolCalls: [{ name: 'run_command', arguments: { command: 'rm -rf dist' } }] }),
    (body) => ({ text: `Understood, I left dist/ alone. (The tool said: ${lastMessage(body).content.split('\n')[0]})` }),
    () => ({ text: SLOW, chunkDelayMs: 400, pieces: 40 }),
    () => ({ text: 'Hello again, after the restart.' }),
    () => ({
      text:
        `Here is the chart: ![build chart](https://127.0.0.1:${bait.address().port}/chart.png?d=SECRET-TOKEN)\n\n` +
        'and ![logo][l]. Remote images stay unloaded.\n\n' +
        `[l]: https://127.0.0.1:${bait.address().port}/logo.png`,
    }),
    // Agent edits to an open file: case 1 (clean), then case 2 (the person's
    // unsaved note) three times. Each: the edit, `cat`, a reply.
    ...[1, 2, 3, 4].flatMap((n) => [
      () => ({ toolCalls: [{ name: 'edit_file', arguments: { path: 'calc.txt', old_text: 'a + b', new_text: 'sum(a, b)' } }] }),
      () => ({ toolCalls: [{ name: 'run_command', arguments: { command: 'cat calc.txt' } }] }),
      () => ({ text: `Edit ${n} done.` }),
    ]),
  ]);
  log('scripted model at', model.url);

  // code-server: its own profile, the extension installed from the .vsix.
  const home = path.join(tmp, 'home');
  userData = path.join(tmp, 'code-user-data');
  const extensions = path.join(tmp, 'code-extensions');
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.mkdirSync(home, { recursive: true });
  const settings = {
    'tether.path': TETHER_BIN,
    'tether.model': 'scripted',
    'tether.baseUrl': model.url,
    'tether.dataDir': path.join(tmp, 'tether-data'),
    'tether.approval.mode': 'ask',
    'tether.trace.server': 'messages',
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'extensions.ignoreRecommendations': true,
    'update.mode': 'none',
    'chat.commandCenter.enabled': false,
    'chat.disableAIFeatures': true,
    'window.commandCenter': false,
    // Desktop VS Code's default (the web build's is afterDelay): the agent-edit
    // steps need to see what is saved when.
    'files.autoSave': 'off',
  };
  fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
  const env = cleanEnv(home);
  const common = ['--user-data-dir', userData, '--extensions-dir', extensions];
  let t = Date.now();
  const installed = await run(CODE_SERVER, [...common, '--install-extension', TETHER_VSIX], { env });
  log(`installed the extension in ${Date.now() - t} ms:`, installed.stdout.trim().split('\n').pop());

  const port = await freePort();
  t = Date.now();
  codeServer = spawn(
    CODE_SERVER,
    [
      ...common,
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--auth',
      'none',
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--ignore-last-opened',
      workspace,
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  for (const s of [codeServer.stdout, codeServer.stderr]) s.on('data', (d) => (codeServerLog += d.toString()));
  const url = `http://127.0.0.1:${port}/`;
  await waitForHttp(`${url}healthz`, 60_000);
  log(`code-server up in ${Date.now() - t} ms at ${url}`);

  // Chromium: fresh profile, no background traffic.
  context = await chromium.launchPersistentContext(path.join(tmp, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on('pageerror', (e) => log('page error:', e.message));
  await page.goto(`${url}?folder=${encodeURIComponent(workspace)}`);
  await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 90_000 });
  // The extension host is up once the Tether status bar item shows.
  await page.locator('.statusbar-item', { hasText: 'Tether' }).first().waitFor({ state: 'visible', timeout: 90_000 });
  log(`workbench ready in ${Date.now() - t} ms`);
});

after(async () => {
  if (page) await dumpPage('zz-final').catch(() => {});
  await context?.close().catch(() => {});
  if (codeServer && codeServer.exitCode === null) {
    try {
      process.kill(-codeServer.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    await new Promise((r) => setTimeout(r, 500));
    try {
      process.kill(-codeServer.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await model?.close();
  bait?.close();
  fs.writeFileSync(path.join(ARTIFACTS, 'code-server.log'), codeServerLog);
  // The Tether output channel (server stderr + LSP trace), for the record.
  if (userData) fs.writeFileSync(path.join(ARTIFACTS, 'tether-output.log'), tetherOutput());
  if (tmp && process.env.KEEP_E2E_TMP !== '1') fs.rmSync(tmp, { recursive: true, force: true });
});

test('Tether in VS Code: chat, streaming, approvals, stop, history, settings', async (t) => {
  let chat;
  let failed = false;
  // Each step needs the one before: after a failure the rest are skipped.
  const step = (name, fn) =>
    t.test(name, async (st) => {
      if (failed) return st.skip('an earlier step failed');
      try {
        await fn();
      } catch (e) {
        failed = true;
        await dumpPage(`failed-${name.replace(/[^a-z]+/gi, '-').slice(0, 40)}`);
        throw e;
      }
    });
  await step('the Tether chat view opens from the command palette', async () => {
    await screenshot('workbench');
    await runCommand('Tether: Open Chat');
    chat = await chatFrame();
    await chat.locator('#prompt').waitFor({ state: 'visible' });
    await screenshot('chat-view-open');
  });

  await step('a prompt gets a streamed Markdown reply', async () => {
    await chat.locator('#prompt').fill('Say hello');
    await chat.locator('#prompt').press('Enter');
    await chat.locator('.msg.user', { hasText: 'Say hello' }).waitFor();
    // While it streams: part of the text is there, with the streaming marker.
    const streaming = chat.locator('.msg.assistant.streaming');
    await streaming.waitFor({ state: 'visible' });
    const partial = await streaming.innerText();
    // The server's $/progress shows in the status bar while the turn runs.
    if (tetherOutput().includes("'$/progress'")) {
      await page.locator('.statusbar-item', { hasText: /Tether: (writing|thinking)/ }).first().waitFor({ state: 'visible' });
    }
    await screenshot('reply-streaming');
    assert.ok(partial.length > 0 && !partial.includes('workspace.'), `caught mid-stream: ${JSON.stringify(partial)}`);
    const done = chat.locator('.msg.assistant:not(.streaming) .md', { hasText: HELLO });
    await done.waitFor({ state: 'visible' });
    await chat.locator('#activity').waitFor({ state: 'hidden' });
    await screenshot('reply-done');
    assert.equal(model.requests.length, 1);
    assert.equal(lastMessage(model.requests[0]).content.includes('Say hello'), true);
  });

  await step('a dangerous command opens the approval dialog; Allow once runs it', async () => {
    assert.ok(fs.existsSync(path.join(workspace, 'build')), 'build/ exists before');
    await chat.locator('#prompt').fill('Please delete the build directory');
    await chat.locator('#prompt').press('Enter');

    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ state: 'visible' });
    const text = await dialog.innerText();
    await screenshot('approval-dialog');
    log('dialog text:', JSON.stringify(text));
    assert.match(text, /Tether wants to run: rm -rf build/);
    assert.match(text, /Command: rm -rf build/);
    assert.ok(text.includes(`Directory: ${workspace}`) || text.includes(`Directory: ${fs.realpathSync(workspace)}`), 'directory shown');
    assert.match(text, /Why it asks: .+/);
    assert.match(text, /Asked by: the main agent/);
    for (const action of ['Allow once', 'Allow for session', 'Always allow', 'Deny']) {
      assert.ok(await dialog.getByRole('button', { name: action, exact: true }).isVisible(), `button ${action}`);
    }
    assert.ok(fs.existsSync(path.join(workspace, 'build')), 'nothing ran while the dialog is open');
    await page.locator('.statusbar-item', { hasText: 'Tether: approval needed' }).waitFor({ state: 'visible' });
    // The chat shows the pending approval too.
    await chat.locator('.approval.status-asked', { hasText: 'rm -rf build' }).waitFor();

    await dialog.getByRole('button', { name: 'Allow once', exact: true }).click();
    await dialog.waitFor({ state: 'hidden' });

    const tool = chat.locator('details.tool[data-tool="run_command"]');
    await tool.locator('.badge.status-completed').waitFor();
    await chat.locator('.approval.status-allowed').waitFor();
    const reply = chat.locator('.msg.assistant:not(.streaming) .md', { hasText: "The command's result" });
    await reply.waitFor();
    await chat.locator('#activity').waitFor({ state: 'hidden' });
    await tool.locator('summary').click();
    await tool.locator('pre.output').waitFor({ state: 'visible' });
    const output = await tool.locator('pre.output').innerText();
    await screenshot('command-result');
    assert.match(output, /exit code 0/);
    assert.match(await reply.innerText(), /exit code 0/);
    assert.ok(!fs.existsSync(path.join(workspace, 'build')), 'build/ is gone after Allow once');

    // The model got the tool's result.
    assert.equal(model.requests.length, 3);
    const toolMsg = model.requests[2].messages.find((m) => m.role === 'tool');
    assert.match(toolMsg.content, /exit code 0/);
  });

  await step('the session is in the searchable history picker', async () => {
    await chat.locator('#sessions').click();
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Say hello' }).first();
    await row.waitFor({ state: 'visible' });
    await screenshot('session-picker');
    // The query goes to the server's full-text search.
    await input.fill('zebra');
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'No session matches' }).waitFor({ state: 'visible' });
    await input.fill('build');
    await row.waitFor({ state: 'visible' });
    await screenshot('session-search');
    await page.keyboard.press('Enter');
    // History reloads the transcript: both prompts and the tool call.
    await chat.locator('.msg.user', { hasText: 'Please delete the build directory' }).waitFor();
    await chat.locator('details.tool[data-tool="run_command"] .badge.status-completed').waitFor();
    await screenshot('session-reloaded');
  });

  await step('dismissing the approval dialog is a deny: nothing runs and the model is told', async () => {
    await chat.locator('#prompt').fill('Also delete dist');
    await chat.locator('#prompt').press('Enter');
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ state: 'visible' });
    assert.match(await dialog.innerText(), /rm -rf dist/);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    const tool = chat.locator('details.tool[data-tool="run_command"]', { hasText: 'rm -rf dist' });
    await tool.locator('.badge.status-denied').waitFor();
    await chat.locator('.approval.status-denied', { hasText: 'rm -rf dist' }).waitFor();
    await chat.locator('.msg.assistant:not(.streaming) .md', { hasText: 'I left dist/ alone' }).waitFor();
    await chat.locator('#activity').waitFor({ state: 'hidden' });
    await screenshot('dismissed-denied');
    assert.ok(fs.existsSync(path.join(workspace, 'dist', 'bundle.js')), 'dist/ is still there');
    const told = model.requests[4].messages.filter((m) => m.role === 'tool').pop();
    assert.match(told.content, /den/i, `the model is told it was denied: ${told.content}`);
  });

  await step('Stop cancels the running turn', async () => {
    await chat.locator('#prompt').fill('Count to twenty, slowly');
    await chat.locator('#prompt').press('Enter');
    const streaming = chat.locator('.msg.assistant.streaming');
    await streaming.waitFor({ state: 'visible' });
    await chat.locator('#stop').click();
    await chat.locator('.notice', { hasText: 'Stopped.' }).waitFor();
    await chat.locator('#activity').waitFor({ state: 'hidden' });
    await screenshot('stopped');
    const text = await chat.locator('.msg.assistant').last().innerText();
    assert.ok(!text.includes('Done counting'), `the reply was cut short: ${JSON.stringify(text)}`);
    assert.equal(await chat.locator('#send').isEnabled(), true, 'the prompt box is usable again');
  });

  await step('a settings change restarts the server with the new initializationOptions; Tether: Ask still works', async () => {
    await setSetting('tether.approval.timeoutSecs', 90);
    await screenshot('settings-changed');
    await until('the restart with the new options', () => /Starting [^\n]*"timeoutSecs":90/.test(tetherOutput()));
    await closeEditors();
    // Idle again: the status bar item says just "Tether" (no ": starting").
    await page.locator('.statusbar-item', { hasText: 'Tether' }).filter({ hasNotText: ':' }).first().waitFor({ state: 'visible' });
    await runCommand('Tether: Ask');
    const box = page.locator('.quick-input-widget input');
    await box.waitFor({ state: 'visible' });
    await box.fill('Say hello again');
    await page.keyboard.press('Enter');
    await chat.locator('.msg.user', { hasText: 'Say hello again' }).waitFor();
    await chat.locator('.msg.assistant:not(.streaming) .md', { hasText: 'Hello again, after the restart.' }).waitFor();
    await screenshot('after-restart');
    // The same session continued on the restarted server.
    const sessionIds = new Set(model.requests.map((r) => JSON.stringify(r.messages.find((m) => m.role === 'user'))));
    assert.equal(sessionIds.size, 1, 'every request carries the same first prompt: one session');
    assert.equal(model.requests.length, 7);
  });

  await step('a remote image in a reply is a link: the webview sends no request', async () => {
    const port = bait.address().port;
    const seen = [];
    const failed = new Map();
    const watch = (request) => {
      if (request.url().includes(`127.0.0.1:${port}`)) seen.push(request.url());
    };
    const watchFailed = (request) => failed.set(request.url(), request.failure()?.errorText);
    context.on('request', watch);
    context.on('requestfailed', watchFailed);
    try {
      await chat.locator('#prompt').fill('Show me the build chart');
      await chat.locator('#prompt').press('Enter');
      const reply = chat.locator('.msg.assistant:not(.streaming) .md', { hasText: 'Remote images stay unloaded' });
      await reply.waitFor();
      await chat.locator('#activity').waitFor({ state: 'hidden' });
      await screenshot('remote-image-as-link');
      // No element anywhere in the chat would load an image from the network.
      const remote = await chat.locator('img').evaluateAll((imgs) =>
        imgs.map((i) => i.getAttribute('src') || '').filter((s) => !/^(data:|vscode-|https:\/\/[^/]*vscode-cdn)/.test(s)),
      );
      assert.deepEqual(remote, [], 'no remote <img> in the chat');
      // In its place: a link the person may follow, saying what it is.
      const link = reply.locator('a.image-link').first();
      assert.match(await link.innerText(), /image “build chart” from 127\.0\.0\.1:\d+ \(not loaded\)/);
      assert.equal(await link.getAttribute('href'), `https://127.0.0.1:${port}/chart.png?d=SECRET-TOKEN`);
      assert.equal(await reply.locator('a.image-link').count(), 2, 'the reference-style image too');
      assert.deepEqual(seen, [], 'no request left the webview for the images');
      assert.deepEqual(baitConnections, [], 'nothing connected to the image host');
      // And the CSP refuses remote images even if one were put in the page:
      // the browser reports the violation instead of connecting.
      const csp = await chat.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
      const imgSrc = csp
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .find((d) => d[0] === 'img-src')
        .slice(1);
      assert.ok(imgSrc.includes('data:'), csp);
      // Only the webview's own resource origins: no scheme-wide source.
      for (const source of imgSrc) assert.doesNotMatch(source, /^(https?:|\*|http:\/\/\*)$/, csp);
      const probe = await chat.locator('#log').evaluate(
        (log, url) =>
          new Promise((resolve) => {
            document.addEventListener('securitypolicyviolation', (e) => resolve(`blocked by ${e.effectiveDirective}`), { once: true });
            const img = document.createElement('img');
            img.onload = () => resolve('loaded');
            // If the error comes first, the bait below tells whether it connected.
            img.onerror = () => resolve('not loaded');
            img.src = url;
            log.append(img);
          }),
        `https://127.0.0.1:${port}/csp-probe.png`,
      );
      await chat.locator('#log > img').evaluateAll((imgs) => imgs.forEach((i) => i.remove()));
      assert.ok(probe === 'blocked by img-src' || probe === 'not loaded', probe);
      const probeUrl = `https://127.0.0.1:${port}/csp-probe.png`;
      if (seen.includes(probeUrl)) {
        // The browser reports the attempt, refused before any connection.
        await until('the probe to fail', () => failed.has(probeUrl));
        assert.match(failed.get(probeUrl) ?? '', /csp/i, 'refused by the CSP');
      }
      assert.deepEqual(baitConnections, [], 'nothing connected to the image host');
      assert.equal(model.requests.length, 8);
    } finally {
      context.off('request', watch);
      context.off('requestfailed', watchFailed);
    }
  });

  // Agent edits and open documents (docs/PROTOCOL.md, "Agent edits and open
  // buffers"): the edit goes into the document, never behind it on disk.
  const calcPath = path.join(workspace, 'calc.txt');
  const disk = () => fs.readFileSync(calcPath, 'utf8');
  // The editor's visible lines in screen order (Monaco reuses line elements,
  // so the DOM order may differ), without the empty last line.
  const editorText = async () =>
    (
      await page
        .locator('.editor-instance .view-lines')
        .first()
        .evaluate((el) =>
          [...el.querySelectorAll('.view-line')]
            .map((l) => ({ top: parseFloat(l.style.top) || 0, text: l.textContent ?? '' }))
            .sort((a, b) => a.top - b.top)
            .map((l) => l.text)
            .join('\n'),
        )
    )
      .replace(/\u00a0/g, ' ')
      .replace(/\n+$/, '');
  const lines = (text) => text.replace(/\n$/, '');
  const calcTab = () => page.locator('.tabs-container .tab', { hasText: 'calc.txt' }).first();
  const isDirty = async () => /\bdirty\b/.test((await calcTab().getAttribute('class')) ?? '');
  const focusEditor = async () => {
    await page.locator('.editor-instance .view-lines').first().click();
  };
  const conflict = () => page.locator('.notifications-toasts .notification-toast', { hasText: /newer|Failed to save/i });
  const quickOpen = async (name) => {
    await page.keyboard.press('ControlOrMeta+P');
    await page.locator('.quick-input-widget input').fill(name);
    await pickRow(name);
    await page.locator('.tabs-container .tab.active', { hasText: name }).waitFor();
  };
  const openCalc = async () => {
    await quickOpen('calc.txt');
    await until('calc.txt open', async () => (await editorText()) === lines(CALC));
  };
  const agentEdit = async (n, prompt) => {
    await chat.locator('#prompt').fill(prompt);
    await chat.locator('#prompt').press('Enter');
    await chat.locator('.msg.assistant:not(.streaming) .md', { hasText: `Edit ${n} done.` }).waitFor();
    await chat.locator('#activity').waitFor({ state: 'hidden' });
    const reqs = model.requests;
    const told = (i) =>
      reqs[i].messages
        .filter((m) => m.role === 'tool')
        .pop()
        .content;
    return { edit: told(reqs.length - 2), cat: told(reqs.length - 1) };
  };

  await step('case 1: an agent edit to a clean open file is saved; Ctrl+Z then Ctrl+S undo it without a conflict', async () => {
    await closeEditors();
    await openCalc();
    const told = await agentEdit(1, 'Use sum in calc.txt');
    await until('the edit in the editor', async () => (await editorText()) === lines(CALC_EDITED));
    await screenshot('agent-edit-clean');
    assert.equal(disk(), CALC_EDITED, 'the extension saved it');
    assert.equal(await isDirty(), false, 'saved, so not dirty');
    assert.match(told.edit, /The editor saved it\./);
    assert.match(told.cat, /sum\(a, b\)/, 'the command saw the edit');
    // Ctrl+Z takes it out of the document; the file keeps it until saved.
    await focusEditor();
    await page.keyboard.press('ControlOrMeta+Z');
    await until('the edit undone', async () => (await editorText()) === lines(CALC));
    await until('the tab dirty', isDirty);
    assert.equal(disk(), CALC_EDITED);
    await page.keyboard.press('ControlOrMeta+S');
    await until('the undo saved', () => disk() === CALC);
    await until('the tab clean', async () => !(await isDirty()));
    assert.equal(await conflict().count(), 0, 'no "file is newer" conflict');
    await screenshot('agent-edit-clean-undone');
  });

  await step("case 2: beside the person's unsaved note the edit stays unsaved; Ctrl+Z, Revert File, Don't Save, a reload and Ctrl+S behave", async () => {
    const typeNote = async () => {
      await focusEditor();
      await page.keyboard.press('ControlOrMeta+Home');
      await page.keyboard.type('my note');
      await page.keyboard.press('Enter');
      await until('the note typed', async () => (await editorText()) === `my note\n${lines(CALC)}`);
    };
    await typeNote();
    let told = await agentEdit(2, 'Use sum in calc.txt again');
    await until('both in the editor', async () => (await editorText()) === `my note\n${lines(CALC_EDITED)}`);
    await screenshot('agent-edit-dirty');
    assert.equal(disk(), CALC, 'nothing saved behind the person');
    assert.equal(await isDirty(), true);
    assert.match(told.edit, /unsaved changes/);
    assert.match(told.edit, /commands you run see the file on disk/);
    assert.doesNotMatch(told.cat, /sum\(a, b\)/);
    // Ctrl+Z removes the agent's edit and keeps the person's note.
    await focusEditor();
    await page.keyboard.press('ControlOrMeta+Z');
    await until('the agent edit undone', async () => (await editorText()) === `my note\n${lines(CALC)}`);
    // Revert File discards both; the disk never had either.
    await runCommand('File: Revert File');
    await until('reverted', async () => (await editorText()) === lines(CALC));
    await until('the tab clean', async () => !(await isDirty()));
    assert.equal(disk(), CALC);
    // Again, then close it and answer "Don't Save": both are discarded.
    await typeNote();
    told = await agentEdit(3, 'And once more');
    await until('both in the editor', async () => (await editorText()) === `my note\n${lines(CALC_EDITED)}`);
    await focusEditor();
    await runCommand('View: Close Editor');
    const ask = page.locator('.monaco-dialog-box');
    await ask.waitFor({ state: 'visible' });
    await screenshot('agent-edit-dirty-close');
    await ask.getByRole('button', { name: "Don't Save" }).click();
    await ask.waitFor({ state: 'hidden' });
    assert.equal(disk(), CALC, "Don't Save discarded both");
    await openCalc();
    // Again, then a reload check (switching editors), then Ctrl+S: both
    // saved, no conflict dialog.
    await typeNote();
    told = await agentEdit(4, 'And a last time');
    await until('both in the editor', async () => (await editorText()) === `my note\n${lines(CALC_EDITED)}`);
    assert.equal(disk(), CALC);
    await quickOpen('README.md');
    await quickOpen('calc.txt');
    await until('calc.txt shown again', async () => (await editorText()).startsWith('my note'));
    assert.equal(await editorText(), `my note\n${lines(CALC_EDITED)}`, 'nothing reloaded from disk');
    await focusEditor();
    await page.keyboard.press('ControlOrMeta+S');
    await until('both saved', () => disk() === `my note\n${CALC_EDITED}`);
    await until('the tab clean', async () => !(await isDirty()));
    assert.equal(await conflict().count(), 0, 'no "file is newer" conflict');
    await screenshot('agent-edit-dirty-saved');
    assert.equal(model.requests.length, 20);
  });

  await step('a missing binary gives a clear message', async () => {
    await setSetting('tether.path', path.join(tmp, 'nowhere', 'tether'));
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'was not found' });
    await toast.waitFor({ state: 'visible' });
    const text = await toast.innerText();
    await page.locator('.statusbar-item', { hasText: 'Tether: not found' }).waitFor({ state: 'visible' });
    await screenshot('binary-missing');
    assert.match(text, /nowhere\/tether/);
    assert.match(text, /tether\.path/);
    assert.match(text, /Open Settings/);
  });
});
