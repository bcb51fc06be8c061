// The error classes of the chorus client, mirroring the Python hierarchy (shared/errors.py),
// and the ONE table that maps the enqueue script's refusals to them.
//
//   ChorusError
//   ├── ConfigError              bad option or environment
//   ├── RedisUnavailableError    Redis cannot serve now (url, cause, code)       retryable
//   ├── RedisAuthError           Redis refused the credentials (url, cause)
//   ├── ProtocolError            malformed wire data (field, reason)
//   │   └── BadArgumentsError    the enqueue script refused its arguments (BADARGS: a client bug)
//   ├── BadStateError            a key holds something that is not chorus state (BADSTATE; key, reason)
//   ├── TextError                text that cannot be synthesised (reason)
//   ├── InvalidRequestError      an option out of its range (field, reason)
//   │   └── DuplicateRequestError  the request id is taken by another request (DUPLICATE; requestId)
//   ├── UnknownVoiceError        voice not in the voice table (voice, known)
//   ├── UnknownTenantError       tenant name invalid, refused by policy (NOTENANT) or with an
//   │                            invalid policy (BADPOLICY) (tenant, reason)
//   ├── QueueFullError           over the tenant's queue cap (tenant, limit, queued, requested,
//   │                            retryAfterS)                                    retryable
//   ├── RequestTooLargeError     more segments than the cap holds (tenant, limit, requested)
//   ├── LaneNotAllowedError      the tenant may not use that lane (tenant, lane, allowed)
//   ├── RequestNotFoundError     no such request (requestId)
//   ├── RequestFailedError       an error frame ended or spoiled the request (requestId, code,
//   │   │                        detail, segment, failures)
//   │   ├── RequestCancelledError  it was cancelled (code "cancelled")
//   │   └── RequestIncompleteError the end marker came before every segment (code "incomplete")
//   ├── StreamTimeoutError       no frame arrived in time (requestId, waitedS)  retryable
//   └── TenantMovedError         WRONGSHARD: the tenant lives in another shard, and its forwards
//                                did not end within MAX_SHARD_HOPS (tenant, shard)  retryable

export class ChorusError extends Error {
  /** Whether retrying later may succeed (the Python CLI's exit status 75). */
  get retryable() {
    return false;
  }
}
Object.defineProperty(ChorusError.prototype, 'name', { value: 'ChorusError', writable: true });

function named(cls, name) {
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true });
  return cls;
}

export class ConfigError extends ChorusError {}
named(ConfigError, 'ConfigError');

const STATE_HINTS = {
  OOM: 'Redis reached maxmemory (chorus needs maxmemory-policy noeviction and room to write); retry later',
  READONLY: 'this is a replica (after a failover?); point chorus at the primary',
  BUSY: 'a long script is running on the server; retry later',
  LOADING: 'Redis is loading its data set; retry in a moment',
  MASTERDOWN: 'the replica lost its primary; retry later',
  MISCONF: 'Redis cannot persist (stop-writes-on-bgsave-error); check its disk',
  NOPERM: 'the ACL user lacks a permission chorus needs (see docs/OPERATIONS.md)',
};

export class RedisUnavailableError extends ChorusError {
  constructor(url, cause, code = null) {
    super(
      code === null
        ? `cannot reach Redis at ${url}: ${cause}; is redis-server running?`
        : `Redis at ${url} cannot serve now (${cause}); ${STATE_HINTS[code] ?? 'the server cannot serve this now; retry later'}`,
    );
    this.url = url;
    this.cause = cause;
    this.code = code;
  }

  get retryable() {
    return true;
  }
}
named(RedisUnavailableError, 'RedisUnavailableError');

export class RedisAuthError extends ChorusError {
  constructor(url, cause) {
    super(`Redis at ${url} refused the credentials (${cause}); check the user and password in the URL`);
    this.url = url;
    this.cause = cause;
  }
}
named(RedisAuthError, 'RedisAuthError');

export class ProtocolError extends ChorusError {
  constructor(field, reason) {
    super(`protocol error in '${field}': ${reason}`);
    this.field = field;
    this.reason = reason;
  }
}
named(ProtocolError, 'ProtocolError');

