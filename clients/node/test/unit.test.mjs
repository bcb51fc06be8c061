// Pure parts of the client: the refusal table, keys, placement (hash, home shard, shard count,
// the forwards remembered, with a fake clock), request validation, the voice table, the listener's
// skipping of failed segments and exact resumption, the choice of a voice per segment. No Redis here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import {
  BadArgumentsError,
  BadStateError,
  ConfigError,
  decodeFrame,
  decodeSegment,
  DEFAULT_VOICES,
  DuplicateRequestError,
  encodeFrame,
  encodeSegment,
  fnv1a32,
  homeShard,
  InvalidRequestError,
  Keys,
  LaneNotAllowedError,
  MAX_REMEMBERED,
  MAX_SHARD_HOPS,
  newRequestId,
  parseRefusal,
  parseShardCount,
  Placement,
  PLACEMENT_TTL_S,
  placed,
  prepare,
  ProtocolError,
  QueueFullError,
  REFUSALS,
  refusalError,
  Reorderer,
  RequestCancelledError,
  RequestFailedError,
  RequestIncompleteError,
  RequestNotFoundError,
  RequestTooLargeError,
  scriptLang,
  segmentLanguages,
  segmentText,
  splitScripts,
  SHARD_COUNT_TTL_S,
  shardNames,
  StreamState,
  TenantMovedError,
  tenantRate,
  TextError,
  translateRedisError,
  RedisUnavailableError,
  UnknownTenantError,
  UnknownVoiceError,
  VOICES,
  voicesFromCatalog,
  voicesFromHash,
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
    ['WRONGSHARD s3', TenantMovedError, { tenant: 'acme', shard: 's3', retryable: true }],
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

// -- a voice per segment ---------------------------------------------------------------------------

describe('voices by language', () => {
  const base = { tenant: 'acme', nowMs: 1_700_000_000_500, requestId: RID };
  const payloads = (req) => req.args.slice(8).filter((_, i) => i % 3 === 2).map((p) => decodeSegment(p));

  test('each segment\'s script picks its language; neighbours lend theirs', () => {
    assert.equal(scriptLang('我们用 Python 写代码'), 'zh');
    assert.equal(scriptLang('Café au lait'), 'en');
    assert.equal(scriptLang('12:30 …'), null);
    assert.deepEqual(segmentLanguages(['1', '你好', '2', 'Hi', '3']), ['zh', 'zh', 'zh', 'en', 'en']);
    assert.deepEqual(segmentLanguages(['1', '2']), ['zh', 'zh']);
    assert.deepEqual(segmentLanguages(['1', 'Hi']), ['en', 'en']);
  });

  test('a long English stretch is cut off a Mandarin clause; a few words stay', () => {
    const strip = (t) => t.trim();
    assert.deepEqual(splitScripts('我说Hello world how are you你好', strip), ['我说', 'Hello world how are you', '你好']);
    assert.deepEqual(splitScripts('我用 iPhone 打电话', strip), ['我用 iPhone 打电话']);
    assert.deepEqual(segmentText('你好。Hello world. 再见。').map((s) => s.text), ['你好。', 'Hello world.', '再见。']);
  });

  test('no voice: the default voice of each segment\'s language, one sample rate', () => {
    const req = prepare('你好。Hello world. 再见。', base);
    assert.deepEqual(req.voices, ['zm_yunxi', 'en_joe', 'zm_yunxi']);
    assert.equal(req.sampleRate, 24000);
    assert.equal(req.args[2], 'zm_yunxi');
    assert.deepEqual(decodeFrame(req.header).sampleRate, 24000);
    assert.deepEqual(
      payloads(req).map((j) => [j.voice, j.lang, j.sampleRate]),
      [['zm_yunxi', 'zh', null], ['en_joe', 'en', 24000], ['zm_yunxi', 'zh', null]],
    );
    const en = prepare('Good morning. 早上好。', base);
    assert.equal(en.sampleRate, 22050);
    assert.deepEqual(payloads(en).map((j) => j.sampleRate), [null, 22050]);
  });

  test('a named voice reads every segment, as before', () => {
    const req = prepare('你好。Hello world.', { ...base, voice: 'jm_kumo' });
    assert.deepEqual(req.voices, ['jm_kumo', 'jm_kumo']);
    assert.deepEqual(payloads(req).map((j) => [j.lang, j.sampleRate]), [['zh', null], ['zh', null]]);
  });

  test('no voice for a segment\'s language: UnknownVoiceError naming the language', () => {
    const voices = { jm_kumo: VOICES.jm_kumo };
    assert.equal(prepare('你好', { ...base, voices, defaultVoices: { zh: 'jm_kumo' } }).voices[0], 'jm_kumo');
    assert.throws(
      () => prepare('你好。Hello world.', { ...base, voices, defaultVoices: { zh: 'jm_kumo' } }),
      (err) => err instanceof UnknownVoiceError && err.lang === 'en' && err.known.includes('jm_kumo') && /language 'en'/.test(err.message),
    );
  });

  test('the voices hash: the marked defaults only (workers before v1.3 mark none)', () => {
    const entry = (lang, sr, def) => JSON.stringify({ lang, sample_rate: sr, model: 'm', version: '1', ...(def ? { default: true } : {}) });
    const table = voicesFromHash({ b_zh: entry('zh', 24000, true), a_zh: entry('zh', 24000), en_x: entry('en', 16000), bad: '{' });
    assert.deepEqual(table.defaultVoices, { zh: 'b_zh' });
    assert.throws(() => prepare('Hello.', { ...base, ...table }), (err) => err instanceof UnknownVoiceError && err.lang === 'en');
    assert.deepEqual(Object.keys(table.voices).sort(), ['a_zh', 'b_zh', 'en_x']);
    assert.deepEqual(table.voices.en_x, { lang: 'en', sampleRate: 16000, model: 'm' });
  });

  test('a payload\'s sr round-trips and is optional', () => {
    const job = { requestId: RID, seq: 1, text: 'Hi.', voice: 'en_joe', lang: 'en', speed: 1.0, pauseMs: 0, enqueuedMs: 5 };
    assert.equal(decodeSegment(encodeSegment(job)).sampleRate, null);
    assert.equal(decodeSegment(encodeSegment({ ...job, sampleRate: 24000 })).sampleRate, 24000);
    assert.throws(() => decodeSegment(encodeSegment({ ...job, sampleRate: 7000 })), (err) => err instanceof ProtocolError && err.field === 'sr');
  });
});

