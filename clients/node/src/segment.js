// Text segmentation, the same rules as the Python reference (broker/segment.py, docs/PROTOCOL.md):
// NFC; split after ，。？！；：、… and after ,.?!;: followed by whitespace or the line's end;
// newlines split; <break time="250ms"/> (or "1.5s", ≤ 10 s) adds a pause to the clause before
// it; the first segment is the first clause (≤ 24 weighted characters); later ones merge
// clauses up to 32, 64, then 100 weighted characters (CJK and beyond = 1, others 0.4); a
// segment never mixes a Mandarin piece with an English one, and a long English stretch inside a
// Mandarin clause is cut off it (src/language.js).
//
// Python semantics are reproduced exactly where JavaScript differs: text is handled as code
// points (not UTF-16 units), "whitespace" is Python's str.isspace / re's \s (which includes
// U+001C..U+001F and U+0085 but not U+FEFF), line breaks are str.splitlines' set, \d is any
// Unicode decimal digit, \b after "break" uses Python's Unicode word characters, and the
// case-insensitive letters of "break", "time" and "s" accept the same non-ASCII variants as
// Python's re.IGNORECASE (İ ı ſ K). Every step is linear in the text's length.
import { TextError } from './errors.js';
import { compatible, scriptLang, splitScripts } from './language.js';
import { MAX_PAUSE_MS, MAX_REQUEST_TEXT_BYTES, MAX_SEGMENT_TEXT_BYTES, MAX_SEGMENTS } from './protocol.js';

/** Longest first segment (weighted characters). */
export const FIRST_MAX_CHARS = 24;
/** Budget of the second segment; it doubles per segment up to MAX_CHARS. */
export const FIRST_BUDGET = 32;
/** Hard cap per segment. */
export const MAX_CHARS = 100;

// Python's str.isspace() (and re's \s for str patterns): every one is in the BMP.
const SPACE_CODES = [
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002,
  0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
];
const SPACES = new Set(SPACE_CODES);
const WS = '[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
// str.splitlines() boundaries
const LINE_BREAK = /\r\n|[\n\x0b\x0c\r\x1c\x1d\x1e\x85\u2028\u2029]/u;

const CJK_END = '，。？！；：、…';
const ASCII_END = ',.?!;:';
const CLOSERS = '”’」』）)]】》"\'';
const cls = (chars) => chars.replace(/[\\\]^-]/g, '\\$&');
// The look-behind starts the ASCII alternative only at the start of a run of marks, so a run
// not followed by whitespace is not retried from every position inside it (quadratic).
const SPLIT_RE = new RegExp(
  `(?:[${cls(CJK_END)}]+|(?<![${cls(ASCII_END)}])[${cls(ASCII_END)}]+(?=${WS}|$))[${cls(CLOSERS)}]*`,
  'gu',
);
// "<break" (any case, as Python's IGNORECASE), a word boundary, attributes up to the first ">".
const BREAK_RE = /<[bB][rR][eE][aA][kK\u212A](?![\p{L}\p{N}_])([^>]*)\/?>/gu;
const BREAK_TIME_RE = new RegExp(
  `^${WS}*[tT][iIİı][mM][eE]${WS}*=${WS}*["']${WS}*(\\p{Nd}+(?:\\.\\p{Nd}+)?)${WS}*([mM][sSſ]|[sSſ])${WS}*["']${WS}*(?:\\/${WS}*)?$`,
  'u',
);
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const SPEAKABLE = /[\p{L}\p{N}]/u;
const DECIMAL = /^\p{Nd}$/u;

/** Whether a code point (number) or a one-code-point string is whitespace as Python sees it. */
export function isSpace(c) {
  return SPACES.has(typeof c === 'number' ? c : c.codePointAt(0));
}

function fifthsOfCode(cp) {
  // weights in integer fifths, so sums are exact
  return SPACES.has(cp) ? 0 : cp >= 0x2e80 ? 5 : 2;
}

function fifths(text) {
  let sum = 0;
  for (const c of text) sum += fifthsOfCode(c.codePointAt(0));
  return sum;
}

