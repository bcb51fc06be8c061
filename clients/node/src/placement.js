// Where a tenant lives: the shard a producer sends its enqueue to (the Python reference's
// chorus_client.placement; docs/PROTOCOL.md, "Shards and placement").
//
// A deployment has N shards s0 … sN-1 (the string <prefix>:shards; 1 when absent). A tenant lives
// in its home shard, homeShard(tenant, N) (FNV-1a of its name, mod N), unless the tenants hash
// there holds a *forward*: the tenant's policy with a "shard" field naming another shard. The
// enqueue script answers WRONGSHARD <shard> to an enqueue sent to a shard that forwards the
// tenant, and writes nothing; the producer remembers the answer for PLACEMENT_TTL_S and enqueues
// there (placed()).
//
// So a producer reads one small key every SHARD_COUNT_TTL_S and nothing else per enqueue, and a
// placed tenant costs one refused script call per producer per PLACEMENT_TTL_S. A stale count or
// a stale memory is safe: it sends the enqueue to a shard whose forward names the right one.
import { ProtocolError, TenantMovedError, translateRedisError } from './errors.js';
import { homeShard, MAX_SHARDS, validateShard } from './keys.js';

/** How long a producer trusts the shard count it read (s). */
export const SHARD_COUNT_TTL_S = 5.0;
/** How long a producer remembers that a tenant lives outside its home shard (a WRONGSHARD answer; s). */
export const PLACEMENT_TTL_S = 60.0;
/** WRONGSHARD forwards followed for one enqueue before giving up (TenantMovedError). */
export const MAX_SHARD_HOPS = 4;
/** Tenants a Placement remembers outside their home shard (least recently used go first). */
export const MAX_REMEMBERED = 10_000;

const monotonicS = () => performance.now() / 1000;

/**
 * The shard count from the raw `<prefix>:shards` value (a string, bytes, or null when absent):
 * 1 when absent; ProtocolError when it is not a decimal integer within 1..MAX_SHARDS (a producer
 * must not guess where tenants live).
 */
export function parseShardCount(raw) {
  if (raw === null || raw === undefined) return 1;
  const text = raw instanceof Uint8Array ? Buffer.from(raw).toString('latin1') : String(raw);
  const n = /^[0-9]+$/.test(text) ? Number.parseInt(text, 10) : NaN;
  if (!(n >= 1 && n <= MAX_SHARDS)) {
    throw new ProtocolError('shards', `shard count must be an integer within 1..${MAX_SHARDS}, got '${text.slice(0, 20)}'`);
  }
  return n;
}

/**
 * A producer's view of where tenants live (one per client).
 *
 * Options: `redis` (anything with an ioredis-like `get(key)`: where the count is read), `count`
 * (fix the shard count: nothing is read), `url` (names the server in errors), `clock` (seconds,
 * monotonic; for tests).
 */
export class Placement {
  constructor(keys, { redis = null, count = null, url = '', clock = monotonicS } = {}) {
    this.keys = keys;
    this.url = url;
    this._redis = redis;
    this._clock = clock;
    this._fixed = count !== null && count !== undefined;
    this._count = this._fixed ? count : 1;
    this._countAt = -Infinity;
    this._reading = null;
    /** tenant -> {shard, at}, in least-recently-used-first order */
    this._moved = new Map();
  }

  /** The deployment's shard count (read when the cached one is older than SHARD_COUNT_TTL_S). */
  async count() {
    const now = this._clock();
    if (this._fixed || now - this._countAt < SHARD_COUNT_TTL_S) return this._count;
    // concurrent enqueues share one read
    this._reading ??= (async () => {
      try {
        let raw;
        try {
          raw = await this._redis.get(this.keys.shards());
        } catch (err) {
          throw translateRedisError(err, this.url);
        }
        this._count = parseShardCount(raw);
        this._countAt = now;
        return this._count;
      } finally {
        this._reading = null;
      }
    })();
    return this._reading;
  }

  /** The shard to send the tenant's enqueue to: a remembered forward, else its home shard. */
  async shardFor(tenant) {
    const seen = this._moved.get(tenant);
    if (seen !== undefined) {
      this._moved.delete(tenant);
      if (this._clock() - seen.at < PLACEMENT_TTL_S) {
        this._moved.set(tenant, seen); // the most recently used now
        return seen.shard;
      }
    }
    return homeShard(tenant, await this.count());
  }

  /** The Keys of the shard the tenant lives in. */
  async keysFor(tenant) {
    return this.keys.ofShard(await this.shardFor(tenant));
  }

  /** Remember a WRONGSHARD answer: the tenant lives in `shard`. */
  learn(tenant, shard) {
    validateShard(shard);
    this._moved.delete(tenant);
    this._moved.set(tenant, { shard, at: this._clock() });
    while (this._moved.size > MAX_REMEMBERED) this._moved.delete(this._moved.keys().next().value);
  }

  /** How many tenants are remembered outside their home shard. */
  get remembered() {
    return this._moved.size;
  }
}

/**
 * Run `attempt(keys)` with the keys of the shard the tenant lives in, following WRONGSHARD answers
 * (TenantMovedError) up to MAX_SHARD_HOPS times; throws the last one when the forwards do not end.
 */
export async function placed(placement, tenant, attempt) {
  let moved = null;
  for (let i = 0; i <= MAX_SHARD_HOPS; i += 1) {
    const keys = await placement.keysFor(tenant);
    try {
      return await attempt(keys);
    } catch (err) {
      if (!(err instanceof TenantMovedError)) throw err;
      moved = err;
      placement.learn(tenant, err.shard);
    }
  }
  throw moved;
}
