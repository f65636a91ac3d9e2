import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { deepMerge, initializationOptions, missingBinaryMessage, resolveBinary } from '../src/settings';

const reader = (values: Record<string, unknown>) => (k: string) => values[k];

test('only the settings the person set become initializationOptions', () => {
  assert.deepEqual(initializationOptions(reader({ model: '', baseUrl: '  ', 'approval.mode': 'default' })), {});
  assert.deepEqual(
    initializationOptions(
      reader({
        model: 'scripted',
        baseUrl: 'http://127.0.0.1:9/v1',
        apiKeyEnv: 'MY_KEY',
        dataDir: '/tmp/d',
        'approval.mode': 'ask',
        'approval.timeoutSecs': 30,
        maxIterations: 12,
      }),
    ),
    {
      model: 'scripted',
      baseUrl: 'http://127.0.0.1:9/v1',
      apiKeyEnv: 'MY_KEY',
      dataDir: '/tmp/d',
      maxIterations: 12,
      approval: { mode: 'ask', timeoutSecs: 30 },
    },
  );
});

test('extra initializationOptions merge under the named settings', () => {
  const opts = initializationOptions(
    reader({
      initializationOptions: { tools: { commandTimeoutSecs: 300 }, approval: { timeoutSecs: 5, mode: 'deny' }, model: 'x' },
      'approval.mode': 'allow',
      model: 'y',
    }),
  );
  assert.deepEqual(opts, { tools: { commandTimeoutSecs: 300 }, approval: { timeoutSecs: 5, mode: 'allow' }, model: 'y' });
});

test('nonsense values are ignored, not sent', () => {
  assert.deepEqual(initializationOptions(reader({ maxIterations: -3, 'approval.timeoutSecs': 'soon', initializationOptions: [1] })), {});
});

test('deepMerge: undefined never overrides', () => {
  assert.deepEqual(deepMerge({ a: 1, b: { c: 2 } }, { a: undefined, b: { d: 3 } }), { a: 1, b: { c: 2, d: 3 } });
});

test('the binary is found by path or on PATH, and a missing one says where it looked', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tether-bin-'));
  const bin = path.join(dir, 'tether');
  fs.writeFileSync(bin, '#!/bin/sh\n');
  fs.chmodSync(bin, 0o755);
  assert.equal(resolveBinary(bin, {}, '/home/x').command, bin);
  assert.equal(resolveBinary('tether', { PATH: `/nonexistent${path.delimiter}${dir}` }, '/home/x').command, bin);
  assert.equal(resolveBinary('', { PATH: dir }, '/home/x').command, bin, 'empty setting means "tether" on PATH');
  assert.equal(resolveBinary('./tether', {}, '/home/x', dir).command, bin, 'relative to the workspace folder');
  assert.equal(resolveBinary('${workspaceFolder}/tether', {}, '/home/x', dir).command, bin);

  const notExec = path.join(dir, 'plain');
  fs.writeFileSync(notExec, '');
  fs.chmodSync(notExec, 0o644);
  assert.equal(resolveBinary(notExec, {}, '/home/x').command, undefined, 'not executable');

  const missing = resolveBinary('/opt/none/tether', {}, '/home/x');
  assert.equal(missing.command, undefined);
  const msg = missingBinaryMessage('/opt/none/tether', missing);
  assert.match(msg, /^Tether: the server binary was not found at \/opt\/none\/tether \(setting "tether\.path"\)\./);
  assert.match(msg, /tether\.path/);
  assert.match(msg, /cargo build --release/);
  const onPath = resolveBinary('tether', { PATH: '/a:/b' }, '/home/x');
  assert.match(missingBinaryMessage('tether', onPath), /^Tether: "tether" was not found on PATH \(2 directories searched\)\./);
  fs.rmSync(dir, { recursive: true, force: true });
});