export class BadArgumentsError extends ProtocolError {
  constructor(reason) {
    super('enqueue arguments', reason);
  }
}
named(BadArgumentsError, 'BadArgumentsError');

export class TextError extends ChorusError {
  constructor(reason) {
    super(reason);
    this.reason = reason;
  }
}
named(TextError, 'TextError');

export class InvalidRequestError extends ChorusError {
  constructor(field, reason) {
    super(`${field}: ${reason}`);
    this.field = field;
    this.reason = reason;
  }
}
named(InvalidRequestError, 'InvalidRequestError');

/** No such voice; or, with `lang`, no voice of that language for a request that named none. */
export class UnknownVoiceError extends ChorusError {
  constructor(voice, known, lang = null) {
    super(
      lang === null
        ? `unknown voice '${voice}'; known voices: ${known.join(', ')} (see \`chorus voices\`)`
        : `no voice for language '${lang}' (a segment of the text is in it and the request names no ` +
            `voice, and no voice of it is marked as its default); known voices: ${known.join(', ') || 'none'}: ` +
            `name one, or run workers (v1.3 or later) with a model for '${lang}'`,
    );
    this.voice = voice;
    this.known = known;
    this.lang = lang;
  }
}
named(UnknownVoiceError, 'UnknownVoiceError');

export class UnknownTenantError extends ChorusError {
  constructor(tenant, reason) {
    super(`tenant '${tenant}': ${reason}`);
    this.tenant = tenant;
    this.reason = reason;
  }
}
named(UnknownTenantError, 'UnknownTenantError');

export class QueueFullError extends ChorusError {
  constructor(tenant, limit, queued, requested, retryAfterS) {
    const when = retryAfterS == null ? 'later' : `in about ${retryAfterS.toFixed(1)}s`;
    super(
      `queue full for tenant '${tenant}': ${queued} segments queued + ${requested} requested ` +
        `> limit ${limit}; nothing was enqueued; retry ${when}`,
    );
    this.tenant = tenant;
    this.limit = limit;
    this.queued = queued;
    this.requested = requested;
    /** Seconds until the queue likely has room, from the tenant's service rate over the last
     * minute; null when nothing of the tenant was served in that minute. */
    this.retryAfterS = retryAfterS ?? null;
  }

  get retryable() {
    return true;
  }
}
named(QueueFullError, 'QueueFullError');

export class RequestTooLargeError extends ChorusError {
  constructor(tenant, limit, requested) {
    super(
      `request of ${requested} segments can never fit tenant '${tenant}''s queue limit of ${limit} ` +
        'segments (max_queued); nothing was enqueued; send smaller requests',
    );
    this.tenant = tenant;
    this.limit = limit;
    this.requested = requested;
  }
}
named(RequestTooLargeError, 'RequestTooLargeError');

export class LaneNotAllowedError extends ChorusError {
  constructor(tenant, lane, allowed) {
    super(`tenant '${tenant}' may not use lane '${lane}'; allowed: ${allowed.join(', ') || 'none'}`);
    this.tenant = tenant;
    this.lane = lane;
    this.allowed = allowed;
  }
}
named(LaneNotAllowedError, 'LaneNotAllowedError');

/** An InvalidRequestError (field request_id), as the Python client maps DUPLICATE. */
export class DuplicateRequestError extends InvalidRequestError {
  constructor(requestId) {
    super('request_id', `'${requestId}' is already used by another request; nothing was enqueued`);
    this.requestId = requestId;
  }
}
named(DuplicateRequestError, 'DuplicateRequestError');

/** A key the enqueue script reads holds something that is not chorus state (BADSTATE): repair it by hand. */
export class BadStateError extends ChorusError {
  constructor(key, reason) {
    super(`Redis key ${key} does not hold valid chorus state (${reason}); nothing was enqueued; repair it by hand`);
    this.key = key;
    this.reason = reason;
  }
}
named(BadStateError, 'BadStateError');

export class RequestNotFoundError extends ChorusError {
  constructor(requestId) {
    super(`no such request '${requestId}' (unknown, expired or malformed id)`);
    this.requestId = requestId;
  }
}
named(RequestNotFoundError, 'RequestNotFoundError');

