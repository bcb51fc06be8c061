// Wire protocol v1 (docs/PROTOCOL.md, text revision 1.3): msgpack codecs for segment payloads and audio frames.
// Decoding is strict like the Python reference: bounded sizes, no ext types, string keys only,
// typed fields, and a ProtocolError naming the field for anything else.
import { encode } from '@msgpack/msgpack';

import { ProtocolError } from './errors.js';
import { MsgpackError, PyFloat, unpack } from './msgpack.js';

export const PROTOCOL_VERSION = 1;
export const MAX_REQUEST_TEXT_BYTES = 64 * 1024;
export const MAX_SEGMENTS = 2048;
export const MAX_SEGMENT_TEXT_BYTES = 2048;
export const MAX_ENTRY_BYTES = 8 * 1024;
export const MAX_FRAME_BYTES = 64 * 1024;
export const MAX_PAUSE_MS = 10_000;
/** The range of every `sr` (frames, and a segment payload's optional one). */
export const MIN_SAMPLE_RATE = 8000;
export const MAX_SAMPLE_RATE = 192000;
export const MAX_ID_LEN = 64;
export const MAX_VOICE_LEN = 64;
export const MAX_MESSAGE_LEN = 1024;

export const FRAME_HEADER = 'header';
export const FRAME_AUDIO = 'audio';
export const FRAME_ERROR = 'error';
export const FRAME_END = 'end';

/** Statuses of an end frame. */
export const END_STATUS = Object.freeze({ OK: 'ok', ERROR: 'error', CANCELLED: 'cancelled' });

// -- encoding ------------------------------------------------------------------------------------

function float64(value) {
  const out = Buffer.allocUnsafe(9);
  out[0] = 0xcb;
  out.writeDoubleBE(value, 1);
  return out;
}

/** An integer as msgpack-python writes it (the smallest width); @msgpack/msgpack would write
 * an integer beyond 2^53 - 1 as a float. */
function encodeInt(value) {
  if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
    const out = Buffer.allocUnsafe(9);
    if (value >= 0) {
      out[0] = 0xcf;
      out.writeBigUInt64BE(BigInt(value), 1);
    } else {
      out[0] = 0xd3;
      out.writeBigInt64BE(BigInt(value), 1);
    }
    return out;
  }
  return Buffer.from(encode(value));
}

/**
 * A segment payload (the lane entry's field `p`), byte for byte what the Python reference's
 * `encode_segment` makes: a map of v, req, seq, text, voice, lang, speed (always a float64),
 * pause_ms, t, and sr (v1.3) when `sampleRate` is given: the request's rate, for a segment whose
 * voice has another one (the worker resamples it).
 */
export function encodeSegment({ requestId, seq, text, voice, lang, speed = 1.0, pauseMs = 0, enqueuedMs = 0, sampleRate = null }) {
  const parts = [Buffer.from([sampleRate == null ? 0x89 : 0x8a])];
  const pair = (key, value) => {
    parts.push(Buffer.from(encode(key)));
    parts.push(value);
  };
  pair('v', Buffer.from(encode(PROTOCOL_VERSION)));
  pair('req', Buffer.from(encode(requestId)));
  pair('seq', encodeInt(seq));
  pair('text', Buffer.from(encode(text)));
  pair('voice', Buffer.from(encode(voice)));
  pair('lang', Buffer.from(encode(lang)));
  pair('speed', float64(speed));
  pair('pause_ms', encodeInt(pauseMs));
  pair('t', encodeInt(enqueuedMs));
  if (sampleRate != null) pair('sr', encodeInt(sampleRate));
  return Buffer.concat(parts);
}

/** An audio stream frame: {type: 'header'|'audio'|'error'|'end', …} as decodeFrame returns them. */
export function encodeFrame(frame) {
  let obj;
  switch (frame.type) {
    case FRAME_AUDIO:
      obj = {
        v: PROTOCOL_VERSION,
        t: FRAME_AUDIO,
        seg: frame.segment,
        idx: frame.index,
        last: frame.last,
        sr: frame.sampleRate,
        att: frame.attempt ?? 1,
        pcm: frame.pcm,
      };
      break;
    case FRAME_HEADER:
      obj = {
        v: PROTOCOL_VERSION,
        t: FRAME_HEADER,
        req: frame.requestId,
        segments: frame.segments,
        voice: frame.voice,
        sr: frame.sampleRate,
        tenant: frame.tenant,
        format: 's16le',
        channels: 1,
      };
      break;
    case FRAME_ERROR:
      obj = {
        v: PROTOCOL_VERSION,
        t: FRAME_ERROR,
        code: Array.from(frame.code).slice(0, MAX_ID_LEN).join(''),
        msg: Array.from(frame.message ?? '').slice(0, MAX_MESSAGE_LEN).join(''),
        seg: frame.segment ?? null,
      };
      break;
    case FRAME_END:
      obj = { v: PROTOCOL_VERSION, t: FRAME_END, segments: frame.segments, status: String(frame.status ?? 'ok') };
      break;
    default:
      throw new ProtocolError('t', `unknown frame type '${frame.type}'`);
  }
  return Buffer.from(encode(obj));
}

