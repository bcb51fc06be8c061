// Type declarations of chorus-client (hand-written; the package ships plain ESM JavaScript).
import type { Cluster, Redis, RedisOptions } from 'ioredis';

// -- errors ----------------------------------------------------------------------------------------

export class ChorusError extends Error {
  /** Whether retrying later may succeed. */
  readonly retryable: boolean;
}
export class ConfigError extends ChorusError {}
export class RedisUnavailableError extends ChorusError {
  constructor(url: string, cause: string, code?: string | null);
  url: string;
  cause: string;
  /** OOM, READONLY, BUSY, LOADING …; null for a lost connection or a timeout. */
  code: string | null;
}
export class RedisAuthError extends ChorusError {
  constructor(url: string, cause: string);
  url: string;
  cause: string;
}
export class ProtocolError extends ChorusError {
  constructor(field: string, reason: string);
  field: string;
  reason: string;
}
/** The enqueue script refused its arguments (BADARGS): a client bug. */
export class BadArgumentsError extends ProtocolError {
  constructor(reason: string);
}
export class TextError extends ChorusError {
  constructor(reason: string);
  reason: string;
}
export class InvalidRequestError extends ChorusError {
  constructor(field: string, reason: string);
  field: string;
  reason: string;
}
export class UnknownVoiceError extends ChorusError {
  constructor(voice: string, known: string[], lang?: string | null);
  voice: string;
  /** Set when no voice serves a segment's language (a request without a voice). */
  lang: string | null;
  known: string[];
}
export class UnknownTenantError extends ChorusError {
  constructor(tenant: string, reason: string);
  tenant: string;
  reason: string;
}
export class QueueFullError extends ChorusError {
  constructor(tenant: string, limit: number, queued: number, requested: number, retryAfterS: number | null);
  tenant: string;
  limit: number;
  queued: number;
  requested: number;
  /** Seconds until the queue likely has room (from the tenant's service rate); null when unknown. */
  retryAfterS: number | null;
}
export class RequestTooLargeError extends ChorusError {
  constructor(tenant: string, limit: number, requested: number);
  tenant: string;
  limit: number;
  requested: number;
}
export class LaneNotAllowedError extends ChorusError {
  constructor(tenant: string, lane: string, allowed: string[]);
  tenant: string;
  lane: string;
  allowed: string[];
}
/** DUPLICATE: the request id is taken by another request (field "request_id"). */
export class DuplicateRequestError extends InvalidRequestError {
  constructor(requestId: string);
  requestId: string;
}
/** BADSTATE: a key the enqueue script reads holds something that is not chorus state. */
export class BadStateError extends ChorusError {
  constructor(key: string, reason: string);
  key: string;
  reason: string;
}
export class RequestNotFoundError extends ChorusError {
  constructor(requestId: string);
  requestId: string;
}
export interface SegmentFailure {
  segment: number | null;
  code: string;
  message: string;
}
export class RequestFailedError extends ChorusError {
  constructor(requestId: string, code: string, detail: string, segment: number | null, failures?: SegmentFailure[] | null);
  requestId: string;
  /** The error frame's code: synthesis_failed, attempts_exhausted, request_lost, cancelled, incomplete … */
  code: string;
  detail: string;
  segment: number | null;
  /** Every error frame seen (several when failed segments were skipped). */
  failures: SegmentFailure[];
}
export class RequestCancelledError extends RequestFailedError {
  constructor(requestId: string, heardSegments: number);
  heardSegments: number;
}
export class RequestIncompleteError extends RequestFailedError {
  constructor(requestId: string, heardSegments: number, segments: number);
  heardSegments: number;
  segments: number;
}
export class StreamTimeoutError extends ChorusError {
  constructor(requestId: string, waitedS: number);
  requestId: string;
  waitedS: number;
}

/**
 * WRONGSHARD: the tenant lives in `shard`, not the shard tried. The client follows it by itself;
 * thrown when the forwards did not end within MAX_SHARD_HOPS, or for an enqueue whose shard the
 * caller chose (a given request id, the client's `shard` option). Retryable.
 */
export class TenantMovedError extends ChorusError {
  constructor(tenant: string, shard: string);
  tenant: string;
  shard: string;
}

