// Against a real redis-server and a real chorus worker (the Python paced test double: 3 frames of
// 100 ms tone per segment), and against the Python producer and subscriber.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import Redis from 'ioredis';

import {
  ChorusClient,
  DuplicateRequestError,
  homeShard,
  LaneNotAllowedError,
  newRequestId,
  QueueFullError,
  RequestCancelledError,
  RequestFailedError,
  RequestNotFoundError,
  RequestTooLargeError,
  StreamTimeoutError,
  TenantMovedError,
  UnknownTenantError,
  UnknownVoiceError,
} from '../src/index.js';
import { checkContiguous, checkTools, drain, pythonJson, startRedis, startWorker, stopProcess } from './helpers.mjs';

const ZH = '你好，世界！今天天气很好，我们一起去公园散步吧。然后我们去吃饭，好不好？';
const policy = (fields) => JSON.stringify({ weight: 1, max_queued: 100000, max_inflight: 0, lanes: ['rt', 'interactive', 'batch'], ...fields });
const longText = (clauses) => Array.from({ length: clauses }, (_, i) => `第${i}句话在这里，然后继续说下去直到这一段足够长为止。`).join('');

let server;
let worker;
let client;
let raw;

before(async () => {
  checkTools();
  server = await startRedis();
  worker = await startWorker(server.url, 'node-test');
  client = new ChorusClient(server.url);
  raw = new Redis(server.url);
});

after(async () => {
  await client?.close();
  raw?.disconnect();
  await stopProcess(worker);
  await server?.stop();
});