function utf8Len(cp) {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/** UTF-8 bytes of a string without lone surrogates. */
export function utf8Bytes(text) {
  return Buffer.byteLength(text, 'utf8');
}

/** 5 × the weight of `text`: an exact integer (whitespace 0, from U+2E80 on 5, anything else 2). */
export function weightFifths(text) {
  return fifths(text);
}

/** Rough spoken length in weighted characters: a character from U+2E80 on counts 1, another
 * visible one 0.4, whitespace 0. */
export function weight(text) {
  return fifths(text) / 5;
}

/** The enqueue script's `chars` for a segment: its weight rounded, at least 1. */
export function weightedChars(text) {
  // weights are multiples of 0.2, never halfway: Math.round agrees with Python's round()
  return Math.max(1, Math.round(weight(text)));
}

/** Whether the text has something to say: a letter or a digit (Unicode category L* or N*). */
export function speakable(text) {
  return SPEAKABLE.test(text);
}

/** Python's str.strip(): whitespace as str.isspace sees it, from both ends. */
export function pyStrip(text) {
  let start = 0;
  let end = text.length;
  while (start < end && SPACES.has(text.charCodeAt(start))) start += 1;
  while (end > start && SPACES.has(text.charCodeAt(end - 1))) end -= 1;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

function typeName(val) {
  if (val === null || val === undefined) return 'NoneType';
  if (Array.isArray(val)) return 'list';
  if (typeof val === 'number') return Number.isInteger(val) ? 'int' : 'float';
  if (typeof val === 'boolean') return 'bool';
  if (val instanceof Uint8Array) return 'bytes';
  if (typeof val === 'object') return 'dict';
  return typeof val;
}

/** The value of a Unicode decimal digit (every Nd character is in a run of ten, 0 to 9). */
function digitValue(cp) {
  if (cp >= 0x30 && cp <= 0x39) return cp - 0x30;
  let start = cp;
  while (DECIMAL.test(String.fromCodePoint(start - 1))) start -= 1;
  return (cp - start) % 10;
}

function asciiNumber(text) {
  let out = '';
  for (const c of text) out += c === '.' ? '.' : String(digitValue(c.codePointAt(0)));
  return out;
}

/** Python's f"{value:.0f}" (round half to even on the exact binary value). */
function formatRounded(value) {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  if (Math.abs(value) >= 2 ** 52) return BigInt(value).toString();
  const floor = Math.floor(value);
  const frac = value - floor; // exact below 2^52
  const rounded = frac > 0.5 || (frac === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
  return String(rounded);
}

function pauseMs(attrs) {
  const m = BREAK_TIME_RE.exec(attrs);
  if (!m) {
    const cps = Array.from(attrs);
    const shown = cps.length <= 40 ? attrs : `${cps.slice(0, 40).join('')}…`;
    throw new TextError(`malformed <break${shown}>: write <break time="250ms"/> or <break time="1s"/>`);
  }
  // Python lower-cases the unit: "S" is seconds, "ſ" (which IGNORECASE matched) is not "s"
  const value = Number(asciiNumber(m[1])) * (m[2].toLowerCase() === 's' ? 1000 : 1);
  if (value > MAX_PAUSE_MS) {
    throw new TextError(`<break> of ${formatRounded(value)} ms is longer than the limit of ${MAX_PAUSE_MS} ms`);
  }
  return Math.trunc(value);
}

/** Words whose "." does not end a sentence (lower case), as chorus_client.segment.ABBREVIATIONS. */
export const ABBREVIATIONS = new Set(
  'mr mrs ms dr prof sr jr st mt rd ave vs etc vol fig inc ltd co dept approx est jan feb mar apr jun jul aug sep sept oct nov dec'.split(
    ' ',
  ),
);
const INITIALS = /^(?:[A-Za-z]\.)*[A-Za-z]$/;
const OPENERS = new Set([...'"\'“‘([{《「『【']);

/** Whether the word ending at line[end] (a "." follows) is an abbreviation ("Dr", "e.g", "J"). */
function abbreviation(line, end) {
  let start = end;
  while (start > 0 && !isSpace(line[start - 1])) start -= 1;
  let word = line.slice(start, end);
  while (word && OPENERS.has(word[0])) word = word.slice(1);
  return ABBREVIATIONS.has(word.toLowerCase()) || INITIALS.test(word);
}

function splitPlain(text, out) {
  for (const line of text.split(LINE_BREAK)) {
    let pos = 0;
    for (const m of line.matchAll(SPLIT_RE)) {
      if (m[0] === '.' && abbreviation(line, m.index)) continue; // "Dr. Brown": not a sentence end
      const end = m.index + m[0].length;
      const piece = pyStrip(line.slice(pos, end));
      if (piece) for (const p of splitScripts(piece, pyStrip)) out.push({ text: p, pauseMs: 0 });
      pos = end;
    }
    const tail = pyStrip(line.slice(pos));
    if (tail) for (const p of splitScripts(tail, pyStrip)) out.push({ text: p, pauseMs: 0 });
  }
  return out;
}

/**
 * Split into clauses; a <break> adds its pause to the clause before it (a leading one makes a
 * pure pause). TextError for a malformed <break> or one over MAX_PAUSE_MS.
 * @returns {{text: string, pauseMs: number}[]}
 */
export function clauses(text) {
  const out = [];
  let pos = 0;
  // no tag can end after the last ">": searching only up to it keeps the scan linear
  const head = text.slice(0, text.lastIndexOf('>') + 1);
  for (const m of head.matchAll(BREAK_RE)) {
    splitPlain(text.slice(pos, m.index), out);
    const pause = pauseMs(m[1]);
    if (out.length) {
      const last = out[out.length - 1];
      out[out.length - 1] = { text: last.text, pauseMs: Math.min(MAX_PAUSE_MS, last.pauseMs + pause) };
    } else {
      out.push({ text: '', pauseMs: pause });
    }
    pos = m.index + m[0].length;
  }
  splitPlain(text.slice(pos), out);
  return out;
}

/** Cut an over-long clause into pieces of at most `cap` weighted characters, preferring spaces. */
function hardSplit(text, cap) {
  const cps = Array.from(text);
  const limit = cap * 5;
  const n = cps.length;
  const pieces = [];
  let start = 0;
  while (start < n) {
    let acc = 0;
    let end = start;
    while (end < n) {
      acc += fifthsOfCode(cps[end].codePointAt(0));
      if (acc > limit) break;
      end += 1;
    }
    if (end === n) {
      pieces.push(pyStrip(cps.slice(start).join('')));
      break;
    }
    end = Math.max(end, start + 1); // a single character over the cap still makes progress
    let cut = end;
    let space = -1;
    for (let i = end - 1; i >= start; i -= 1) {
      if (cps[i] === ' ') {
        space = i;
        break;
      }
    }
    if (space - start > Math.floor((end - start) / 2)) cut = space;
    pieces.push(pyStrip(cps.slice(start, cut).join('')));
    start = cut;
    while (start < n && isSpace(cps[start])) start += 1;
  }
  return pieces.filter(Boolean);
}

/** Cut text into pieces of at most `limit` UTF-8 bytes, at whitespace where there is some. */
function byteSplit(text, limit) {
  const cps = Array.from(text);
  const n = cps.length;
  const pieces = [];
  let start = 0;
  while (start < n) {
    let size = 0;
    let end = start;
    while (end < n && size + utf8Len(cps[end].codePointAt(0)) <= limit) {
      size += utf8Len(cps[end].codePointAt(0));
      end += 1;
    }
    if (end === n) {
      pieces.push(pyStrip(cps.slice(start).join('')));
      break;
    }
    let cut = end;
    for (let i = end; i > start; i -= 1) {
      if (isSpace(cps[i])) {
        cut = i;
        break;
      }
    }
    cut = Math.max(cut, start + 1);
    pieces.push(pyStrip(cps.slice(start, cut).join('')));
    start = cut;
    while (start < n && isSpace(cps[start])) start += 1;
  }
  return pieces.filter(Boolean);
}

/** Whether joining a and b puts a space between them (two ASCII neighbours). */
function spaced(a, b) {
  return a.length > 0 && a.charCodeAt(a.length - 1) < 0x80 && (b.length === 0 || b.charCodeAt(0) < 0x80);
}

function joinAll(parts) {
  let out = parts[0];
  for (let i = 1; i < parts.length; i += 1) {
    if (spaced(parts[i - 1], parts[i])) out += ' ';
    out += parts[i];
  }
  return out;
}

/**
 * Split request text into segments for the queue (what broker.segment.segment_text does).
 * TextError for unusable text: not a string, a lone surrogate, over 65,536 UTF-8 bytes, a
 * malformed or too long <break>, nothing to speak, or over 2,048 segments.
 * @returns {{text: string, pauseMs: number}[]}
 */
export function segmentText(
  text,
  { firstMaxChars = FIRST_MAX_CHARS, firstBudget = FIRST_BUDGET, maxChars = MAX_CHARS } = {},
) {
  if (typeof text !== 'string') throw new TextError(`text must be a str, got ${typeName(text)}`);
  if (LONE_SURROGATE.test(text)) throw new TextError('text is not valid Unicode (lone surrogate); send UTF-8');
  const size = utf8Bytes(text);
  if (size > MAX_REQUEST_TEXT_BYTES) {
    throw new TextError(
      `text is ${size} UTF-8 bytes; the limit is ${MAX_REQUEST_TEXT_BYTES}: split it into requests`,
    );
  }
  const units = [];
  for (const c of clauses(text.normalize('NFC'))) {
    const cap = units.length === 0 ? firstMaxChars : maxChars;
    let parts = c.text ? hardSplit(c.text, cap) : [''];
    if (parts.some((p) => utf8Bytes(p) > MAX_SEGMENT_TEXT_BYTES)) {
      parts = parts.flatMap((p) => byteSplit(p, MAX_SEGMENT_TEXT_BYTES));
    }
    for (let i = 0; i < parts.length - 1; i += 1) units.push({ text: parts[i], pauseMs: 0 });
    units.push({ text: parts[parts.length - 1], pauseMs: c.pauseMs });
  }
  if (!units.some((u) => speakable(u.text))) {
    throw new TextError(
      'nothing to speak: the text has no letters or digits ' +
        '(it is empty, or only whitespace, punctuation, symbols, emoji or pauses)',
    );
  }
  // merge with running totals (weight in fifths, UTF-8 bytes)
  const partsOf = [[units[0].text]];
  const langs = [scriptLang(units[0].text)]; // each segment's language so far (null: no Han or Latin yet)
  const pauses = [units[0].pauseMs];
  const weights = [fifths(units[0].text)];
  const sizes = [utf8Bytes(units[0].text)];
  let budget = firstBudget;
  for (let u = 1; u < units.length; u += 1) {
    const unit = units[u];
    const w = fifths(unit.text);
    const b = utf8Bytes(unit.text);
    const lang = scriptLang(unit.text);
    const k = partsOf.length - 1;
    const last = partsOf[k];
    const space = spaced(last[last.length - 1], unit.text) ? 1 : 0;
    if (
      partsOf.length > 1 &&
      pauses[k] === 0 &&
      compatible(langs[k], lang) &&
      weights[k] + w <= budget * 5 &&
      sizes[k] + space + b <= MAX_SEGMENT_TEXT_BYTES
    ) {
      last.push(unit.text);
      langs[k] = langs[k] ?? lang;
      pauses[k] = unit.pauseMs;
      weights[k] += w;
      sizes[k] += space + b;
      continue;
    }
    if (partsOf.length > 1) budget = Math.min(maxChars, budget * 2);
    partsOf.push([unit.text]);
    langs.push(lang);
    pauses.push(unit.pauseMs);
    weights.push(w);
    sizes.push(b);
  }
  if (partsOf.length > MAX_SEGMENTS) {
    throw new TextError(`text makes ${partsOf.length} segments; the limit is ${MAX_SEGMENTS}`);
  }
  return partsOf.map((parts, i) => ({ text: joinAll(parts), pauseMs: pauses[i] }));
}

/**
 * Segments a producer cut itself (one model call each), checked against the protocol limits
 * (what broker.segment.presegmented does): NFC, stripped, non-empty, ≤ 2,048 UTF-8 bytes each,
 * at most 2,048 of them, and at least one with a letter or digit.
 * @returns {{text: string, pauseMs: number}[]}
 */
export function presegmented(texts) {
  if (!Array.isArray(texts) || texts.length === 0) throw new TextError('no segments given');
  if (texts.length > MAX_SEGMENTS) throw new TextError(`${texts.length} segments; the limit is ${MAX_SEGMENTS}`);
  const out = [];
  texts.forEach((raw, i) => {
    if (typeof raw !== 'string') throw new TextError(`segment ${i} must be a str, got ${typeName(raw)}`);
    const text = pyStrip(raw.normalize('NFC'));
    if (!text) throw new TextError(`segment ${i} has nothing to speak`);
    if (LONE_SURROGATE.test(text)) throw new TextError(`segment ${i} is not valid Unicode (lone surrogate)`);
    const size = utf8Bytes(text);
    if (size > MAX_SEGMENT_TEXT_BYTES) {
      throw new TextError(`segment ${i} is ${size} UTF-8 bytes; the limit is ${MAX_SEGMENT_TEXT_BYTES}`);
    }
    out.push({ text, pauseMs: 0 });
  });
  if (!out.some((s) => speakable(s.text))) {
    throw new TextError('nothing to speak: no segment has a letter or digit (only punctuation, symbols or emoji)');
  }
  return out;
}