export type RefusalKind =
  | 'QUEUEFULL'
  | 'TOOLARGE'
  | 'LANE'
  | 'NOTENANT'
  | 'DUPLICATE'
  | 'BADARGS'
  | 'BADPOLICY'
  | 'BADSTATE'
  | 'WRONGSHARD';
export interface RefusalContext {
  tenant: string;
  requestId: string;
  requested: number;
  /** The tenant's service rate (segments/s over the last minute), for QUEUEFULL's retry-after. */
  rate?: number | null;
}
export const REFUSALS: Readonly<
  Record<RefusalKind, { needsRate?: boolean; error(words: string[], ctx: RefusalContext): ChorusError }>
>;
export function parseRefusal(message: string): { kind: RefusalKind; words: string[] } | null;
export function refusalError(refusal: { kind: RefusalKind; words: string[] }, ctx: RefusalContext): ChorusError;
export const SERVER_STATE_CODES: readonly string[];
export function serverState(err: unknown): string | null;
export function translateRedisError(err: unknown, url: string): ChorusError;
export function isConnectionError(err: unknown): boolean;
export function isOutage(err: unknown): boolean;

// -- keys ------------------------------------------------------------------------------------------

export const DEFAULT_PREFIX: 'chorus';
export const DEFAULT_SHARD: 's0';
export const LANES: readonly ['rt', 'interactive', 'batch'];
export const GROUP: 'workers';
/** Most shards a deployment may have (s0 … s1023). */
export const MAX_SHARDS: 1024;
export function validateTenant(tenant: string): string;
/** `shard` when it is a shard name ([a-z0-9]{1,8}); throws ConfigError otherwise. */
export function validateShard(shard: string): string;
/** `s<index>`. */
export function shardName(index: number): string;
/** s0 … s<count-1>; throws ConfigError for a count outside 1..MAX_SHARDS. */
export function shardNames(count: number): string[];
/** 32-bit FNV-1a (unsigned) of a string's UTF-8 bytes, or of bytes. */
export function fnv1a32(data: string | Uint8Array): number;
/** `s<fnv1a32(tenant) mod count>`: the shard a tenant lives in unless a forward there says otherwise. */
export function homeShard(tenant: string, count: number): string;
export function newRequestId(shard?: string): string;
export function shardOf(requestId: string): string;
export class Keys {
  constructor(prefix?: string, shard?: string);
  readonly prefix: string;
  readonly shard: string;
  /** The keys of another shard of this deployment. */
  ofShard(shard: string): Keys;
  /** `<prefix>:shards`: the deployment's shard count (absent: 1). */
  shards(): string;
  queuePrefix(): string;
  queue(tenant: string, lane: string): string;
  enqueueKeys(tenant: string, requestKey: string): string[];
  tenants(): string;
  drr(): string;
  served(): string;
  busy(bucket: number): string;
  active(): string;
  fresh(): string;
  activeSet(): string;
  depth(): string;
  leases(): string;
  finishing(): string;
  wake(): string;
  dead(): string;
  request(requestId: string): string;
  audio(requestId: string): string;
  workers(): string;
  workerInfo(): string;
  voices(): string;
  forRequest(requestId: string): Keys;
}

// -- placement -------------------------------------------------------------------------------------