// -- decoding ------------------------------------------------------------------------------------

function typeName(val) {
  if (val === null || val === undefined) return 'NoneType';
  if (val instanceof PyFloat) return 'float';
  if (val instanceof Uint8Array) return 'bytes';
  if (Array.isArray(val)) return 'list';
  if (typeof val === 'number' || typeof val === 'bigint') return 'int';
  if (typeof val === 'string') return 'str';
  if (typeof val === 'boolean') return 'bool';
  return 'dict';
}

function own(obj, key) {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function unpackMap(data, limit, what) {
  if (!(data instanceof Uint8Array)) throw new ProtocolError(what, `expected bytes, got ${typeName(data)}`);
  if (data.length > limit) throw new ProtocolError(what, `${data.length} bytes exceeds the limit of ${limit}`);
  let obj;
  try {
    obj = unpack(data, { maxStr: limit, maxBin: limit, maxArray: 64, maxMap: 32, strictKeys: true });
  } catch (err) {
    if (!(err instanceof MsgpackError)) throw err;
    if (err.ext) throw new ProtocolError('payload', err.message);
    if (err.utf8) throw new ProtocolError(what, `invalid UTF-8 in a string: ${err.message}`);
    throw new ProtocolError(what, `not valid msgpack: ${err.message}`);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || obj instanceof Uint8Array || obj instanceof PyFloat) {
    throw new ProtocolError(what, `expected a map, got ${typeName(obj)}`);
  }
  const version = own(obj, 'v');
  // Python compares with ==: 1, 1.0 and True all pass
  const v = version instanceof PyFloat ? version.value : version === true ? 1 : version;
  if (v !== PROTOCOL_VERSION && v !== BigInt(PROTOCOL_VERSION)) {
    const shown = version === undefined ? 'None' : version instanceof PyFloat ? String(version.value) : String(version);
    throw new ProtocolError('v', `unsupported protocol version ${shown} (this side speaks ${PROTOCOL_VERSION})`);
  }
  return obj;
}

function str(obj, key, maxLen, emptyOk = false) {
  const val = own(obj, key);
  if (typeof val !== 'string') throw new ProtocolError(key, `expected a string, got ${typeName(val)}`);
  let length = 0;
  for (const _ of val) length += 1;
  if (length > maxLen) throw new ProtocolError(key, `longer than ${maxLen} characters`);
  if (!length && !emptyOk) throw new ProtocolError(key, 'must not be empty');
  return val;
}

function int(obj, key, lo, hi) {
  const val = own(obj, key);
  if (typeof val === 'bigint') {
    // beyond 2^53 - 1 on the wire: in range only at the bound 2^53 itself
    if (val < BigInt(lo) || val > BigInt(hi)) throw new ProtocolError(key, `${val} outside [${lo}, ${hi}]`);
    return Number(val);
  }
  if (typeof val !== 'number') throw new ProtocolError(key, `expected an integer, got ${typeName(val)}`);
  if (val < lo || val > hi) throw new ProtocolError(key, `${val} outside [${lo}, ${hi}]`);
  return val;
}

function float(obj, key, lo, hi) {
  const raw = own(obj, key);
  let val;
  if (raw instanceof PyFloat) val = raw.value;
  else if (typeof raw === 'number') val = raw;
  else if (typeof raw === 'bigint') val = Number(raw);
  else throw new ProtocolError(key, `expected a number, got ${typeName(raw)}`);
  if (!Number.isFinite(val) || val < lo || val > hi) throw new ProtocolError(key, `${val} outside [${lo}, ${hi}]`);
  return val;
}

function bool(obj, key) {
  const val = own(obj, key);
  if (typeof val !== 'boolean') throw new ProtocolError(key, `expected a boolean, got ${typeName(val)}`);
  return val;
}

/**
 * A segment payload, checked against the protocol's limits:
 * {requestId, seq, text, voice, lang, speed, pauseMs, enqueuedMs, sampleRate} (sampleRate: the
 * payload's optional `sr`, null when absent or nil).
 */
export function decodeSegment(data) {
  const obj = unpackMap(data, MAX_ENTRY_BYTES, 'segment');
  const text = str(obj, 'text', MAX_SEGMENT_TEXT_BYTES, true);
  if (Buffer.byteLength(text, 'utf8') > MAX_SEGMENT_TEXT_BYTES) {
    throw new ProtocolError('text', `more than ${MAX_SEGMENT_TEXT_BYTES} UTF-8 bytes`);
  }
  return {
    requestId: str(obj, 'req', MAX_ID_LEN),
    seq: int(obj, 'seq', 0, MAX_SEGMENTS - 1),
    text,
    voice: str(obj, 'voice', MAX_VOICE_LEN),
    lang: str(obj, 'lang', 16),
    speed: float(obj, 'speed', 0.25, 4.0),
    pauseMs: int(obj, 'pause_ms', 0, MAX_PAUSE_MS),
    enqueuedMs: int(obj, 't', 0, 2 ** 53),
    sampleRate: own(obj, 'sr') == null ? null : int(obj, 'sr', MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
  };
}

/**
 * [request id, seq] of a segment payload that decodeSegment refuses, when those two fields are
 * still readable (a worker then fails that segment with an error frame); null otherwise.
 */
export function peekSegmentAddress(data) {
  let obj;
  try {
    obj = unpack(data.subarray(0, MAX_ENTRY_BYTES), { maxArray: 64, maxMap: 32, strictKeys: false });
  } catch {
    return null;
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || obj instanceof Uint8Array || obj instanceof PyFloat) {
    return null;
  }
  const req = own(obj, 'req');
  const seq = own(obj, 'seq');
  if (typeof req !== 'string' || [...req].length > MAX_ID_LEN || typeof seq !== 'number') return null;
  if (seq < 0 || seq >= MAX_SEGMENTS) return null;
  return [req, seq];
}

/**
 * One audio stream frame (the entry's field `f`):
 * - `{type: 'header', requestId, segments, voice, sampleRate, tenant}`
 * - `{type: 'audio', segment, index, last, sampleRate, attempt, pcm}` (pcm: a Buffer of mono PCM16 LE)
 * - `{type: 'error', code, message, segment}` (segment null: an error of the whole request)
 * - `{type: 'end', segments, status}`
 */
export function decodeFrame(data) {
  const obj = unpackMap(data, MAX_FRAME_BYTES, 'frame');
  const kind = own(obj, 't');
  if (kind === FRAME_AUDIO) {
    const pcm = own(obj, 'pcm');
    if (!(pcm instanceof Uint8Array)) throw new ProtocolError('pcm', `expected bytes, got ${typeName(pcm)}`);
    if (pcm.length % 2) throw new ProtocolError('pcm', 'odd byte count for PCM16');
    return {
      type: FRAME_AUDIO,
      segment: int(obj, 'seg', 0, MAX_SEGMENTS - 1),
      index: int(obj, 'idx', 0, 2 ** 31),
      last: bool(obj, 'last'),
      sampleRate: int(obj, 'sr', MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
      pcm,
      attempt: int(obj, 'att', 1, 1000),
    };
  }
  if (kind === FRAME_HEADER) {
    return {
      type: FRAME_HEADER,
      requestId: str(obj, 'req', MAX_ID_LEN),
      segments: int(obj, 'segments', 1, MAX_SEGMENTS),
      voice: str(obj, 'voice', MAX_VOICE_LEN),
      sampleRate: int(obj, 'sr', MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
      tenant: str(obj, 'tenant', MAX_ID_LEN),
    };
  }
  if (kind === FRAME_ERROR) {
    const seg = own(obj, 'seg');
    return {
      type: FRAME_ERROR,
      code: str(obj, 'code', MAX_ID_LEN),
      message: str(obj, 'msg', MAX_MESSAGE_LEN, true),
      segment: seg === null || seg === undefined ? null : int(obj, 'seg', 0, MAX_SEGMENTS - 1),
    };
  }
  if (kind === FRAME_END) {
    return { type: FRAME_END, segments: int(obj, 'segments', 1, MAX_SEGMENTS), status: str(obj, 'status', 32) };
  }
  const shown = kind === undefined ? 'None' : typeof kind === 'string' ? `'${kind}'` : String(kind);
  throw new ProtocolError('t', `unknown frame type ${shown}`);
}
