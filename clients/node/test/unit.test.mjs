// Pure parts of the client: the refusal table, keys, request validation, the voice table, the
// listener's skipping of failed segments and exact resumption. No Redis here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import {
  BadArgumentsError,
  BadStateError,
  DEFAULT_VOICES,
  DuplicateRequestError,
  encodeFrame,
  InvalidRequestError,
  Keys,
  LaneNotAllowedError,
  newRequestId,
  parseRefusal,
  prepare,
  QueueFullError,
  REFUSALS,
  refusalError,
  Reorderer,
  RequestCancelledError,
  RequestFailedError,
  RequestIncompleteError,
  RequestNotFoundError,
  RequestTooLargeError,
  segmentText,
  StreamState,
  tenantRate,
  TextError,
  translateRedisError,
  RedisUnavailableError,
  UnknownTenantError,
  UnknownVoiceError,
  VOICES,
  voicesFromCatalog,
} from '../src/index.js';
import { ROOT } from './helpers.mjs';

const RID = 's0.hLn8qfscKkBg3-VVUSeQLg';

describe('refusals', () => {
  const ctx = { tenant: 'acme', requestId: RID, requested: 3, rate: null };

  test('one table row per refusal of enqueue.lua', () => {
    const lua = readFileSync(new URL('../lua/enqueue.lua', import.meta.url), 'utf8');
    const kinds = [...lua.matchAll(/error_reply\('([A-Z]+) /g)].map((m) => m[1]);
    assert.deepEqual([...new Set(kinds)].sort(), Object.keys(REFUSALS).sort());
  });

  const cases = [
    ['QUEUEFULL 10 9 3', QueueFullError, { limit: 10, queued: 9, requested: 3, retryAfterS: null }],
    ['TOOLARGE 2 3', RequestTooLargeError, { limit: 2, requested: 3 }],
    ['LANE batch rt,interactive', LaneNotAllowedError, { lane: 'batch', allowed: ['rt', 'interactive'] }],
    ['NOTENANT acme', UnknownTenantError, { tenant: 'acme' }],
    [`DUPLICATE request id ${RID}`, DuplicateRequestError, { requestId: RID, field: 'request_id' }],
    ['BADARGS segment count does not match arguments', BadArgumentsError, { field: 'enqueue arguments' }],
    ['BADPOLICY acme weight must be an integer', UnknownTenantError, { tenant: 'acme' }],
    ['BADSTATE chorus:{s0}:depth not a hash', BadStateError, { key: 'chorus:{s0}:depth', reason: 'not a hash' }],
  ];
  for (const [message, cls, fields] of cases) {
    test(message.split(' ')[0], () => {
      for (const text of [message, `ERR ${message}`]) {
        const refusal = parseRefusal(text);
        assert.ok(refusal, text);
        const err = refusalError(refusal, ctx);
        assert.ok(err instanceof cls, `${text} -> ${err}`);
        for (const [k, v] of Object.entries(fields)) assert.deepEqual(err[k], v, k);
      }
    });
  }

  test('retry-after from the service rate', () => {
    const err = refusalError(parseRefusal('QUEUEFULL 10 9 3'), { ...ctx, rate: 0.5 });
    assert.equal(err.retryAfterS, 4); // 2 segments over the limit at 0.5 per second
    assert.ok(err.retryable);
    assert.match(err.message, /retry in about 4\.0s/);
    assert.equal(refusalError(parseRefusal('QUEUEFULL 10 10 1'), { ...ctx, rate: 100 }).retryAfterS, 0.1);
  });

  test('other errors are not refusals', () => {
    assert.equal(parseRefusal('NOSCRIPT No matching script'), null);
    assert.equal(parseRefusal('ERR wrong number of arguments'), null);
    const err = translateRedisError(Object.assign(new Error('LOADING Redis is loading'), { name: 'ReplyError' }), 'redis://x');
    assert.ok(err instanceof RedisUnavailableError);
    assert.equal(err.code, 'LOADING');
  });

  test('service rate from the busy buckets', () => {
    const buckets = [{ 'acme:interactive:n': '6', 'acme:interactive:us': '100', 'other:rt:n': '50' }, { 'acme:rt:n': '6' }];
    assert.equal(tenantRate(buckets, 'acme', 60), 0.2);
  });
});

describe('keys', () => {
  test('enqueue KEYS order', () => {
    const k = new Keys('chorus', 's0');
    assert.deepEqual(k.enqueueKeys('acme', k.request(RID)), [
      `chorus:{s0}:req:${RID}`,
      'chorus:{s0}:depth',
      'chorus:{s0}:active',
      'chorus:{s0}:active:set',
      'chorus:{s0}:wake',
      'chorus:{s0}:q:acme:rt',
      'chorus:{s0}:q:acme:interactive',
      'chorus:{s0}:q:acme:batch',
      'chorus:{s0}:tenants',
      'chorus:{s0}:drr',
      'chorus:{s0}:active:fresh',
    ]);
    assert.equal(k.audio(RID), `chorus:{r:${RID}}:audio`);
  });

  test('request ids name their shard', () => {
    const rid = newRequestId('s7');
    assert.match(rid, /^s7\.[A-Za-z0-9_-]{22}$/);
    assert.equal(new Keys().forRequest(rid).shard, 's7');
    assert.throws(() => new Keys().request(rid), RequestNotFoundError);
    assert.throws(() => new Keys().audio('nope'), RequestNotFoundError);
  });
});

describe('prepare', () => {
  const base = { tenant: 'acme', nowMs: 1_700_000_000_500, requestId: RID };

  test('ARGV layout', () => {
    const req = prepare(['你好', 'world'], { ...base, voice: 'en_joe', deadlineS: 2.5 });
    assert.deepEqual(req.args.slice(0, 8), ['acme', RID, 'en_joe', '1700000000500', '2500', '86400', 'workers', '2']);
    assert.deepEqual(
      req.args.slice(8).filter((_, i) => i % 3 !== 2),
      ['1', '2', '2', '2'],
    );
    assert.equal(req.sampleRate, 22050);
    assert.equal(req.keys.length, 11);
  });

  test('invalid options are refused before Redis', () => {
    assert.throws(() => prepare('hi', { ...base, voice: 'nope' }), UnknownVoiceError);
    assert.throws(() => prepare('hi', { ...base, tenant: 'a b' }), UnknownTenantError);
    assert.throws(() => prepare('hi', { ...base, priority: 'rt' }), InvalidRequestError);
    assert.throws(() => prepare('hi', { ...base, speed: 3 }), InvalidRequestError);
    assert.throws(() => prepare('hi', { ...base, deadlineS: 0 }), InvalidRequestError);
    assert.throws(() => prepare('hi', { ...base, requestId: 's1.hLn8qfscKkBg3-VVUSeQLg' }), InvalidRequestError);
    assert.throws(() => prepare('。。。', base), TextError);
    assert.throws(() => prepare([], base), TextError);
    assert.throws(() => prepare(new Uint8Array([0xff]), base), TextError);
    assert.equal(prepare(Buffer.from('你好'), base).segments, 1);
  });

  test('the built-in voice table is the catalog', () => {
    const catalog = JSON.parse(readFileSync(join(ROOT, 'models', 'catalog.json'), 'utf8'));
    const { voices, defaultVoices } = voicesFromCatalog(catalog);
    assert.deepEqual(JSON.parse(JSON.stringify(VOICES)), voices);
    assert.deepEqual({ ...DEFAULT_VOICES }, defaultVoices);
  });

  test('segmentation grows the segments', () => {
    const segs = segmentText(`${Array(60).fill('今天天气很好我们去公园').join('，')}。`);
    assert.ok(segs.length > 3 && segs.length < 30);
  });
});

// -- listener --------------------------------------------------------------------------------------

const audio = (segment, index, last, attempt = 1) => ({
  type: 'audio',
  segment,
  index,
  last,
  sampleRate: 24000,
  attempt,
  pcm: Buffer.from([segment, index, attempt, 0]),
});
let seq = 0;
const entry = (frame) => [`${1000 + seq++}-0`, { f: encodeFrame(frame) }];
const keyOf = (f) => [f.segment, f.index, f.attempt];

describe('listener', () => {
  test('reorders, drops duplicates, supersedes an older attempt', () => {
    const r = new Reorderer();
    const out = [];
    for (const f of [audio(0, 1, false), audio(0, 0, false), audio(0, 0, false), audio(0, 1, false, 2), audio(0, 2, true, 2), audio(0, 1, false)]) {
      out.push(...r.push(f).map(keyOf));
    }
    assert.deepEqual(out, [
      [0, 0, 1],
      [0, 1, 1],
      [0, 2, 2],
    ]);
    assert.equal(r.duplicates, 3);
    assert.equal(r.segment, 1);
  });

  test('a failed segment is skipped and reported at the end', () => {
    const s = new StreamState(RID, { skipFailed: true });
    const played = s.feed([
      entry(audio(0, 0, false)),
      entry(audio(2, 0, true)),
      entry({ type: 'error', code: 'synthesis_failed', message: 'boom', segment: 1 }),
      entry(audio(1, 0, false)), // a late frame of the failed segment
      entry(audio(0, 1, true)),
      entry({ type: 'end', segments: 3, status: 'error' }),
    ]);
    assert.deepEqual(played.map(keyOf), [
      [0, 0, 1],
      [0, 1, 1],
      [2, 0, 1],
    ]);
    assert.ok(s.finished);
    assert.throws(
      () => s.checkComplete(),
      (err) => err instanceof RequestFailedError && err.segment === 1 && err.code === 'synthesis_failed' && err.failures.length === 1,
    );
  });

  test('skipFailed false: the first error frame ends the stream (the reference)', () => {
    const s = new StreamState(RID, { skipFailed: false });
    const played = s.feed([
      entry(audio(0, 0, false)),
      entry({ type: 'error', code: 'synthesis_failed', message: 'boom', segment: 1 }),
      entry(audio(0, 1, true)),
    ]);
    assert.deepEqual(played.map(keyOf), [[0, 0, 1]]);
    assert.throws(() => s.checkComplete(), (err) => err instanceof RequestFailedError && err.segment === 1);
  });

  test('cancelled and incomplete', () => {
    const c = new StreamState(RID);
    c.feed([entry(audio(0, 0, true)), entry({ type: 'end', segments: 3, status: 'cancelled' })]);
    assert.ok(c.finished);
    assert.throws(() => c.checkComplete(), (err) => err instanceof RequestCancelledError && err.heardSegments === 1);
    const i = new StreamState(RID);
    i.feed([entry(audio(0, 0, true)), entry({ type: 'end', segments: 2, status: 'ok' })]);
    assert.ok(!i.finished);
    assert.throws(() => i.checkComplete(), (err) => err instanceof RequestIncompleteError && err.segment === 1);
  });
});