describe('enqueue and listen', () => {
  test('frames in order until the end frame', async () => {
    const handle = await client.enqueue(ZH, { tenant: 'acme', voice: 'jm_kumo' });
    assert.match(handle.requestId, /^s0\.[A-Za-z0-9_-]{22}$/);
    assert.equal(handle.sampleRate, 24000);
    assert.ok(handle.segments >= 2, `${handle.segments} segments`);
    const stream = client.frames(handle.requestId, { timeoutS: 30 });
    const { frames, error } = await drain(stream);
    assert.equal(error, null);
    const bySeg = checkContiguous(frames, handle.segments);
    for (const fs of bySeg.values()) assert.equal(fs.length, 3); // the paced worker: 3 frames a segment
    assert.equal(frames.length, 3 * handle.segments);
    for (const f of frames) {
      assert.equal(f.sampleRate, handle.sampleRate);
      assert.equal(f.attempt, 1);
      assert.equal(f.pcm.length, 4800); // 100 ms of PCM16 at 24 kHz
      assert.match(f.position, /^\d+-\d+$/);
    }
    assert.deepEqual(
      { ...stream.header },
      { type: 'header', requestId: handle.requestId, segments: handle.segments, voice: 'jm_kumo', sampleRate: 24000, tenant: 'acme' },
    );
    assert.deepEqual({ ...stream.end }, { type: 'end', segments: handle.segments, status: 'ok' });
    const st = await client.status(handle.requestId);
    assert.equal(st.status, 'done');
    assert.equal(st.done, handle.segments);
    assert.ok(st.finished);
  });

  test('pre-segmented text, batch priority, deadline', async () => {
    const handle = await client.enqueue(['第一段。', 'second part', '  第三段  '], {
      tenant: 'acme',
      voice: 'jf_alpha',
      priority: 'batch',
      speed: 1.25,
      deadlineS: 60,
    });
    assert.equal(handle.segments, 3);
    const st = await client.status(handle.requestId);
    assert.ok(st.deadlineMs > st.createdMs);
    const { frames, error } = await drain(client.frames(handle.requestId, { timeoutS: 30 }));
    assert.equal(error, null);
    checkContiguous(frames, 3);
  });

  test('cancel mid-stream ends the listener with RequestCancelledError', async () => {
    const handle = await client.enqueue(longText(40), { tenant: 'acme', voice: 'jm_kumo' });
    assert.ok(handle.segments >= 10, `${handle.segments} segments`);
    let cancelled = null;
    const { frames, error } = await drain(client.frames(handle.requestId, { timeoutS: 30 }), {
      onFrame: async (_f, n) => {
        if (n === 1) cancelled = await client.cancel(handle.requestId);
      },
    });
    assert.equal(cancelled, true);
    assert.ok(error instanceof RequestCancelledError, `${error}`);
    assert.equal(error.code, 'cancelled');
    assert.ok(frames.length >= 1 && frames.length < 3 * handle.segments);
    assert.equal((await client.status(handle.requestId)).status, 'cancelled');
    assert.equal(await client.cancel(handle.requestId), false); // already ended
    // resuming after the last frame heard meets the cancelled end again
    const again = await drain(client.frames(handle.requestId, { fromId: frames.at(-1).position, after: frames.at(-1) }));
    assert.ok(again.error instanceof RequestCancelledError, `${again.error}`);
    await assert.rejects(client.cancel(newRequestId()), RequestNotFoundError);
    await assert.rejects(client.cancel('not-a-request-id'), RequestNotFoundError);
  });

  test('resume from a position: every frame exactly once', async () => {
    const handle = await client.enqueue(longText(6), { tenant: 'acme', voice: 'jm_kumo' });
    const first = await drain(client.frames(handle.requestId, { timeoutS: 30 }), { stopAfter: 4 });
    assert.equal(first.error, null);
    assert.equal(first.frames.length, 4);
    const last = first.frames.at(-1);
    const rest = await drain(client.frames(handle.requestId, { fromId: last.position, after: last, timeoutS: 30 }));
    assert.equal(rest.error, null);
    const whole = await drain(client.frames(handle.requestId, { timeoutS: 30 }));
    assert.equal(whole.error, null);
    const key = (f) => `${f.segment}/${f.index}/${f.pcm.toString('hex').slice(0, 16)}`;
    assert.deepEqual([...first.frames, ...rest.frames].map(key), whole.frames.map(key));
    checkContiguous(whole.frames, handle.segments);
    // from the last position alone: nothing is left, and the stream ends without an error
    const none = await drain(client.frames(handle.requestId, { fromId: whole.frames.at(-1).position }));
    assert.deepEqual([none.frames.length, none.error], [0, null]);
  });

  test('no such request; a listener times out when nothing is written', async () => {
    await assert.rejects(drain(client.frames(newRequestId())).then((r) => Promise.reject(r.error)), RequestNotFoundError);
    await assert.rejects(client.status(newRequestId()), RequestNotFoundError);
    const idle = new ChorusClient(server.url, { shard: 's8' }); // no worker serves shard s8
    try {
      const handle = await idle.enqueue('没有人会读这个。', { tenant: 'acme' });
      const { error } = await drain(idle.frames(handle.requestId, { timeoutS: 0.5 }));
      assert.ok(error instanceof StreamTimeoutError, `${error}`);
      // a request whose metadata vanished (flushed, evicted) is reported, not waited for
      const lost = await idle.enqueue('这个请求会消失。', { tenant: 'acme' });
      await raw.del(idle.keys.request(lost.requestId));
      const gone = await drain(idle.frames(lost.requestId, { timeoutS: 20 }));
      assert.ok(gone.error instanceof RequestFailedError, `${gone.error}`);
      assert.equal(gone.error.code, 'request_lost');
    } finally {
      await idle.close();
    }
  });

  test('a failed segment is skipped and reported (malformed payload, real worker)', async () => {
    // segment 1's payload breaks the protocol (speed 9) but still names its request and seq: the
    // worker fails that segment with an error frame and serves the others
    const req = client.prepare(['第一段。', '第二段。', '第三段。'], { tenant: 'acme' });
    const broken = client.prepare(['第二段。'], { tenant: 'acme', requestId: req.requestId, nowMs: 0 });
    const payload = Buffer.from(broken.args[10]);
    const at = payload.indexOf(Buffer.from([0xa5, ...Buffer.from('speed'), 0xcb]));
    payload.writeDoubleBE(9.0, at + 7);
    payload[payload.indexOf(Buffer.from([0xa3, ...Buffer.from('seq')])) + 4] = 1;
    const args = [...req.args];
    args[13] = payload;
    await client._eval((await import('../src/client.js')).SCRIPTS.enqueue, req.keys, args);
    await client._writeHeader(req);

    const { frames, error } = await drain(client.frames(req.requestId, { timeoutS: 30, skipFailed: true }));
    assert.ok(error instanceof RequestFailedError, `${error}`);
    assert.equal(error.segment, 1);
    assert.equal(error.code, 'malformed_entry');
    assert.deepEqual([...new Set(frames.map((f) => f.segment))], [0, 2]);
    assert.equal((await client.status(req.requestId)).status, 'failed');

    // the reference's behaviour on request: the error frame ends the stream
    const strict = await drain(client.frames(req.requestId, { skipFailed: false }));
    assert.ok(strict.error instanceof RequestFailedError);
    assert.ok(strict.frames.every((f) => f.segment === 0));
  });

  test('voices from the workers\' voices hash', async () => {
    await raw.hset('chorus:voices', 'xx_test', JSON.stringify({ lang: 'en', sample_rate: 16000, model: 'm', version: '1' }));
    const fromRedis = new ChorusClient(raw, { voices: 'redis' });
    const handle = await fromRedis.enqueue('Hello there.', { tenant: 'acme', voice: 'xx_test' });
    assert.equal(handle.sampleRate, 16000);
    await assert.rejects(fromRedis.enqueue('Hello.', { tenant: 'acme', voice: 'nope' }), UnknownVoiceError);
    await client.cancel(handle.requestId); // no worker serves xx_test
  });

  test('no voice: each segment gets the default voice of its language (table and voices hash)', async () => {
    const fromRedis = new ChorusClient(raw, { voices: 'redis' });
    const table = await fromRedis.voiceTable();
    assert.equal(table.defaultVoices.zh, 'zm_yunxi'); // the worker marks the catalog's defaults
    assert.equal(table.defaultVoices.en, 'en_joe');
    for (const c of [client, fromRedis]) {
      const handle = await c.enqueue('你好。Hello world. 再见。', { tenant: 'acme' });
      assert.deepEqual(handle.voices, ['zm_yunxi', 'en_joe', 'zm_yunxi']);
      assert.equal(handle.sampleRate, 24000);
      const { frames, error } = await drain(c.frames(handle.requestId, { timeoutS: 30 }));
      assert.equal(error, null);
      checkContiguous(frames, 3);
      assert.ok(frames.every((f) => f.sampleRate === 24000));
    }
    const onlyZh = new ChorusClient(raw, { voices: { jm_kumo: { lang: 'zh', sampleRate: 24000 } }, defaultVoices: { zh: 'jm_kumo' } });
    await assert.rejects(onlyZh.enqueue('Hello world.', { tenant: 'acme' }), (err) => err instanceof UnknownVoiceError && err.lang === 'en');
  });
});