export class RequestFailedError extends ChorusError {
  /**
   * @param {string} requestId
   * @param {string} code the error frame's code (synthesis_failed, attempts_exhausted, request_lost …)
   * @param {string} detail the error frame's message
   * @param {number|null} segment the failed segment (null for an error of the whole request)
   * @param {Array<{segment: number|null, code: string, message: string}>} [failures] every failed segment seen
   */
  constructor(requestId, code, detail, segment, failures = null) {
    super(`request ${requestId} failed${segment == null ? '' : ` (segment ${segment})`}: ${code}: ${detail}`);
    this.requestId = requestId;
    this.code = code;
    this.detail = detail;
    this.segment = segment;
    this.failures = failures ?? [{ segment, code, message: detail }];
  }
}
named(RequestFailedError, 'RequestFailedError');

export class RequestCancelledError extends RequestFailedError {
  constructor(requestId, heardSegments) {
    super(requestId, 'cancelled', `cancelled after ${heardSegments} complete segments`, null, []);
    this.heardSegments = heardSegments;
  }
}
named(RequestCancelledError, 'RequestCancelledError');

export class RequestIncompleteError extends RequestFailedError {
  constructor(requestId, heardSegments, segments) {
    super(
      requestId,
      'incomplete',
      `end marker after ${heardSegments} of ${segments} segments`,
      heardSegments,
      [],
    );
    this.heardSegments = heardSegments;
    this.segments = segments;
  }
}
named(RequestIncompleteError, 'RequestIncompleteError');

export class StreamTimeoutError extends ChorusError {
  constructor(requestId, waitedS) {
    super(
      `no audio for request ${requestId} within ${waitedS.toFixed(1)}s; ` +
        'is a worker attached to this Redis (`chorus worker`)?',
    );
    this.requestId = requestId;
    this.waitedS = waitedS;
  }

  get retryable() {
    return true;
  }
}
named(StreamTimeoutError, 'StreamTimeoutError');

/**
 * The enqueue script answered WRONGSHARD: the tenant lives in `shard`, not the one tried. The client
 * follows it by itself (src/placement.js); it reaches a caller only when the forwards did not end
 * within MAX_SHARD_HOPS (an operator's loop, or a move racing the enqueue), or for an enqueue whose
 * shard the caller chose (a given request id, a client's `shard` option).
 */
export class TenantMovedError extends ChorusError {
  constructor(tenant, shard) {
    super(`tenant '${tenant}' lives in shard ${shard}, and its forwards did not end; retry`);
    this.tenant = tenant;
    this.shard = shard;
  }

  get retryable() {
    return true;
  }
}
named(TenantMovedError, 'TenantMovedError');

const int = (word) => Number.parseInt(word, 10);

/**
 * The enqueue script's refusals (broker/lua/enqueue.lua), one row each: the reply's first word
 * and how its remaining words become an error. `ctx` is what the caller knows: tenant,
 * requestId, requested (segments), and for rows with `needsRate` the tenant's service rate
 * (segments per second over the last minute; 0 or null when unknown). Nothing was written
 * when the script refused.
 */
