// The chorus client: enqueue text (one atomic script call, then the header frame), listen to a
// request's audio, cancel it, read its status. Everything it writes and reads is described
// in docs/PROTOCOL.md; the Lua scripts are the Python reference's, assembled (lua/*.lua).
// An enqueue goes to the shard the tenant lives in (src/placement.js), unless the caller chose
// the shard (a given request id names its own; the client's `shard` option pins every enqueue).
// A request without a voice gets, per segment, the default voice of the segment's language
// (src/language.js), at one sample rate: its first segment's voice's (docs/PROTOCOL.md §3.1).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Redis from 'ioredis';

import {
  ChorusError,
  ConfigError,
  InvalidRequestError,
  isConnectionError,
  isOutage,
  parseRefusal,
  ProtocolError,
  REFUSALS,
  refusalError,
  RequestNotFoundError,
  TextError,
  translateRedisError,
  UnknownVoiceError,
} from './errors.js';
import { GROUP, Keys, LANES, newRequestId, REQUEST_RE, validateTenant } from './keys.js';
import { DEFAULT_LANG, segmentLanguages } from './language.js';
import { Placement, placed } from './placement.js';
import {
  BLOCK_MS,
  before,
  DEFAULT_TIMEOUT_S,
  parsePosition,
  positionOf,
  READ_COUNT,
  StreamState,
  streamEntries,
} from './listen.js';
import { encodeFrame, encodeSegment, END_STATUS, FRAME_END, FRAME_HEADER } from './protocol.js';
import { presegmented, segmentText, weightedChars } from './segment.js';
import { DEFAULT_VOICES, resolveVoice, VOICES, VOICES_TTL_S, voicesFromHash } from './voices.js';

/** What a request's `priority` may be (the `rt` lane follows from `interactive`). */
export const PRIORITIES = Object.freeze(['interactive', 'batch']);
export const MIN_SPEED = 0.5;
export const MAX_SPEED = 2.0;
/** Request metadata nobody finishes lives this long (s); also the longest deadline. */
export const REQUEST_TTL_S = 24 * 3600;
/** The audio stream's expiry set with the header frame (s). */
export const PENDING_AUDIO_TTL_S = 3600;
/** A cancelled request's audio stays readable this long after the canceller's end frame (s). */
export const CANCELLED_AUDIO_TTL_S = 300;
/** Tries of a call that is safe to repeat, after a lost connection or a timeout. */
export const ENQUEUE_TRIES = 3;
const RETRY_STEP_MS = 50;
/** Width of the time buckets of served work (SCHEDULER.bucket_s) and the window of the service rate. */
const BUCKET_S = 10;
const WINDOW_S = 60;

