import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';

const root = path.join(__dirname, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

// vscode-languageclient registers every command of the server's
// executeCommandProvider as a VS Code command; one of ours with the same id
// makes the client fail to start ("command 'tether.ask' already exists").
test("the extension's commands never collide with the server's tether.* commands", () => {
  const ours: string[] = manifest.contributes.commands.map((c: { command: string }) => c.command);
  let server = ['tether.ask', 'tether.chat', 'tether.cancel', 'tether.newSession', 'tether.approve', 'tether.deny'];
  const lsp = path.join(root, '..', '..', 'src', 'lsp', 'mod.rs');
  if (fs.existsSync(lsp)) {
    const m = /pub const COMMANDS[^=]*=\s*\[([\s\S]*?)\];/.exec(fs.readFileSync(lsp, 'utf8'));
    if (m) server = [...m[1].matchAll(/"([^"]+)"/g)].map((x) => x[1]);
  }
  assert.ok(server.length > 0);
  for (const c of ours) {
    assert.ok(!server.includes(c), `${c} is also a server command`);
    assert.match(c, /^tether\.client\./);
  }
  const views: string[] = Object.values(manifest.contributes.views).flatMap((v) => (v as { id: string }[]).map((x) => x.id));
  for (const v of views) assert.ok(!server.includes(v), `view ${v} shadows a server command`);
});

test('every contributed command is registered in extension.ts and every keybinding names one', () => {
  const src = fs.readFileSync(path.join(root, 'src', 'extension.ts'), 'utf8');
  const ours: string[] = manifest.contributes.commands.map((c: { command: string }) => c.command);
  for (const c of ours) assert.ok(src.includes(`registerCommand('${c}'`), `${c} is registered`);
  for (const k of manifest.contributes.keybindings) assert.ok(ours.includes(k.command), `${k.command} exists`);
});