// -- placement -------------------------------------------------------------------------------------

describe('placement', () => {
  test('FNV-1a 32 of UTF-8 bytes, unsigned', () => {
    assert.equal(fnv1a32(''), 0x811c9dc5);
    assert.equal(fnv1a32('a'), 0xe40c292c);
    assert.equal(fnv1a32('foobar'), 0xbf9cf968);
    assert.equal(fnv1a32('acme'), 1174237615); // docs/PROTOCOL.md's worked example
    assert.equal(fnv1a32('café'), fnv1a32(Buffer.from('636166c3a9', 'hex')));
    assert.equal(fnv1a32(new Uint8Array([0xff, 0xff, 0xff, 0xff])), fnv1a32(Buffer.from([255, 255, 255, 255])));
    for (const s of ['', 'a', 'z'.repeat(64), '你好😀']) {
      const h = fnv1a32(s);
      assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff, `${s}: ${h}`);
    }
  });

  test('home shard', () => {
    assert.equal(homeShard('acme', 1), 's0');
    assert.equal(homeShard('acme', 4), 's3'); // 1174237615 mod 4
    assert.equal(homeShard('acme', 1024), 's431');
    assert.throws(() => homeShard('acme', 0), ConfigError);
    assert.throws(() => homeShard('acme', 1025), ConfigError);
    assert.throws(() => homeShard('acme', 2.5), ConfigError);
    assert.throws(() => homeShard('a b', 4), UnknownTenantError);
    assert.deepEqual(shardNames(3), ['s0', 's1', 's2']);
    // spread: 1000 tenants over 16 shards, none empty, none with twice its share
    const per = new Map();
    for (let i = 0; i < 1000; i += 1) per.set(homeShard(`tenant-${i}`, 16), (per.get(homeShard(`tenant-${i}`, 16)) ?? 0) + 1);
    assert.equal(per.size, 16);
    assert.ok(Math.max(...per.values()) < 125, JSON.stringify([...per]));
  });

  test('shard count values', () => {
    assert.equal(parseShardCount(null), 1);
    assert.equal(parseShardCount(undefined), 1);
    assert.equal(parseShardCount('4'), 4);
    assert.equal(parseShardCount(Buffer.from('16')), 16);
    assert.equal(parseShardCount('1024'), 1024);
    for (const bad of ['0', '1025', '-1', '+1', ' 4', '4 ', '4.0', '0x4', 'four', '', '９']) {
      assert.throws(() => parseShardCount(bad), (err) => err instanceof ProtocolError && err.field === 'shards', bad);
    }
  });

  test('keys of the shard count and of another shard', () => {
    const k = new Keys('chorus', 's0');
    assert.equal(k.shards(), 'chorus:shards');
    assert.equal(k.ofShard('s3').tenants(), 'chorus:{s3}:tenants');
    assert.equal(k.ofShard('s3').prefix, 'chorus');
    assert.throws(() => k.ofShard('S3'), ConfigError);
  });

  /** A Placement over a fake Redis (counts GETs) and a clock the test moves. */
  function fixture(value = '4') {
    const redis = {
      value,
      gets: 0,
      async get(key) {
        assert.equal(key, 'chorus:shards');
        this.gets += 1;
        return this.value;
      },
    };
    const clock = { now: 1000 };
    const placement = new Placement(new Keys(), { redis, clock: () => clock.now });
    return { redis, clock, placement };
  }

  test('the shard count is read once per SHARD_COUNT_TTL_S', async () => {
    const { redis, clock, placement } = fixture('4');
    assert.equal(await placement.count(), 4);
    assert.equal(await placement.shardFor('acme'), 's3');
    clock.now += SHARD_COUNT_TTL_S - 0.001;
    redis.value = '2';
    assert.equal(await placement.count(), 4); // still trusted
    assert.equal(redis.gets, 1);
    clock.now += 0.001;
    assert.equal(await placement.count(), 2);
    assert.equal(await placement.shardFor('acme'), 's1');
    assert.equal(redis.gets, 2);
    // concurrent enqueues share one read
    clock.now += SHARD_COUNT_TTL_S;
    redis.value = null;
    assert.deepEqual(await Promise.all([placement.count(), placement.count(), placement.count()]), [1, 1, 1]);
    assert.equal(redis.gets, 3);
    // a damaged count is an error, not a guess; the next call reads again
    clock.now += SHARD_COUNT_TTL_S;
    redis.value = 'x';
    await assert.rejects(placement.count(), ProtocolError);
    redis.value = '4';
    assert.equal(await placement.count(), 4);
  });

  test('a fixed count reads nothing', async () => {
    const redis = { get: () => assert.fail('read') };
    const placement = new Placement(new Keys(), { redis, count: 16 });
    assert.equal(await placement.shardFor('acme'), 's15');
  });

  test('a forward is remembered for PLACEMENT_TTL_S', async () => {
    const { clock, placement } = fixture('4');
    placement.learn('acme', 's1');
    assert.equal(await placement.shardFor('acme'), 's1');
    assert.equal((await placement.keysFor('acme')).depth(), 'chorus:{s1}:depth');
    clock.now += PLACEMENT_TTL_S - 0.001;
    assert.equal(await placement.shardFor('acme'), 's1');
    clock.now += 0.001;
    assert.equal(await placement.shardFor('acme'), 's3'); // forgotten: home again
    assert.equal(placement.remembered, 0);
    assert.throws(() => placement.learn('acme', 'S!'), ConfigError);
  });

  test(`at most ${MAX_REMEMBERED} forwards, the least recently used go first`, async () => {
    const { placement } = fixture('1');
    for (let i = 0; i < MAX_REMEMBERED; i += 1) placement.learn(`t${i}`, 's5');
    assert.equal(await placement.shardFor('t0'), 's5'); // t0 is now the most recently used
    placement.learn('one-more', 's6');
    assert.equal(placement.remembered, MAX_REMEMBERED);
    assert.equal(await placement.shardFor('t1'), 's0'); // the least recently used went
    assert.equal(await placement.shardFor('t0'), 's5');
    assert.equal(await placement.shardFor('one-more'), 's6');
    placement.learn('t2', 's7'); // learning again refreshes, it does not add
    assert.equal(placement.remembered, MAX_REMEMBERED);
    assert.equal(await placement.shardFor('t2'), 's7');
  });

  test('placed follows WRONGSHARD and remembers it', async () => {
    const { redis, placement } = fixture('4');
    const forwards = { s3: 's1', s1: 's2' }; // acme: home s3 -> s1 -> s2
    const tried = [];
    const attempt = async (keys) => {
      tried.push(keys.shard);
      if (forwards[keys.shard]) throw new TenantMovedError('acme', forwards[keys.shard]);
      return keys.shard;
    };
    assert.equal(await placed(placement, 'acme', attempt), 's2');
    assert.deepEqual(tried, ['s3', 's1', 's2']);
    assert.equal(await placed(placement, 'acme', attempt), 's2'); // straight there
    assert.deepEqual(tried, ['s3', 's1', 's2', 's2']);
    assert.equal(redis.gets, 1);
    // other errors are not followed
    await assert.rejects(
      placed(placement, 'acme', async () => {
        throw new QueueFullError('acme', 1, 1, 1, null);
      }),
      QueueFullError,
    );
  });

  test(`a forward loop ends after ${MAX_SHARD_HOPS} hops in TenantMovedError`, async () => {
    const { placement } = fixture('4');
    let tries = 0;
    const loop = async (keys) => {
      tries += 1;
      throw new TenantMovedError('acme', keys.shard === 's0' ? 's1' : 's0');
    };
    await assert.rejects(placed(placement, 'acme', loop), (err) => err instanceof TenantMovedError && err.retryable);
    assert.equal(tries, MAX_SHARD_HOPS + 1);
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