/** Request statuses after which nothing changes. */
export const FINAL_STATUSES = Object.freeze(['done', 'failed', 'cancelled']);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function loadScript(name) {
  const source = readFileSync(new URL(`../lua/${name}.lua`, import.meta.url), 'utf8');
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/** The assembled scripts (generated from the Python reference; see scripts/sync-lua.mjs). */
export const SCRIPTS = Object.freeze({ enqueue: loadScript('enqueue'), cancel: loadScript('cancel') });

function laneNumber(priority, seq) {
  if (priority === 'batch') return LANES.indexOf('batch') + 1;
  // the first segment of an interactive request is real-time: it decides first audio
  return LANES.indexOf(seq === 0 ? 'rt' : 'interactive') + 1;
}

function pyRepr(value) {
  return typeof value === 'string' ? `'${value}'` : String(value);
}

/** The request's options checked (what {@link prepare} checks before segmenting): {spec, priority};
 * spec is the named voice, or null when the request names none (each segment then gets one). */
function checkOptions(options, keys) {
  const {
    tenant,
    voices = VOICES,
    defaultVoices = DEFAULT_VOICES,
    voice = null,
    priority = 'interactive',
    speed = 1.0,
    deadlineS = null,
    requestId = null,
  } = options;
  validateTenant(tenant);
  const spec = voice ? resolveVoice(voices, defaultVoices, voice) : null;
  if (!PRIORITIES.includes(priority)) {
    throw new InvalidRequestError('priority', `must be one of ('interactive', 'batch'), got ${pyRepr(priority)}`);
  }
  if (typeof speed !== 'number' || !(speed >= MIN_SPEED && speed <= MAX_SPEED)) {
    throw new InvalidRequestError('speed', `must be within [${MIN_SPEED.toFixed(1)}, ${MAX_SPEED.toFixed(1)}], got ${speed}`);
  }
  if (deadlineS != null && !(typeof deadlineS === 'number' && deadlineS > 0 && deadlineS <= REQUEST_TTL_S)) {
    throw new InvalidRequestError('deadline_s', `must be within (0, ${REQUEST_TTL_S}] seconds, got ${pyRepr(deadlineS)}`);
  }
  if (requestId != null) {
    const m = typeof requestId === 'string' ? REQUEST_RE.exec(requestId) : null;
    if (!m || m[1] !== keys.shard) {
      throw new InvalidRequestError(
        'request_id',
        `must be ${keys.shard}.<22 url-safe base64 characters> (see newRequestId), got ${pyRepr(requestId)}`,
      );
    }
  }
  return { spec, priority };
}

/**
 * Validate and segment a request and build the enqueue script's KEYS and ARGV; nothing touches
 * Redis. Throws UnknownTenantError, UnknownVoiceError, InvalidRequestError or TextError.
 *
 * Without `voice`, each segment gets `defaultVoices[lang]` for its language (segmentLanguages);
 * the request's voice (header, metadata) and sample rate are its first segment's, and a segment
 * whose voice has another rate carries the request's as `sr` (the worker resamples it).
 *
 * @param {string|string[]|Uint8Array} text a text to segment, or segments already cut (one model call each)
 * @param {object} options tenant (required), keys (a Keys: the shard the request goes to), voices /
 *   defaultVoices (a voice table), voice, priority ('interactive' | 'batch'), speed (0.5 … 2),
 *   deadlineS (seconds from the enqueue, by the Redis server's clock), requestId (<shard>.<22 url-safe
 *   base64 characters>, of the shard of `keys`), nowMs
 */
export function prepare(text, options = {}) {
  const {
    tenant,
    keys = new Keys(),
    voices = VOICES,
    defaultVoices = DEFAULT_VOICES,
    speed = 1.0,
    deadlineS = null,
    requestId = null,
    nowMs = Date.now(),
  } = options;
  const { spec, priority } = checkOptions(options, keys);
  let input = text;
  if (input instanceof Uint8Array) {
    try {
      input = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      throw new TextError('text is not valid UTF-8');
    }
  }
  const segments = Array.isArray(input) ? presegmented(input) : segmentText(input);
  const chosen = spec
    ? segments.map(() => spec)
    : segmentLanguages(segments.map((s) => s.text)).map((lang) => resolveVoice(voices, defaultVoices, null, lang));
  const first = chosen[0]; // the request's voice: its rate is the header's, and every segment's audio's
  const rid = requestId ?? newRequestId(keys.shard);
  const now = Math.trunc(nowMs);
  // relative: the script adds it to the Redis server's clock, so the producer's clock does not matter
  const withinMs = deadlineS ? Math.max(1, Math.trunc(deadlineS * 1000)) : 0;
  const args = [tenant, rid, first.name, String(now), String(withinMs), String(REQUEST_TTL_S), GROUP, String(segments.length)];
  segments.forEach((seg, seq) => {
    const v = chosen[seq];
    const payload = encodeSegment({
      requestId: rid,
      seq,
      text: seg.text,
      voice: v.name,
      lang: v.lang,
      speed,
      pauseMs: seg.pauseMs,
      enqueuedMs: now,
      sampleRate: v.sampleRate === first.sampleRate ? null : first.sampleRate, // the worker resamples
    });
    args.push(String(laneNumber(priority, seq)), String(weightedChars(seg.text)), payload);
  });
  const header = encodeFrame({
    type: FRAME_HEADER,
    requestId: rid,
    segments: segments.length,
    voice: first.name,
    sampleRate: first.sampleRate,
    tenant,
  });
  return {
    requestId: rid,
    keys: keys.enqueueKeys(tenant, keys.request(rid)),
    args,
    audioKey: keys.audio(rid),
    header,
    segments: segments.length,
    sampleRate: first.sampleRate,
    tenant,
    texts: segments,
    voices: chosen.map((v) => v.name),
  };
}

/** Segments per second served for `tenant`, from HGETALL replies of the last minute's busy buckets. */
export function tenantRate(buckets, tenant, spanS) {
  let n = 0;
  for (const bucket of buckets) {
    for (const [name, value] of Object.entries(bucket ?? {})) {
      const parts = rsplit(name, ':', 2);
      if (parts.length === 3 && LANES.includes(parts[1]) && parts[0] === tenant && parts[2] === 'n') {
        n += Number.parseInt(value, 10) || 0;
      }
    }
  }
  return n / Math.max(spanS, 1e-3);
}

function rsplit(text, sep, max) {
  const parts = text.split(sep);
  if (parts.length <= max + 1) return parts;
  return [parts.slice(0, parts.length - max).join(sep), ...parts.slice(parts.length - max)];
}

function describe(redis) {
  const o = redis?.options ?? {};
  if (o.path) return `unix://${o.path}?db=${o.db ?? 0}`;
  return `${o.tls ? 'rediss' : 'redis'}://${o.host ?? '?'}:${o.port ?? '?'}/${o.db ?? 0}`;
}

async function withRetries(call) {
  for (let attempt = 1; attempt < ENQUEUE_TRIES; attempt += 1) {
    try {
      return await call();
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      await sleep(RETRY_STEP_MS * attempt);
    }
  }
  return call();
}

export class ChorusClient {
  /**
   * @param {import('ioredis').Redis|string|object} [redis] an ioredis client (left open by close()),
   *   a redis:// URL or ioredis options (the client then owns the connection)
   * @param {object} [options] prefix ('chorus'); shard: pin every enqueue to this shard (default:
   *   none, each enqueue goes to the shard its tenant lives in, see src/placement.js); voices: a
   *   voice table ({name: {lang, sampleRate}}, default the built-in VOICES) or 'redis' to read each
   *   voice from the `<prefix>:voices` hash that workers write; defaultVoices ({lang: name}) for a table
   */
  constructor(redis = 'redis://127.0.0.1:6379/0', { prefix, shard, voices = VOICES, defaultVoices = DEFAULT_VOICES } = {}) {
    if (redis instanceof Redis || redis?.constructor?.name === 'Cluster' || typeof redis?.evalsha === 'function') {
      this.redis = redis;
      this._owned = false;
    } else {
      this.redis = new Redis(redis);
      this._owned = true;
    }
    this.keys = new Keys(prefix, shard ?? undefined);
    /** The shard every enqueue goes to when the `shard` option named one; null: where the tenant lives. */
    this.pinnedShard = shard ?? null;
    this.voices = voices;
    this.defaultVoices = defaultVoices;
    this.url = describe(this.redis);
    /** Where tenants live: the deployment's shard count and the forwards met (src/placement.js). */
    this.placement = new Placement(this.keys, { redis: this.redis, url: this.url });
    this._scriptsLoaded = false;
    this._voiceTable = null;
    this._voiceTableAt = -Infinity;
  }

  /** Close the connection when this client opened it. */
  async close() {
    if (this._owned) await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /** SCRIPT LOAD both scripts (done on first use anyway; EVAL stands in after a NOSCRIPT). */
  async loadScripts() {
    for (const script of Object.values(SCRIPTS)) {
      const sha = await this.redis.script('LOAD', script.source);
      if (sha !== script.sha) throw new ChorusError(`SCRIPT LOAD answered ${sha} for ${script.name}, expected ${script.sha}`);
    }
    this._scriptsLoaded = true;
  }

  async _eval(script, keys, args) {
    if (!this._scriptsLoaded) {
      // best effort: in a cluster this loads one node, and EVAL covers the others
      await this.loadScripts().catch((err) => {
        if (isConnectionError(err)) throw err;
      });
      this._scriptsLoaded = true;
    }
    try {
      return await this.redis.evalsha(script.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!String(err?.message ?? '').startsWith('NOSCRIPT')) throw err;
      return this.redis.eval(script.source, keys.length, ...keys, ...args);
    }
  }

  /**
   * {@link prepare} with this client's voice table, for the shard of `options.keys`, else of
   * `options.requestId`, else this client's keys (shard s0, or the `shard` option). It does not
   * look up where the tenant lives: {@link ChorusClient#enqueue} does.
   */
  prepare(text, options = {}) {
    if (this.voices === 'redis') {
      throw new ConfigError("prepare() needs a voice table; with voices: 'redis' use voice(name) and prepare()");
    }
    const keys = options.keys ?? this._requestKeys(options.requestId) ?? this.keys;
    return prepare(text, { voices: this.voices, defaultVoices: this.defaultVoices, ...options, keys });
  }

  /** The keys of a request id's shard; null when it is not a request id (prepare refuses it). */
  _requestKeys(requestId) {
    const m = typeof requestId === 'string' ? REQUEST_RE.exec(requestId) : null;
    return m ? this.keys.ofShard(m[1]) : null;
  }

  /**
   * A voice as {name, lang, sampleRate}: from the voice table, or with voices 'redis' from the
   * `<prefix>:voices` hash the workers write (JSON {lang, sample_rate, model, version, default}).
   * Without a name: the default voice of `lang`. UnknownVoiceError when there is no such voice.
   */
  async voice(name, lang = DEFAULT_LANG) {
    if (this.voices !== 'redis') return resolveVoice(this.voices, this.defaultVoices, name, lang);
    if (!name) {
      const table = await this.voiceTable();
      return resolveVoice(table.voices, table.defaultVoices, null, lang);
    }
    let raw;
    let known = [];
    try {
      raw = await this.redis.hget(this.keys.voices(), name);
      if (raw === null) known = await this.redis.hkeys(this.keys.voices());
    } catch (err) {
      throw translateRedisError(err, this.url);
    }
    if (raw === null) throw new UnknownVoiceError(name, known.sort());
    try {
      const data = JSON.parse(raw);
      const sampleRate = Number.parseInt(data.sample_rate, 10);
      if (typeof data.lang !== 'string' || !Number.isInteger(sampleRate)) throw new Error('lang or sample_rate missing');
      return { name, lang: data.lang, sampleRate };
    } catch (err) {
      throw new ProtocolError(`${this.keys.voices()}[${name}]`, `not a voice description: ${err.message}`);
    }
  }

  /**
   * The voice table the workers publish in the `<prefix>:voices` hash ({voices, defaultVoices},
   * see voicesFromHash), read again once older than VOICES_TTL_S: what a request without a voice
   * chooses from with `voices: 'redis'`.
   */
  async voiceTable() {
    const now = Date.now() / 1000;
    if (this._voiceTable === null || now - this._voiceTableAt >= VOICES_TTL_S) {
      let raw;
      try {
        raw = await this.redis.hgetall(this.keys.voices());
      } catch (err) {
        throw translateRedisError(err, this.url);
      }
      this._voiceTable = voicesFromHash(raw);
      this._voiceTableAt = now;
    }
    return this._voiceTable;
  }

  /**
   * Enqueue a request and write its audio stream's header; returns {requestId, segments, sampleRate,
   * voices} (voices: each segment's voice). Without `voice`, each segment gets the default voice
   * of its language: from the table's `defaultVoices`, or with `voices: 'redis'` the voice the
   * workers mark as their language's default in the voices hash (read at most every VOICES_TTL_S).
   *
   * The request goes to the shard the tenant lives in: its home shard (`homeShard`, with the
   * deployment's shard count read from `<prefix>:shards` at most every SHARD_COUNT_TTL_S), or the
   * shard a WRONGSHARD answer named (followed at once and remembered for PLACEMENT_TTL_S). A given
   * `requestId` names its shard, and the client's `shard` option pins one: such an enqueue is not
   * routed, and a WRONGSHARD answer is thrown as TenantMovedError.
   *
   * Throws what prepare throws (invalid options and an unknown voice before anything is sent);
   * QueueFullError (with retryAfterS), RequestTooLargeError, LaneNotAllowedError,
   * UnknownTenantError, DuplicateRequestError, BadArgumentsError or TenantMovedError when the
   * script refuses (nothing is written then);
   * RedisUnavailableError and the like for Redis failures (lost connections and timeouts are
   * retried first: the script is idempotent by request id).
   */
  async enqueue(text, options = {}) {
    let opts;
    if (this.voices === 'redis' && options.voice) {
      validateTenant(options.tenant);
      const v = await this.voice(options.voice);
      const table = { [v.name]: { lang: v.lang, sampleRate: v.sampleRate } };
      opts = { ...options, voices: table, defaultVoices: {}, voice: v.name };
    } else if (this.voices === 'redis') {
      validateTenant(options.tenant);
      opts = { ...options, ...(await this.voiceTable()), voice: null };
    } else {
      opts = { voices: this.voices, defaultVoices: this.defaultVoices, ...options };
    }
    const given = options.requestId != null ? (this._requestKeys(options.requestId) ?? this.keys) : null;
    checkOptions(opts, given ?? this.keys); // invalid options are refused before anything is sent
    const attempt = (keys) => this._enqueueIn(text, { ...opts, keys });
    if (given !== null) return attempt(given); // the request id names its shard
    if (this.pinnedShard !== null) return attempt(this.keys);
    return placed(this.placement, options.tenant, attempt);
  }

  async _enqueueIn(text, options) {
    const req = prepare(text, options);
    try {
      await withRetries(() => this._eval(SCRIPTS.enqueue, req.keys, req.args));
    } catch (err) {
      const refusal = err?.name === 'ReplyError' ? parseRefusal(err.message) : null;
      if (refusal === null) throw translateRedisError(err, this.url);
      const rate = REFUSALS[refusal.kind].needsRate ? await this.serviceRate(req.tenant, options.keys).catch(() => null) : null;
      throw refusalError(refusal, { tenant: req.tenant, requestId: req.requestId, requested: req.segments, rate });
    }
    try {
      await withRetries(() => this._writeHeader(req));
    } catch (err) {
      throw translateRedisError(err, this.url);
    }
    return { requestId: req.requestId, segments: req.segments, sampleRate: req.sampleRate, voices: req.voices };
  }

  async _writeHeader(req) {
    // a retry may add a second header: harmless
    const replies = await this.redis.multi().xadd(req.audioKey, '*', 'f', req.header).expire(req.audioKey, PENDING_AUDIO_TTL_S).exec();
    for (const [err] of replies ?? []) if (err) throw err;
  }

  /** Segments per second completed for `tenant` over the last minute (0 when none). */
  async serviceRate(tenant, keys = this.keys) {
    const now = Date.now() / 1000;
    const last = Math.floor(now / BUCKET_S);
    const first = last - Math.floor(WINDOW_S / BUCKET_S);
    const pipe = this.redis.pipeline();
    for (let b = first; b <= last; b += 1) pipe.hgetall(keys.busy(b));
    const replies = await pipe.exec();
    return tenantRate(
      replies.map(([err, value]) => (err ? {} : value)),
      tenant,
      now - first * BUCKET_S,
    );
  }

  /**
   * Cancel a request: true when it is now cancelled, false when it had already ended. Its audio
   * stream then ends with a `cancelled` end frame. RequestNotFoundError for an unknown or expired
   * request (or a string that is not a request id).
   */
  async cancel(requestId) {
    const keys = this.keys.forRequest(requestId);
    const requestKey = keys.request(requestId);
    let res;
    try {
      res = Number(await this._eval(SCRIPTS.cancel, [requestKey], []));
    } catch (err) {
      throw translateRedisError(err, this.url);
    }
    if (res < 0) throw new RequestNotFoundError(requestId);
    if (res === 0) return false;
    try {
      const segments = Number.parseInt((await this.redis.hget(requestKey, 'segments')) ?? '0', 10) || 0;
      const end = encodeFrame({ type: FRAME_END, segments: Math.max(1, segments), status: END_STATUS.CANCELLED });
      const audio = keys.audio(requestId);
      const replies = await this.redis.multi().xadd(audio, '*', 'f', end).expire(audio, CANCELLED_AUDIO_TTL_S).exec();
      for (const [err] of replies ?? []) if (err) throw err;
    } catch (err) {
      throw translateRedisError(err, this.url);
    }
    return true;
  }

  /**
   * The request's metadata: {requestId, status ('queued'|'running'|'done'|'failed'|'cancelled'),
   * tenant, voice, segments, done (completed, failed ones included), failed, createdMs, deadlineMs
   * (null: none), cancelled, finished}.
   * RequestNotFoundError for an unknown or expired request.
   */
  async status(requestId) {
    const keys = this.keys.forRequest(requestId);
    let h;
    try {
      h = await this.redis.hgetall(keys.request(requestId));
    } catch (err) {
      throw translateRedisError(err, this.url);
    }
    if (!h || !Object.keys(h).length) throw new RequestNotFoundError(requestId);
    const int = (v) => (v == null ? 0 : Number.parseInt(v, 10) || 0);
    return {
      requestId,
      status: h.status ?? null,
      tenant: h.tenant ?? null,
      voice: h.voice ?? null,
      segments: int(h.segments),
      done: int(h.done),
      failed: int(h.failed),
      createdMs: int(h.created),
      deadlineMs: int(h.deadline) || null,
      cancelled: h.cancelled === '1',
      /** done, failed or cancelled */
      finished: FINAL_STATUSES.includes(h.status),
    };
  }

  /**
   * The request's audio frames, in order, exactly once, until its end frame: an AsyncIterable
   * of {segment, index, last, sampleRate, attempt, pcm, position}. See {@link FrameStream}.
   * @param {string} requestId
   * @param {object} [options] fromId, after, timeoutS (60), skipFailed (false), blockMs (1000)
   */
  frames(requestId, options = {}) {
    return new FrameStream(this, requestId, options);
  }
}

/**
 * One listener of one request's audio stream. Iterate it once with `for await`. It reads the
 * stream on its own connection (a duplicate of the client's: XREAD BLOCK holds a connection),
 * closed when the iteration ends.
 *
 * Errors: RequestNotFoundError (no such request when listening starts), RequestCancelledError,
 * RequestFailedError (an error frame; with skipFailed, raised after the last segment and listing
 * every failed segment in `failures`), RequestIncompleteError (the end frame came before every
 * segment), StreamTimeoutError (no entry for timeoutS), RedisUnavailableError (an outage longer
 * than timeoutS), ProtocolError (a malformed frame).
 *
 * Resuming: every frame carries `position` (the stream entry id, with `/<k>` when that entry
 * released several frames and only `k` of them are handed out). `fromId: position` rebuilds the
 * listener's state from the entries up to it and reads on with no frame twice or missing, as the
 * gateway's Last-Event-ID does. (`after: {segment, index}` also hands out again, from the replayed
 * part, every frame after that one.)
 */
export class FrameStream {
  constructor(client, requestId, { fromId = null, after = null, timeoutS = DEFAULT_TIMEOUT_S, skipFailed = false, blockMs = BLOCK_MS } = {}) {
    this.client = client;
    this.requestId = requestId;
    this.fromId = fromId;
    this.after = after;
    this.timeoutS = timeoutS;
    this.blockMs = Math.max(1, Math.min(blockMs, Math.ceil(timeoutS * 1000)));
    this.state = new StreamState(requestId, { skipFailed });
    this._started = false;
  }

  /** The header frame, once read: {requestId, segments, voice, sampleRate, tenant}. */
  get header() {
    return this.state.header;
  }

  /** The end frame, once read: {segments, status}. */
  get end() {
    return this.state.end;
  }

  /** Error frames seen so far: [{segment, code, message}]. */
  get failures() {
    return this.state.failures;
  }

  /** The last stream entry id read. */
  get lastId() {
    return this.state.lastId;
  }

  /** Counters of the reorderer: duplicates and superseded frames dropped, frames of failed segments skipped. */
  get dropped() {
    const o = this.state.order;
    return { duplicates: o.duplicates, superseded: o.superseded, skipped: o.skipped };
  }

  [Symbol.asyncIterator]() {
    if (this._started) throw new ChorusError('a FrameStream can be iterated once; call frames() again');
    this._started = true;
    return this._run();
  }

  _wanted(frame) {
    const a = this.after;
    return !a || before(a.segment, a.index, frame.segment, frame.index);
  }

  _out(frame, position) {
    return {
      segment: frame.segment,
      index: frame.index,
      last: frame.last,
      sampleRate: frame.sampleRate,
      attempt: frame.attempt,
      pcm: frame.pcm,
      position,
    };
  }

  async *_run() {
    const { client, requestId, state } = this;
    const keys = client.keys.forRequest(requestId);
    const audio = keys.audio(requestId);
    const requestKey = keys.request(requestId);
    const url = client.url;
    // commands fail at once while disconnected (the outage backoff below decides), no offline queue
    const options = { lazyConnect: true, enableOfflineQueue: false };
    const conn = client.redis.isCluster ? client.redis.duplicate([], options) : client.redis.duplicate(options);
    conn.on('error', () => {}); // reported through the commands; ioredis reconnects by itself
    try {
      try {
        await conn.connect();
        const [a, r] = await Promise.all([conn.exists(audio), conn.exists(requestKey)]);
        if (!a && !r) throw new RequestNotFoundError(requestId);
      } catch (err) {
        throw translateRedisError(err, url);
      }
      if (this.fromId !== null && this.fromId !== undefined) {
        const [entryId, handed] = parsePosition(this.fromId);
        let entries;
        try {
          entries = await conn.xrangeBuffer(audio, '-', entryId);
        } catch (err) {
          throw translateRedisError(err, url);
        }
        for (const [n, entry] of entries.entries()) {
          // what the replayed entries release was handed out before (except after `after`); of the
          // position's own entry, the frames after the first `handed` were not
          const released = state.feed([entry]);
          const own = n === entries.length - 1 && String(entry[0]) === entryId && handed !== null;
          for (const [i, f] of released.entries()) {
            const pos = positionOf(state.lastId, i, released.length);
            if ((own && i >= handed) || (this.after && this._wanted(f))) yield this._out(f, pos);
          }
          if (state.error !== null) break;
        }
        state.lastId = entryId;
        if (state.error !== null || state.finished) state.checkComplete();
      }
      while (!state.finished) {
        let reply;
        try {
          reply = await conn.xreadBuffer('COUNT', READ_COUNT, 'BLOCK', this.blockMs, 'STREAMS', audio, state.lastId);
        } catch (err) {
          if (!isOutage(err)) throw translateRedisError(err, url);
          await sleep(state.outage(err, url, this.timeoutS) * 1000);
          continue;
        }
        state.reconnected();
        for (const entry of streamEntries(reply)) {
          const released = state.feed([entry]);
          for (const [i, f] of released.entries()) {
            if (this._wanted(f)) yield this._out(f, positionOf(state.lastId, i, released.length));
          }
          if (state.error !== null) break;
        }
        state.checkComplete();
        if (!state.finished && state.lostCheckDue()) {
          let exists = 1;
          try {
            exists = await conn.exists(requestKey);
          } catch (err) {
            if (!isOutage(err)) throw translateRedisError(err, url);
          }
          if (!exists) throw state.lost();
        }
        state.checkTimeout(this.timeoutS);
      }
    } finally {
      conn.disconnect();
    }
  }
}