describe('refusals', () => {
  test('unknown voice and bad tenant names are refused before anything is written', async () => {
    const requests = async () => (await raw.keys('chorus:*:req:*')).length;
    const before = await requests();
    await assert.rejects(client.enqueue('你好', { tenant: 'acme', voice: 'nope' }), (err) => {
      assert.ok(err instanceof UnknownVoiceError);
      assert.equal(err.voice, 'nope');
      assert.ok(err.known.includes('jm_kumo'));
      return true;
    });
    await assert.rejects(client.enqueue('你好', { tenant: 'bad tenant' }), UnknownTenantError);
    assert.equal(await requests(), before);
  });

  test('duplicate request id', async () => {
    const requestId = newRequestId();
    await client.enqueue('第一个请求。', { tenant: 'acme', requestId });
    await assert.rejects(client.enqueue('另一个请求。', { tenant: 'acme', requestId }), (err) => {
      assert.ok(err instanceof DuplicateRequestError, `${err}`);
      assert.equal(err.requestId, requestId);
      return true;
    });
  });

  describe('tenant policies (shard s9, which no worker serves)', () => {
    let c9;
    before(async () => {
      c9 = new ChorusClient(server.url, { shard: 's9' });
      await raw.hset('chorus:{s9}:tenants', 'small', policy({ max_queued: 2 }), 'batchonly', policy({ lanes: ['batch'] }));
    });
    after(() => c9.close());

    test('QUEUEFULL with a retry-after, TOOLARGE', async () => {
      await c9.enqueue(['一', '二'], { tenant: 'small' });
      await assert.rejects(c9.enqueue('三', { tenant: 'small' }), (err) => {
        assert.ok(err instanceof QueueFullError, `${err}`);
        assert.deepEqual([err.limit, err.queued, err.requested, err.retryAfterS], [2, 2, 1, null]);
        assert.ok(err.retryable);
        return true;
      });
      // with 12 segments served in the last minute the queue has room again in a few seconds
      const bucket = Math.floor(Date.now() / 10_000);
      await raw.hset(`chorus:{s9}:busy:${bucket}`, 'small:interactive:n', 12, 'small:interactive:us', 1000);
      await assert.rejects(c9.enqueue('三', { tenant: 'small' }), (err) => {
        assert.ok(err instanceof QueueFullError);
        assert.ok(err.retryAfterS > 0 && err.retryAfterS < 10, `${err.retryAfterS}`);
        return true;
      });
      await assert.rejects(c9.enqueue(['一', '二', '三'], { tenant: 'small' }), (err) => {
        assert.ok(err instanceof RequestTooLargeError, `${err}`);
        assert.deepEqual([err.limit, err.requested], [2, 3]);
        return true;
      });
    });

    test('LANE and NOTENANT', async () => {
      await assert.rejects(c9.enqueue('你好', { tenant: 'batchonly' }), (err) => {
        assert.ok(err instanceof LaneNotAllowedError, `${err}`);
        assert.equal(err.lane, 'interactive');
        assert.deepEqual(err.allowed, ['batch']);
        return true;
      });
      await c9.enqueue('你好', { tenant: 'batchonly', priority: 'batch' });
      await raw.hset('chorus:{s9}:tenants', '*', policy({ reject: true }));
      await assert.rejects(c9.enqueue('你好', { tenant: 'stranger' }), UnknownTenantError);
    });

    test('a policy set with the Python CLI', async () => {
      const res = await pythonJson(
        'import subprocess, sys, json\n' +
          'p = subprocess.run([sys.executable, "-m", "chorus", "tenants", "set", "cli", "--max-queued", "1", "--redis", sys.argv[1]], capture_output=True, text=True)\n' +
          'print(json.dumps({"rc": p.returncode, "err": p.stderr[-2000:]}))',
        [server.url],
      );
      assert.equal(res.rc, 0, res.err);
      const c0 = new ChorusClient(server.url, { shard: 's0' });
      try {
        await assert.rejects(c0.enqueue(['一', '二'], { tenant: 'cli' }), RequestTooLargeError);
      } finally {
        await c0.close();
      }
    });
  });
});

