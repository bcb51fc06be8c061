// Every Redis key name chorus uses (docs/PROTOCOL.md, the Python reference's Keys class).
// Keys of one shard share the hash tag {<shard>}; a request's audio stream has its own tag
// {r:<request>}. Request ids carry their shard: <shard>.<22 url-safe base64 characters>.
import { randomBytes } from 'node:crypto';

import { ConfigError, InvalidRequestError, RequestNotFoundError, UnknownTenantError } from './errors.js';

export const DEFAULT_PREFIX = 'chorus';
export const DEFAULT_SHARD = 's0';
/** Lanes in claim order; a lane's number in the enqueue script's arguments is its 1-based position. */
export const LANES = Object.freeze(['rt', 'interactive', 'batch']);
/** The consumer group every worker joins on every lane stream. */
export const GROUP = 'workers';

export const TENANT_RE = /^[A-Za-z0-9_.-]{1,64}$/;
export const SHARD_RE = /^[a-z0-9]{1,8}$/;
export const REQUEST_RE = /^([a-z0-9]{1,8})\.([A-Za-z0-9_-]{22})$/;

export function validateTenant(tenant) {
  if (typeof tenant !== 'string' || !TENANT_RE.test(tenant)) {
    throw new UnknownTenantError(String(tenant), `tenant names match ${TENANT_RE.source}`);
  }
  return tenant;
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
    if (typeof shard !== 'string' || !SHARD_RE.test(shard)) {
      throw new ConfigError(`shard '${shard}' must match ${SHARD_RE.source}`);
    }
    if (typeof prefix !== 'string' || !prefix) throw new ConfigError('the key prefix must be a non-empty string');
    this.prefix = prefix;
    this.shard = shard;
    Object.freeze(this);
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
