// Every Redis key name chorus uses (docs/PROTOCOL.md, the Python reference's Keys class).
// Keys of one shard share the hash tag {<shard>}; a request's audio stream has its own tag
// {r:<request>}. Request ids carry their shard: <shard>.<22 url-safe base64 characters>.
// A deployment has N shards s0 … sN-1 (<prefix>:shards, 1 when absent); a tenant's home shard is
// homeShard(tenant, N), unless an entry there forwards it (src/placement.js).
import { randomBytes } from 'node:crypto';

import { ConfigError, InvalidRequestError, RequestNotFoundError, UnknownTenantError } from './errors.js';

export const DEFAULT_PREFIX = 'chorus';
export const DEFAULT_SHARD = 's0';
/** Lanes in claim order; a lane's number in the enqueue script's arguments is its 1-based position. */
export const LANES = Object.freeze(['rt', 'interactive', 'batch']);
/** The consumer group every worker joins on every lane stream. */
export const GROUP = 'workers';
/** Most shards a deployment may have (`<prefix>:shards`; names s0 … s1023). */
export const MAX_SHARDS = 1024;

export const TENANT_RE = /^[A-Za-z0-9_.-]{1,64}$/;
export const SHARD_RE = /^[a-z0-9]{1,8}$/;
export const REQUEST_RE = /^([a-z0-9]{1,8})\.([A-Za-z0-9_-]{22})$/;

export function validateTenant(tenant) {
  if (typeof tenant !== 'string' || !TENANT_RE.test(tenant)) {
    throw new UnknownTenantError(String(tenant), `tenant names match ${TENANT_RE.source}`);
  }
  return tenant;
}

/** `shard` when it is a shard name ([a-z0-9]{1,8}); ConfigError otherwise. */
export function validateShard(shard) {
  if (typeof shard !== 'string' || !SHARD_RE.test(shard)) {
    throw new ConfigError(`shard '${shard}' must match ${SHARD_RE.source}`);
  }
  return shard;
}

/** The name of shard `index`: s<index>. */
export function shardName(index) {
  return `s${index}`;
}

function checkCount(count) {
  if (!Number.isInteger(count) || count < 1 || count > MAX_SHARDS) {
    throw new ConfigError(`a deployment has 1..${MAX_SHARDS} shards, not ${count}`);
  }
  return count;
}

/** s0 … s<count-1>; ConfigError for a count outside 1..MAX_SHARDS. */
export function shardNames(count) {
  return Array.from({ length: checkCount(count) }, (_, i) => shardName(i));
}

const FNV_OFFSET_BASIS = 2166136261;
const FNV_PRIME = 16777619;
const utf8 = new TextEncoder();

/**
 * 32-bit FNV-1a (offset basis 2166136261, prime 16777619) of `data`: a string (hashed as its UTF-8
 * bytes) or bytes. An unsigned integer, equal to the Python reference's `fnv1a32`.
 */
export function fnv1a32(data) {
  const bytes = typeof data === 'string' ? utf8.encode(data) : data;
  let h = FNV_OFFSET_BASIS;
  for (const byte of bytes) {
    // Math.imul multiplies modulo 2^32 (a float multiplication would lose the low bits)
    h = Math.imul(h ^ byte, FNV_PRIME) >>> 0;
  }
  return h >>> 0;
}

/** The shard a tenant lives in unless a forward entry there says otherwise:
 * s<fnv1a32(UTF-8 name) mod count>. UnknownTenantError for a bad name, ConfigError for a bad count. */
export function homeShard(tenant, count) {
  validateTenant(tenant);
  return shardName(fnv1a32(tenant) % checkCount(count));
}

/** An unguessable request id (128 random bits) that names its shard. */
export function newRequestId(shard = DEFAULT_SHARD) {
  return `${shard}.${randomBytes(16).toString('base64url')}`;
}

/** The shard of a request id; RequestNotFoundError for anything that is not a request id. */
export function shardOf(requestId) {
  const m = typeof requestId === 'string' ? REQUEST_RE.exec(requestId) : null;
  if (!m) throw new RequestNotFoundError(String(requestId));
  return m[1];
}

export class Keys {
  constructor(prefix = DEFAULT_PREFIX, shard = DEFAULT_SHARD) {
    validateShard(shard);
    if (typeof prefix !== 'string' || !prefix) throw new ConfigError('the key prefix must be a non-empty string');
    this.prefix = prefix;
    this.shard = shard;
    Object.freeze(this);
  }

  /** The keys of another shard of this deployment. */
  ofShard(shard) {
    return new Keys(this.prefix, shard);
  }

  /** String: the deployment's shard count N (shards s0 … sN-1); absent means 1. */
  shards() {
    return `${this.prefix}:shards`;
  }

  get #s() {
    return `${this.prefix}:{${this.shard}}`;
  }

  queuePrefix() {
    return `${this.#s}:q:`;
  }

  queue(tenant, lane) {
    if (!LANES.includes(lane)) {
      throw new InvalidRequestError('lane', `unknown lane '${lane}'; lanes are ${LANES.join(', ')}`);
    }
    return `${this.queuePrefix()}${validateTenant(tenant)}:${lane}`;
  }

  /** KEYS of the enqueue script, in order: request hash, depth, active, active set, wake, the
   * tenant's lane streams in LANES order, tenants, drr, fresh. */
  enqueueKeys(tenant, requestKey) {
    return [
      requestKey,
      this.depth(),
      this.active(),
      this.activeSet(),
      this.wake(),
      ...LANES.map((lane) => this.queue(tenant, lane)),
      this.tenants(),
      this.drr(),
      this.fresh(),
    ];
  }

  tenants() {
    return `${this.#s}:tenants`;
  }

  drr() {
    return `${this.#s}:drr`;
  }

  served() {
    return `${this.#s}:served`;
  }

  busy(bucket) {
    return `${this.#s}:busy:${Math.trunc(bucket)}`;
  }

  active() {
    return `${this.#s}:active`;
  }

  fresh() {
    return `${this.#s}:active:fresh`;
  }

  activeSet() {
    return `${this.#s}:active:set`;
  }

  depth() {
    return `${this.#s}:depth`;
  }

  leases() {
    return `${this.#s}:leases`;
  }

  finishing() {
    return `${this.#s}:finishing`;
  }

  wake() {
    return `${this.#s}:wake`;
  }

  dead() {
    return `${this.#s}:dead`;
  }

  /** The request's metadata hash; RequestNotFoundError for an id of another shard. */
  request(requestId) {
    if (shardOf(requestId) !== this.shard) throw new RequestNotFoundError(requestId);
    return `${this.#s}:req:${requestId}`;
  }

  audio(requestId) {
    shardOf(requestId);
    return `${this.prefix}:{r:${requestId}}:audio`;
  }

  workers() {
    return `${this.prefix}:workers`;
  }

  workerInfo() {
    return `${this.prefix}:workers:info`;
  }

  /** Hash voice -> JSON {lang, sample_rate, model, version} of every voice a worker serves. */
  voices() {
    return `${this.prefix}:voices`;
  }

  /** The keys of the shard that owns `requestId`. */
  forRequest(requestId) {
    return new Keys(this.prefix, shardOf(requestId));
  }
}