describe('placement over shards (prefix "placed": 4 shards, no worker)', () => {
  const prefix = 'placed';
  // a tenant whose home shard under 4 shards is neither s0 (the old default) nor s3 (where it is
  // forwarded to below)
  const tenant = ['acme', 'globex', 'initech', 'umbrella'].find((t) => !['s0', 's3'].includes(homeShard(t, 4)));
  const home = homeShard(tenant, 4);
  let pc;
  const wrongShards = async () => {
    const m = /errorstat_WRONGSHARD:count=(\d+)/.exec(await raw.info('errorstats'));
    return m ? Number(m[1]) : 0;
  };
  const requestIn = async (shard, requestId) => (await raw.exists(`${prefix}:{${shard}}:req:${requestId}`)) === 1;

  before(async () => {
    await raw.set(`${prefix}:shards`, '4');
    pc = new ChorusClient(server.url, { prefix });
  });
  after(() => pc.close());

  // the Python producer's request id for one enqueue of the tenant
  const pythonEnqueue = () =>
    pythonJson(
      'import json, sys, redis\n' +
        'from broker.producer import Producer\n' +
        'from chorus_client.keys import Keys\n' +
        'res = Producer(redis.Redis.from_url(sys.argv[1]), keys=Keys(sys.argv[2])).enqueue("你好。", tenant=sys.argv[3])\n' +
        'print(json.dumps(res.request_id))',
      [server.url, prefix, tenant],
    );

  test('a tenant lands in its home shard', async () => {
    const handle = await pc.enqueue('你好，世界！', { tenant });
    assert.ok(handle.requestId.startsWith(`${home}.`), handle.requestId);
    assert.ok(await requestIn(home, handle.requestId));
    assert.equal(Number(await raw.hget(`${prefix}:{${home}}:depth`, tenant)), handle.segments);
    assert.equal(await raw.xlen(`${prefix}:{${home}}:q:${tenant}:rt`), 1);
    assert.equal((await pc.status(handle.requestId)).tenant, tenant);
    // the Python producer puts it in the same shard
    const py = await pythonEnqueue();
    assert.ok(py.startsWith(`${home}.`), py);
  });

  test('a forward entry sends the next enqueue to its shard, and is remembered', async () => {
    const forward = policy({ shard: 's3' });
    await raw.hset(`${prefix}:{${home}}:tenants`, tenant, forward);
    await raw.hset(`${prefix}:{s3}:tenants`, tenant, forward);
    const refusedBefore = await wrongShards();
    const atHome = await raw.xlen(`${prefix}:{${home}}:q:${tenant}:rt`);
    const moved = await pc.enqueue('你好，世界！', { tenant });
    assert.ok(moved.requestId.startsWith('s3.'), moved.requestId);
    assert.ok(await requestIn('s3', moved.requestId));
    assert.equal(await raw.xlen(`${prefix}:{s3}:q:${tenant}:rt`), 1);
    assert.equal(await raw.xlen(`${prefix}:{${home}}:q:${tenant}:rt`), atHome); // nothing written there
    assert.equal(await wrongShards(), refusedBefore + 1); // one refused call, nothing written
    // remembered: straight to s3, no refused call
    const again = await pc.enqueue('再来一次。', { tenant, priority: 'batch' });
    assert.ok(again.requestId.startsWith('s3.'), again.requestId);
    assert.equal(await wrongShards(), refusedBefore + 1);
    assert.equal(await pc.placement.shardFor(tenant), 's3');
    // a fresh client follows the forward too, and so does the Python producer
    const fresh = new ChorusClient(server.url, { prefix });
    try {
      assert.ok((await fresh.enqueue('你好。', { tenant })).requestId.startsWith('s3.'));
    } finally {
      await fresh.close();
    }
    const py = await pythonEnqueue();
    assert.ok(py.startsWith('s3.'), py);
  });

  test('a given request id names its shard: not routed', async () => {
    const inS3 = newRequestId('s3');
    assert.equal((await pc.enqueue('你好。', { tenant, requestId: inS3 })).requestId, inS3);
    // sent to the shard that forwards the tenant: refused, nothing written
    const inHome = newRequestId(home);
    await assert.rejects(pc.enqueue('你好。', { tenant, requestId: inHome }), (err) => {
      assert.ok(err instanceof TenantMovedError, `${err}`);
      assert.deepEqual([err.tenant, err.shard, err.retryable], [tenant, 's3', true]);
      return true;
    });
    assert.equal(await requestIn(home, inHome), false);
  });

  test('a forward loop ends in TenantMovedError', async () => {
    const looping = ['loop-a', 'loop-b', 'loop-c'].find((t) => homeShard(t, 4) !== 's1');
    const looped = homeShard(looping, 4);
    await raw.hset(`${prefix}:{${looped}}:tenants`, looping, policy({ shard: 's1' }));
    await raw.hset(`${prefix}:{s1}:tenants`, looping, policy({ shard: looped }));
    const before = await wrongShards();
    await assert.rejects(pc.enqueue('你好。', { tenant: looping }), TenantMovedError);
    assert.equal(await wrongShards(), before + 5); // the first try and MAX_SHARD_HOPS more
    for (const key of await raw.keys(`${prefix}:*:req:*`)) assert.notEqual(await raw.hget(key, 'tenant'), looping, key);
  });

  test('a pinned client (option shard) is not routed', async () => {
    const pinned = new ChorusClient(server.url, { prefix, shard: 's2' });
    try {
      const other = ['alpha', 'beta', 'gamma', 'delta'].find((t) => homeShard(t, 4) !== 's2');
      assert.ok((await pinned.enqueue('你好。', { tenant: other })).requestId.startsWith('s2.'));
    } finally {
      await pinned.close();
    }
  });
});