export const REFUSALS = Object.freeze({
  // QUEUEFULL <limit> <queued> <requested>: queued + requested would exceed max_queued; retry later
  QUEUEFULL: {
    needsRate: true,
    error: (w, ctx) => {
      const [limit, queued, requested] = [int(w[0]), int(w[1]), int(w[2] ?? ctx.requested)];
      const excess = queued + requested - limit;
      const retryAfterS = ctx.rate ? Math.round(Math.max(0.1, excess / ctx.rate) * 10) / 10 : null;
      return new QueueFullError(ctx.tenant, limit, queued, requested, retryAfterS);
    },
  },
  // TOOLARGE <limit> <requested>: the request alone exceeds max_queued; retrying cannot help
  TOOLARGE: { error: (w, ctx) => new RequestTooLargeError(ctx.tenant, int(w[0]), int(w[1] ?? ctx.requested)) },
  // LANE <lane> <allowed,…>
  LANE: { error: (w, ctx) => new LaneNotAllowedError(ctx.tenant, w[0], w.length > 1 && w[1] ? w[1].split(',') : []) },
  // NOTENANT <tenant>: the default policy rejects unconfigured tenants
  NOTENANT: {
    error: (w, ctx) =>
      new UnknownTenantError(
        w[0] ?? ctx.tenant,
        'not configured, and the default policy rejects unknown tenants (add it with `chorus tenants set`)',
      ),
  },
  // DUPLICATE request id <id>: the id names another request (a retry with the same arguments succeeds)
  DUPLICATE: { error: (w, ctx) => new DuplicateRequestError(w[2] ?? ctx.requestId) },
  // BADARGS <what>: the arguments do not follow the protocol (a client bug)
  BADARGS: { error: (w) => new BadArgumentsError(w.join(' ')) },
  // BADPOLICY <tenant or *> <why>: the tenants hash field that applies is not a valid policy
  BADPOLICY: {
    error: (w, ctx) => new UnknownTenantError(ctx.tenant, `its policy (field ${w[0] ?? '?'}) is not valid: ${w.slice(1).join(' ')}`),
  },
  // BADSTATE <key> <why>: a key of the wrong type, or a counter that is not a number
  BADSTATE: { error: (w) => new BadStateError(w[0] ?? '?', w.slice(1).join(' ')) },
  // WRONGSHARD <shard>: the tenant's entry in this shard is a forward; it lives in <shard>
  WRONGSHARD: { error: (w, ctx) => new TenantMovedError(ctx.tenant, w[0] ?? '?') },
});

/**
 * The refusal in a script error message, or null for any other error. Redis may prefix a
 * script's error with "ERR" or the script's location, so the first three words are searched.
 * @returns {{kind: string, words: string[]}|null}
 */
export function parseRefusal(message) {
  const words = String(message ?? '').split(/\s+/).filter(Boolean);
  for (let i = 0; i < Math.min(3, words.length); i += 1) {
    if (Object.hasOwn(REFUSALS, words[i])) return { kind: words[i], words: words.slice(i + 1) };
  }
  return null;
}

/** The error for a refusal parsed by {@link parseRefusal}. */
export function refusalError(refusal, ctx) {
  return REFUSALS[refusal.kind].error(refusal.words, ctx);
}

/** Codes with which Redis describes its own state (as SERVER_STATE_CODES in the Python client):
 * the server may accept the same command later, so they are outages, not bugs. */
export const SERVER_STATE_CODES = Object.freeze([
  'OOM', 'READONLY', 'UNBLOCKED', 'BUSY', 'LOADING', 'MASTERDOWN', 'MISCONF', 'NOPERM', 'TRYAGAIN',
  'CLUSTERDOWN', 'NOREPLICAS', 'EXECABORT',
]);
const STATE_RE = new RegExp(`(?:^|[\\s:(-])(${SERVER_STATE_CODES.join('|')})\\b`);

/** The state code (OOM, READONLY …) of a Redis error reply about the server's state, else null. */
export function serverState(err) {
  if (!err || err.name !== 'ReplyError') return null;
  const m = STATE_RE.exec(String(err.message ?? '').slice(0, 300));
  return m ? m[1] : null;
}

/** The chorus error for a Redis error met by a one-shot command (as the Python `translate`). */
export function translateRedisError(err, url) {
  if (err instanceof ChorusError) return err;
  const message = String(err?.message ?? err);
  const head = message.slice(0, 40);
  if (head.includes('WRONGPASS') || head.includes('NOAUTH')) return new RedisAuthError(url, message);
  const code = serverState(err);
  if (code !== null) return new RedisUnavailableError(url, message, code);
  if (isConnectionError(err)) return new RedisUnavailableError(url, message);
  return new ChorusError(`Redis at ${url} refused the command: ${message}`);
}

/** A lost connection or a timeout (no reply from the server): the command may or may not have run. */
export function isConnectionError(err) {
  if (!err || err instanceof ChorusError || err.name === 'ReplyError') return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  const text = `${err.code ?? ''} ${err.message ?? ''}`;
  return /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|Connection is closed|Stream isn't writeable|Command timed out|connect/i.test(
    text,
  );
}

/** A lost connection, a timeout or a server-state reply: back off and retry, do not crash. */
export function isOutage(err) {
  return isConnectionError(err) || serverState(err) !== null;
}
