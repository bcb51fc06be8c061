// Listening to one request: the pure state of a listener (no Redis here), ported from the
// Python reference's Reorderer and StreamState (gateway/subscriber.py).
//
// Audio frames are put back in (segment, index) order, repeats are dropped, and a segment
// synthesised again after its worker died (a higher `attempt`) supersedes the earlier
// attempt: frames of the earlier attempt not yet handed out are dropped and the new attempt
// continues after the last frame handed out, so the listener hears no repeat and no gap.
//
// A failed segment (an error frame with a `seg`) ends the stream at once by default, as in the
// Python client; with `skipFailed` (both clients offer it) it is skipped instead: the listener
// hears every other segment in order, and the failures are reported when the stream ends.
import {
  ProtocolError,
  RedisUnavailableError,
  RequestCancelledError,
  RequestFailedError,
  RequestIncompleteError,
  StreamTimeoutError,
} from './errors.js';
import { decodeFrame, END_STATUS, FRAME_AUDIO, FRAME_ERROR, FRAME_HEADER } from './protocol.js';

export const DEFAULT_TIMEOUT_S = 60;
export const BLOCK_MS = 1000;
export const READ_COUNT = 256;
/** A stream quiet this long makes the listener check that its request still exists. */
export const LOST_CHECK_S = 2;
export const BACKOFF_MIN_S = 0.1;
export const BACKOFF_MAX_S = 2;

/** The next wait after `previous` (null: the first), in seconds: doubling, capped. */
export function backoff(previous) {
  return previous == null ? BACKOFF_MIN_S : Math.min(previous * 2, BACKOFF_MAX_S);
}

const monotonicS = () => performance.now() / 1000;

/** Whether (s1, i1) comes before (s2, i2). */
export function before(s1, i1, s2, i2) {
  return s1 < s2 || (s1 === s2 && i1 < i2);
}

export class Reorderer {
  constructor() {
    /** The next segment to hand out. */
    this.segment = 0;
    /** The next frame index within it. */
    this.index = 0;
    this.duplicates = 0;
    this.superseded = 0;
    /** Frames dropped because their segment failed. */
    this.skipped = 0;
    /** @type {Map<number, Map<number, object>>} segment -> index -> frame */
    this._held = new Map();
    /** @type {Map<number, number>} segment -> newest attempt seen */
    this._attempt = new Map();
    /** @type {Set<number>} failed segments not reached yet */
    this._failed = new Set();
  }

  /** Frames held back, waiting for earlier ones. */
  get held() {
    let n = 0;
    for (const m of this._held.values()) n += m.size;
    return n;
  }

  /** Take one audio frame; returns the frames now ready, in order. */
  push(frame) {
    const { segment: seg, index: idx } = frame;
    if (before(seg, idx, this.segment, this.index)) {
      this.duplicates += 1;
      return [];
    }
    if (this._failed.has(seg)) {
      this.skipped += 1;
      return [];
    }
    const current = this._attempt.get(seg) ?? 0;
    let mine = this._held.get(seg);
    if (frame.attempt < current) {
      this.superseded += 1;
      return [];
    }
    if (frame.attempt > current) {
      this._attempt.set(seg, frame.attempt);
      if (mine) {
        for (const [i, f] of mine) {
          if (f.attempt < frame.attempt) {
            mine.delete(i);
            this.superseded += 1;
          }
        }
      }
    } else if (mine?.has(idx)) {
      this.duplicates += 1;
      return [];
    }
    if (!mine) {
      mine = new Map();
      this._held.set(seg, mine);
    }
    mine.set(idx, frame);
    return this._release();
  }

  /** Segment `seg` failed: drop its frames not handed out yet and continue after it. */
  skip(seg) {
    if (seg < this.segment) return [];
    this._failed.add(seg);
    const mine = this._held.get(seg);
    if (mine) {
      this.skipped += mine.size;
      this._held.delete(seg);
    }
    return this._release();
  }

  _release() {
    const ready = [];
    for (;;) {
      if (this._failed.has(this.segment)) {
        this._failed.delete(this.segment);
        this._held.delete(this.segment);
        this._attempt.delete(this.segment);
        this.segment += 1;
        this.index = 0;
        continue;
      }
      const mine = this._held.get(this.segment);
      const next = mine?.get(this.index);
      if (next === undefined) break;
      mine.delete(this.index);
      ready.push(next);
      if (next.last) {
        this._held.delete(this.segment);
        this._attempt.delete(this.segment);
        this.segment += 1;
        this.index = 0;
      } else {
        this.index += 1;
      }
    }
    return ready;
  }
}

/** Everything a listener knows about one request's stream so far. */
export class StreamState {
  /**
   * @param {string} requestId
   * @param {{skipFailed?: boolean}} [options] skipFailed (default false): a failed segment is
   *   skipped and reported when the stream ends; false: the first error frame ends the stream
   *   at once, after the frames ready before it (as the Python client's default).
   */
  constructor(requestId, { skipFailed = false } = {}) {
    this.requestId = requestId;
    this.skipFailed = skipFailed;
    /** The last stream entry id read: reading on from here misses nothing. */
    this.lastId = '0';
    this.header = null;
    this.end = null;
    this.order = new Reorderer();
    /** A pending error that ends the stream (RequestFailedError). */
    this.error = null;
    /** @type {{segment: number|null, code: string, message: string}[]} every error frame seen */
    this.failures = [];
    this.lastProgress = monotonicS();
    this._outageSince = null;
    this._backoff = null;
    this._lostChecked = 0;
  }