describe('interoperability with the Python client', () => {
  test('a request enqueued by Python, heard by Node', async () => {
    const py = await pythonJson(
      'import json, sys, redis\n' +
        'from broker.producer import Producer\n' +
        'res = Producer(redis.Redis.from_url(sys.argv[1])).enqueue(sys.argv[2], tenant="python", voice="jm_kumo")\n' +
        'print(json.dumps({"request_id": res.request_id, "segments": res.segments, "sample_rate": res.sample_rate}))',
      [server.url, ZH],
    );
    const stream = client.frames(py.request_id, { timeoutS: 30 });
    const { frames, error } = await drain(stream);
    assert.equal(error, null);
    checkContiguous(frames, py.segments);
    assert.equal(stream.header.tenant, 'python');
    assert.equal(stream.header.sampleRate, py.sample_rate);
  });

  test('a request enqueued by Node, heard by the Python subscriber', async () => {
    const handle = await client.enqueue(ZH, { tenant: 'node' });
    const py = await pythonJson(
      'import json, sys, redis\n' +
        'try:\n' +
        '    from gateway.subscriber import Subscriber\n' +
        '    frames = Subscriber(redis.Redis.from_url(sys.argv[1])).frames(sys.argv[2], timeout_s=30)\n' +
        'except ImportError:\n' +
        '    from chorus_client import Client\n' +
        '    frames = Client.from_url(sys.argv[1]).frames(sys.argv[2], timeout_s=30)\n' +
        'print(json.dumps([[f.segment, f.index, f.last, f.sample_rate, f.pcm.hex()] for f in frames]))',
      [server.url, handle.requestId],
    );
    const mine = await drain(client.frames(handle.requestId));
    assert.equal(mine.error, null);
    assert.deepEqual(
      py,
      mine.frames.map((f) => [f.segment, f.index, f.last, f.sampleRate, f.pcm.toString('hex')]),
    );
    assert.equal(new Set(py.map(([s]) => s)).size, handle.segments);
  });
});