/** How long a client trusts the shard count it read (s). */
export const SHARD_COUNT_TTL_S: number;
/** How long a client remembers that a tenant lives outside its home shard (s). */
export const PLACEMENT_TTL_S: number;
/** WRONGSHARD forwards followed for one enqueue before TenantMovedError. */
export const MAX_SHARD_HOPS: number;
/** Tenants a Placement remembers outside their home shard (least recently used go first). */
export const MAX_REMEMBERED: number;
/** The shard count from the raw `<prefix>:shards` value: 1 when absent; ProtocolError unless 1..MAX_SHARDS. */
export function parseShardCount(raw: string | Uint8Array | null | undefined): number;
export interface PlacementOptions {
  /** Where the shard count is read (an ioredis client, or anything with `get`). */
  redis?: { get(key: string): Promise<string | null> } | null;
  /** A fixed shard count: nothing is read. */
  count?: number | null;
  /** Names the server in errors. */
  url?: string;
  /** Monotonic clock in seconds (default performance.now() / 1000). */
  clock?: () => number;
}
/** A client's view of where tenants live: the shard count (cached) and the forwards met (remembered). */
export class Placement {
  constructor(keys: Keys, options?: PlacementOptions);
  readonly keys: Keys;
  /** Tenants remembered outside their home shard. */
  readonly remembered: number;
  count(): Promise<number>;
  shardFor(tenant: string): Promise<string>;
  keysFor(tenant: string): Promise<Keys>;
  /** Remember a WRONGSHARD answer: the tenant lives in `shard`. */
  learn(tenant: string, shard: string): void;
}
/** Run `attempt` with the keys of the tenant's shard, following WRONGSHARD up to MAX_SHARD_HOPS times. */
export function placed<T>(placement: Placement, tenant: string, attempt: (keys: Keys) => Promise<T>): Promise<T>;

// -- protocol --------------------------------------------------------------------------------------

export const PROTOCOL_VERSION: 1;
export const MAX_REQUEST_TEXT_BYTES: number;
export const MAX_SEGMENTS: number;
export const MAX_SEGMENT_TEXT_BYTES: number;
export const MAX_ENTRY_BYTES: number;
export const MAX_FRAME_BYTES: number;
export const MAX_PAUSE_MS: number;
export const MIN_SAMPLE_RATE: number;
export const MAX_SAMPLE_RATE: number;
export const END_STATUS: Readonly<{ OK: 'ok'; ERROR: 'error'; CANCELLED: 'cancelled' }>;

export interface SegmentJob {
  requestId: string;
  seq: number;
  text: string;
  voice: string;
  lang: string;
  speed?: number;
  pauseMs?: number;
  enqueuedMs?: number;
  /** Payload `sr` (v1.3): the request's rate, for a segment whose voice has another; null: absent. */
  sampleRate?: number | null;
}
export interface HeaderFrame {
  type: 'header';
  requestId: string;
  segments: number;
  voice: string;
  sampleRate: number;
  tenant: string;
}
export interface WireAudioFrame {
  type: 'audio';
  segment: number;
  index: number;
  last: boolean;
  sampleRate: number;
  attempt: number;
  /** Mono PCM16 little-endian, at most 100 ms. */
  pcm: Buffer;
}
export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  /** The failed segment; null for an error of the whole request. */
  segment: number | null;
}
export interface EndFrame {
  type: 'end';
  segments: number;
  status: 'ok' | 'error' | 'cancelled' | string;
}
export type Frame = HeaderFrame | WireAudioFrame | ErrorFrame | EndFrame;
export function encodeSegment(job: SegmentJob): Buffer;
export function decodeSegment(data: Uint8Array): Required<SegmentJob>;
export function encodeFrame(frame: Frame | (Omit<WireAudioFrame, 'attempt'> & { attempt?: number })): Buffer;
export function decodeFrame(data: Uint8Array): Frame;
/** [request id, seq] of a refused payload when still readable (what a worker uses to fail that segment). */
export function peekSegmentAddress(data: Uint8Array): [string, number] | null;

// -- segmentation ----------------------------------------------------------------------------------

export interface Segment {
  /** Text to speak; empty for a pure pause. */
  text: string;
  /** Silence after the text (ms). */
  pauseMs: number;
}
export const FIRST_MAX_CHARS: number;
export const FIRST_BUDGET: number;
export const MAX_CHARS: number;
export function segmentText(
  text: string,
  options?: { firstMaxChars?: number; firstBudget?: number; maxChars?: number },
): Segment[];
export function presegmented(texts: string[]): Segment[];
export function clauses(text: string): Segment[];
export function weight(text: string): number;
export function weightedChars(text: string): number;
export function weightFifths(text: string): number;
export function speakable(text: string): boolean;

// -- voices ----------------------------------------------------------------------------------------

