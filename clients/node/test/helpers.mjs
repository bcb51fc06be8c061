// Test helpers: a private redis-server, a real chorus worker (the Python paced test double), and
// Python one-liners, each a child process that is stopped by the test (and killed at exit).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import Redis from 'ioredis';

export const PKG = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = resolve(PKG, '..', '..');
export const PYTHON = process.env.CHORUS_PYTHON || resolve(PKG, '..', '..', '.venv', 'bin', 'python');
export const REDIS_SERVER = process.env.CHORUS_REDIS_SERVER || 'redis-server';
export const VECTORS = join(ROOT, 'protocol', 'vectors');

const children = new Set();
process.on('exit', () => {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The environment of a Python child: the repository (and the Python client package) importable. */
export function pythonEnv(extra = {}) {
  const paths = [ROOT, join(ROOT, 'clients', 'python')].filter((p) => existsSync(p));
  return {
    ...process.env,
    PYTHONPATH: [...paths, process.env.PYTHONPATH].filter(Boolean).join(delimiter),
    PYTHONUNBUFFERED: '1',
    ...extra,
  };
}

/** Fail early and clearly when the Python interpreter or redis-server is missing. */
export function checkTools() {
  const py = spawnSync(PYTHON, ['--version'], { encoding: 'utf8' });
  if (py.error || py.status !== 0) {
    throw new Error(`cannot run the chorus Python (${PYTHON}); set CHORUS_PYTHON: ${py.error?.message ?? py.stderr}`);
  }
  const rs = spawnSync(REDIS_SERVER, ['--version'], { encoding: 'utf8' });
  if (rs.error || rs.status !== 0) {
    throw new Error(`cannot run redis-server (${REDIS_SERVER}); set CHORUS_REDIS_SERVER: ${rs.error?.message ?? rs.stderr}`);
  }
}

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

function track(child, name) {
  children.add(child);
  const out = [];
  const keep = (chunk) => {
    out.push(chunk.toString());
    if (out.length > 200) out.splice(0, out.length - 200);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', () => children.delete(child));
  child.output = () => `${name} output:\n${out.join('')}`;
  return child;
}

/** Stop a child: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopProcess(child, graceMs = 10_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A redis-server on a free loopback port, nothing persisted: {url, port, process, stop()}. */
export async function startRedis() {
  const port = await freePort();
  const child = track(
    spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    'redis-server',
  );
  const url = `redis://127.0.0.1:${port}/0`;
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode})\n${child.output()}`);
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch {
      probe.disconnect();
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on ${port}\n${child.output()}`);
      await sleep(50);
    }
  }
  probe.disconnect();
  return { url, port, process: child, stop: () => stopProcess(child) };
}

/** A real chorus worker over `url` serving the paced test double (chorus.testing): 3 frames of
 * 100 ms of tone per segment, 10 ms apart, 2 s leases. Resolves once it heartbeats. */
export async function startWorker(url, name = 'node-test', { chunks = 3, chunkS = 0.01, leaseS = 2.0 } = {}) {
  const code = `from chorus.testing import run_paced_worker; run_paced_worker(${JSON.stringify(url)}, ${JSON.stringify(name)}, ${chunks}, ${chunkS}, ${leaseS})`;
  const child = track(spawn(PYTHON, ['-c', code], { cwd: ROOT, env: pythonEnv(), stdio: ['ignore', 'pipe', 'pipe'] }), `worker ${name}`);
  const r = new Redis(url);
  try {
    const deadline = Date.now() + 60_000;
    while (!(await r.zscore('chorus:workers', name))) {
      if (child.exitCode !== null) throw new Error(`the worker exited (${child.exitCode}) before heartbeating\n${child.output()}`);
      if (Date.now() > deadline) throw new Error(`the worker did not heartbeat within 60 s\n${child.output()}`);
      await sleep(50);
    }
  } finally {
    r.disconnect();
  }
  return child;
}

/** Run a Python snippet (argv after it), with the chorus repository importable: {status, stdout, stderr}. */
export function runPython(code, args = [], { timeoutMs = 60_000, input } = {}) {
  return new Promise((res, rej) => {
    const child = track(spawn(PYTHON, ['-c', code, ...args], { cwd: ROOT, env: pythonEnv(), stdio: ['pipe', 'pipe', 'pipe'] }), 'python');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', rej);
    child.on('close', (status) => {
      clearTimeout(timer);
      res({ status, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

/** runPython that must succeed; returns stdout parsed as JSON. */
export async function pythonJson(code, args = [], options = {}) {
  const res = await runPython(code, args, options);
  if (res.status !== 0) throw new Error(`python failed (exit ${res.status}):\n${res.stderr}\n${res.stdout}`);
  return JSON.parse(res.stdout);
}

/** Every frame of an async iterable, and the error that ended it (null when it ended normally). */
export async function drain(iterable, { stopAfter = Infinity, onFrame } = {}) {
  const frames = [];
  try {
    for await (const f of iterable) {
      frames.push(f);
      if (onFrame) await onFrame(f, frames.length);
      if (frames.length >= stopAfter) break;
    }
  } catch (err) {
    return { frames, error: err };
  }
  return { frames, error: null };
}

/** Assert-style check that frames are complete: every segment 0..n-1, indexes 0..k-1, `last` only on the last. */
export function checkContiguous(frames, segments) {
  const bySeg = new Map();
  let prev = [-1, -1];
  for (const f of frames) {
    if (f.segment < prev[0] || (f.segment === prev[0] && f.index <= prev[1])) {
      throw new Error(`out of order: (${f.segment}, ${f.index}) after (${prev[0]}, ${prev[1]})`);
    }
    prev = [f.segment, f.index];
    if (!bySeg.has(f.segment)) bySeg.set(f.segment, []);
    bySeg.get(f.segment).push(f);
  }
  if (bySeg.size !== segments) throw new Error(`${bySeg.size} segments heard, expected ${segments}`);
  for (let s = 0; s < segments; s += 1) {
    const fs = bySeg.get(s);
    if (!fs) throw new Error(`segment ${s} missing`);
    fs.forEach((f, i) => {
      if (f.index !== i) throw new Error(`segment ${s}: index ${f.index} at position ${i}`);
      if (f.last !== (i === fs.length - 1)) throw new Error(`segment ${s}: last=${f.last} on frame ${i} of ${fs.length}`);
    });
  }
  return bySeg;
}