  /**
   * Take stream entries ([id, fields] with fields' `f` a Buffer, or fields as an object);
   * returns the audio frames now ready, in order. Stops at an error frame that ends the stream.
   */
  feed(entries) {
    const ready = [];
    for (const [entryId, fields] of entries) {
      this.lastId = String(entryId);
      this.lastProgress = monotonicS();
      const raw = fieldOf(fields, 'f');
      if (raw == null) throw new ProtocolError('f', `audio stream entry ${this.lastId} has no 'f' field`);
      const frame = decodeFrame(raw);
      if (frame.type === FRAME_AUDIO) {
        for (const f of this.order.push(frame)) ready.push(f);
      } else if (frame.type === FRAME_HEADER) {
        this.header = frame;
      } else if (frame.type === FRAME_ERROR) {
        this.failures.push({ segment: frame.segment, code: frame.code, message: frame.message });
        if (this.skipFailed && frame.segment !== null) {
          for (const f of this.order.skip(frame.segment)) ready.push(f);
        } else {
          // deliver what came before the error, then raise (see checkComplete)
          this.error = new RequestFailedError(this.requestId, frame.code, frame.message, frame.segment, this.failures);
          break;
        }
      } else {
        this.end = frame;
      }
    }
    return ready;
  }

  get cancelled() {
    return this.end !== null && this.end.status === END_STATUS.CANCELLED;
  }

  /** The end marker is written after every segment's frames: once it is seen, the reorderer must
   * have reached the last segment. A cancelled marker ends at once. */
  get finished() {
    if (this.cancelled) return true;
    return this.end !== null && this.order.segment >= this.end.segments;
  }

  /** Throw a pending error; after the end marker a gap is an error, not a hang; once finished,
   * skipped segments are reported. */
  checkComplete() {
    if (this.error !== null) throw this.error;
    if (this.cancelled) throw new RequestCancelledError(this.requestId, this.order.segment);
    if (this.end !== null && !this.finished) {
      throw new RequestIncompleteError(this.requestId, this.order.segment, this.end.segments);
    }
    if (this.finished && this.failures.length) {
      const first = this.failures[0];
      throw new RequestFailedError(this.requestId, first.code, first.message, first.segment, this.failures);
    }
    if (this.finished && this.end.status === END_STATUS.ERROR) {
      throw new RequestFailedError(this.requestId, 'error', 'the end marker says the request failed', null, []);
    }
  }

  /** Redis went away mid-stream: seconds to wait before reading on from lastId (0.1 doubling to
   * 2); RedisUnavailableError once the outage has lasted longer than timeoutS. */
  outage(err, url, timeoutS) {
    const now = monotonicS();
    if (this._outageSince === null) {
      this._outageSince = now;
      this._backoff = null;
    }
    if (now - this._outageSince > timeoutS) {
      throw new RedisUnavailableError(url, `${err?.message ?? err} (for ${(now - this._outageSince).toFixed(1)}s)`);
    }
    this._backoff = backoff(this._backoff);
    return this._backoff;
  }

  reconnected() {
    if (this._outageSince !== null) {
      this._outageSince = null;
      this.lastProgress = monotonicS();
    }
  }

  /** Whether to look for the request itself: no frame for a while, and not since the last look. */
  lostCheckDue() {
    const now = monotonicS();
    if (now - this.lastProgress < LOST_CHECK_S || now - this._lostChecked < LOST_CHECK_S) return false;
    this._lostChecked = now;
    return true;
  }

  lost() {
    return new RequestFailedError(
      this.requestId,
      'request_lost',
      'the request is gone from Redis (flushed, evicted, expired or restarted without persistence) ' +
        'and will not finish',
      null,
    );
  }

  checkTimeout(timeoutS) {
    const waited = monotonicS() - this.lastProgress;
    if (waited > timeoutS) throw new StreamTimeoutError(this.requestId, waited);
  }
}

/** A field of a stream entry: fields as a flat [name, value, …] array (Buffers or strings) or an object. */
function fieldOf(fields, name) {
  if (Array.isArray(fields)) {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (String(fields[i]) === name) return fields[i + 1];
    }
    return undefined;
  }
  return fields?.[name];
}

/** The entries of one stream from an XREAD reply ([[key, [[id, fields], …]]] or null). */
/**
 * The position of the `i`-th (0-based) of `released` frames that entry `entryId` released: the
 * entry id for the last of them, else `<entry id>/<i + 1>` (how many of that release were handed out).
 */
export function positionOf(entryId, i, released) {
  return i === released - 1 ? String(entryId) : `${entryId}/${i + 1}`;
}

/** `<ms>-<seq>` or `<ms>-<seq>/<k>` -> [entry id, k or null]; ProtocolError for anything else. */
export function parsePosition(position) {
  const m = /^(\d{1,20}-\d{1,20})(?:\/(\d{1,6}))?$/.exec(String(position));
  if (!m || m[2] === '0' || m[1].split('-').some((p) => BigInt(p) >= 2n ** 64n)) {
    throw new ProtocolError('position', `${JSON.stringify(position)} is not a stream position (<ms>-<seq> or <ms>-<seq>/<k>)`);
  }
  return [m[1], m[2] === undefined ? null : Number(m[2])];
}

export function streamEntries(reply) {
  if (!reply || !reply.length) return [];
  return reply[0][1];
}