export interface VoiceSpec {
  lang: string;
  sampleRate: number;
  model?: string;
}
export type VoiceTable = Readonly<Record<string, VoiceSpec>>;
export const VOICES: VoiceTable;
export const DEFAULT_VOICES: Readonly<Record<string, string>>;
/** How long a client trusts the voices hash it read (s). */
export const VOICES_TTL_S: number;
export function voicesFromCatalog(catalog: unknown): { voices: Record<string, VoiceSpec>; defaultVoices: Record<string, string> };
/** The table of a `<prefix>:voices` hash (HGETALL: field -> JSON); defaults from `"default": true`. */
export function voicesFromHash(raw: Record<string, string>): { voices: Record<string, VoiceSpec>; defaultVoices: Record<string, string> };
export function resolveVoice(
  voices: VoiceTable,
  defaultVoices: Readonly<Record<string, string>>,
  name?: string | null,
  lang?: string,
): { name: string; lang: string; sampleRate: number };

// -- languages -------------------------------------------------------------------------------------

export const DEFAULT_LANG: 'zh';
export const LONG_LATIN_WORDS: number;
/** 'zh' with a Han ideograph, else 'en' with a Latin letter, else null. */
export function scriptLang(text: string): 'zh' | 'en' | null;
export function compatible(a: string | null, b: string | null): boolean;
/** Each segment's language: its script's, else the previous one's, else the next one's, else `fallback`. */
export function segmentLanguages(texts: string[], fallback?: string): string[];
export function splitScripts(clause: string, strip: (text: string) => string): string[];

// -- listening -------------------------------------------------------------------------------------

export const DEFAULT_TIMEOUT_S: number;
export function backoff(previous: number | null): number;
export class Reorderer {
  segment: number;
  index: number;
  duplicates: number;
  superseded: number;
  skipped: number;
  readonly held: number;
  push(frame: WireAudioFrame): WireAudioFrame[];
  skip(segment: number): WireAudioFrame[];
}
export type StreamEntry = [string | Buffer, Array<string | Buffer> | Record<string, Buffer | Uint8Array>];
export class StreamState {
  constructor(requestId: string, options?: { skipFailed?: boolean });
  requestId: string;
  skipFailed: boolean;
  lastId: string;
  header: HeaderFrame | null;
  end: EndFrame | null;
  order: Reorderer;
  error: RequestFailedError | null;
  failures: SegmentFailure[];
  readonly cancelled: boolean;
  readonly finished: boolean;
  feed(entries: StreamEntry[]): WireAudioFrame[];
  checkComplete(): void;
  checkTimeout(timeoutS: number): void;
}
export function streamEntries(reply: unknown): StreamEntry[];
/** Position of the i-th (0-based) of `released` frames entry `entryId` released: the id for the last, else `<id>/<i + 1>`. */
export function positionOf(entryId: string, i: number, released: number): string;
/** `<ms>-<seq>` or `<ms>-<seq>/<k>` -> [entry id, k or null]; throws ProtocolError otherwise. */
export function parsePosition(position: string): [string, number | null];

/** An audio frame as a listener gets it. */
export interface AudioFrame {
  segment: number;
  index: number;
  /** True on the final frame of its segment. */
  last: boolean;
  sampleRate: number;
  attempt: number;
  /** Mono PCM16 little-endian. */
  pcm: Buffer;
  /** The stream entry id after which reading on misses nothing (for `fromId`). */
  position: string;
}

export interface FramesOptions {
  /** Resume: rebuild the state from the stream's entries up to this id and read on from it. */
  fromId?: string | null;
  /** Resume exactly: hand out only frames after this one (the last frame handled). */
  after?: { segment: number; index: number } | null;
  /** Give up (StreamTimeoutError) after this long without a stream entry; default 60. */
  timeoutS?: number;
  /** Skip a failed segment and report it at the end; false (the default): fail at its error frame. */
  skipFailed?: boolean;
  /** XREAD BLOCK time (ms); default 1000. */
  blockMs?: number;
}

export class FrameStream implements AsyncIterable<AudioFrame> {
  readonly requestId: string;
  readonly state: StreamState;
  readonly header: HeaderFrame | null;
  readonly end: EndFrame | null;
  readonly failures: SegmentFailure[];
  readonly lastId: string;
  readonly dropped: { duplicates: number; superseded: number; skipped: number };
  [Symbol.asyncIterator](): AsyncGenerator<AudioFrame, void, undefined>;
}

