// Settings → how the server is started and what it is told at `initialize`.
// Pure logic (no `vscode` import) so the unit tests run under plain Node.

import * as fs from 'fs';
import * as path from 'path';

/** Reads one `tether.*` setting (the extension passes `WorkspaceConfiguration.get`). */
export type SettingsReader = (key: string) => unknown;

/** The settings whose change restarts the server. */
export const SERVER_SETTINGS = [
  'tether.path',
  'tether.model',
  'tether.baseUrl',
  'tether.apiKeyEnv',
  'tether.approval',
  'tether.dataDir',
  'tether.maxIterations',
  'tether.initializationOptions',
];

function nonEmptyString(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

function positiveNumber(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: `over` wins; objects merge key by key; `undefined` never overrides. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/**
 * The `initializationOptions` for tether (docs/DESIGN.md §3): only what the person set,
 * so anything left empty falls back to `~/.config/tether/config.toml` and the
 * `TETHER_*` environment on the server side.
 */
export function initializationOptions(get: SettingsReader): Record<string, unknown> {
  const extra = isPlainObject(get('initializationOptions')) ? (get('initializationOptions') as Record<string, unknown>) : {};
  const mode = nonEmptyString(get('approval.mode'));
  const approval: Record<string, unknown> = {};
  if (mode && mode !== 'default') approval.mode = mode;
  const timeout = positiveNumber(get('approval.timeoutSecs'));
  if (timeout !== undefined) approval.timeoutSecs = timeout;
  const ours: Record<string, unknown> = {
    model: nonEmptyString(get('model')),
    baseUrl: nonEmptyString(get('baseUrl')),
    apiKeyEnv: nonEmptyString(get('apiKeyEnv')),
    dataDir: nonEmptyString(get('dataDir')),
    maxIterations: positiveNumber(get('maxIterations')),
    approval: Object.keys(approval).length ? approval : undefined,
  };
  return deepMerge(extra, ours);
}

export interface ResolvedBinary {
  /** The executable to start, when found. */
  command?: string;
  /** What was looked at, for the "not found" message. */
  tried: string[];
}

function isExecutable(p: string): boolean {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) return false;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Expands `~` and `${workspaceFolder}` in the configured path. */
export function expandPath(p: string, home: string, workspaceFolder?: string): string {
  let out = p.trim();
  if (out === '~' || out.startsWith('~/')) out = path.join(home, out.slice(1));
  if (workspaceFolder) out = out.split('${workspaceFolder}').join(workspaceFolder);
  return out;
}

/**
 * Finds the tether binary: an explicit path (absolute, or relative to the
 * workspace folder) must exist and be executable; a bare name is looked up on
 * `PATH`.
 */
export function resolveBinary(configured: unknown, env: NodeJS.ProcessEnv, home: string, workspaceFolder?: string): ResolvedBinary {
  const raw = nonEmptyString(configured) ?? 'tether';
  const p = expandPath(raw, home, workspaceFolder);
  if (p.includes('/') || p.includes(path.sep)) {
    const abs = path.isAbsolute(p) ? p : path.resolve(workspaceFolder ?? process.cwd(), p);
    return isExecutable(abs) ? { command: abs, tried: [abs] } : { tried: [abs] };
  }
  const tried: string[] = [];
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, p);
    tried.push(candidate);
    if (isExecutable(candidate)) return { command: candidate, tried };
  }
  return { tried };
}

/** The message shown when the binary is missing: what, where we looked, what to do. */
export function missingBinaryMessage(configured: unknown, r: ResolvedBinary): string {
  const name = nonEmptyString(configured) ?? 'tether';
  const what =
    r.tried.length === 1 && r.tried[0].includes('/')
      ? `the server binary was not found at ${r.tried[0]} (setting "tether.path")`
      : `"${name}" was not found on PATH (${r.tried.length} directories searched)`;
  return (
    `Tether: ${what}. Build it with "cargo build --release" in the Tether repository, ` +
    `then set "tether.path" to its target/release/tether or put tether on your PATH.`
  );
}