// -- producing -------------------------------------------------------------------------------------

export type Priority = 'interactive' | 'batch';
export const PRIORITIES: readonly Priority[];
export const MIN_SPEED: number;
export const MAX_SPEED: number;
export const REQUEST_TTL_S: number;
export const PENDING_AUDIO_TTL_S: number;
export const CANCELLED_AUDIO_TTL_S: number;
export const ENQUEUE_TRIES: number;
export const FINAL_STATUSES: readonly string[];
export const SCRIPTS: Readonly<Record<'enqueue' | 'cancel', { name: string; source: string; sha: string }>>;

export interface EnqueueOptions {
  tenant: string;
  /** One voice for every segment; default: each segment gets the default voice of its language. */
  voice?: string | null;
  priority?: Priority;
  /** 0.5 … 2.0; default 1. */
  speed?: number;
  /** Seconds from the enqueue (by the Redis server's clock) after which unserved segments are dropped. */
  deadlineS?: number | null;
  /** <shard>.<22 url-safe base64 characters>; default: a new random one. */
  requestId?: string | null;
}

export interface PreparedRequest {
  requestId: string;
  keys: string[];
  args: Array<string | Buffer>;
  audioKey: string;
  header: Buffer;
  segments: number;
  sampleRate: number;
  tenant: string;
  texts: Segment[];
  /** Each segment's voice (the first is the request's). */
  voices: string[];
}

export function prepare(
  text: string | string[] | Uint8Array,
  options: EnqueueOptions & {
    keys?: Keys;
    voices?: VoiceTable;
    defaultVoices?: Readonly<Record<string, string>>;
    nowMs?: number;
  },
): PreparedRequest;

export function tenantRate(buckets: Array<Record<string, string>>, tenant: string, spanS: number): number;

export interface EnqueueResult {
  requestId: string;
  segments: number;
  /** The request's rate: its first segment's voice's; every frame has it. */
  sampleRate: number;
  /** Each segment's voice. */
  voices: string[];
}

export interface RequestStatus {
  requestId: string;
  status: 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | null;
  tenant: string | null;
  voice: string | null;
  segments: number;
  done: number;
  failed: number;
  createdMs: number;
  deadlineMs: number | null;
  cancelled: boolean;
  /** done, failed or cancelled. */
  finished: boolean;
}

export interface ClientOptions {
  prefix?: string;
  /** Pin every enqueue to this shard (not routed; WRONGSHARD throws TenantMovedError). Default: none,
   * each enqueue goes to the shard its tenant lives in. */
  shard?: string;
  /** A voice table (default VOICES) or 'redis': read each voice from the workers' voices hash. */
  voices?: VoiceTable | 'redis';
  defaultVoices?: Readonly<Record<string, string>>;
}

export class ChorusClient {
  /** An ioredis client (left open by close()), a redis:// URL or ioredis options. */
  constructor(redis?: Redis | Cluster | string | RedisOptions, options?: ClientOptions);
  readonly redis: Redis | Cluster;
  readonly keys: Keys;
  /** The `shard` option, or null: enqueues go where the tenant lives. */
  readonly pinnedShard: string | null;
  readonly placement: Placement;
  readonly url: string;
  close(): Promise<void>;
  loadScripts(): Promise<void>;
  prepare(text: string | string[] | Uint8Array, options: EnqueueOptions & { keys?: Keys; nowMs?: number }): PreparedRequest;
  enqueue(text: string | string[] | Uint8Array, options: EnqueueOptions): Promise<EnqueueResult>;
  frames(requestId: string, options?: FramesOptions): FrameStream;
  cancel(requestId: string): Promise<boolean>;
  status(requestId: string): Promise<RequestStatus>;
  serviceRate(tenant: string, keys?: Keys): Promise<number>;
  voice(name?: string | null, lang?: string): Promise<{ name: string; lang: string; sampleRate: number }>;
  /** The workers' voices hash as a table (cached VOICES_TTL_S). */
  voiceTable(): Promise<{ voices: Record<string, VoiceSpec>; defaultVoices: Record<string, string> }>;
}
