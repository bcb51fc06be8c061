// Which language a segment is in: what picks its voice when a request names none (the same rule
// as the Python reference's chorus_client.language; docs/PROTOCOL.md §3.1, vectors voices.json):
// a segment with a Han ideograph is "zh" (English words inside Mandarin stay there: the Mandarin
// frontend reads them); one with a Latin letter and no Han is "en"; one with neither (digits,
// punctuation, a pure pause) takes its neighbour's: the previous segment's, else the next one's,
// else the request's (DEFAULT_LANG). Segmentation never merges a "zh" piece with an "en" one, and
// cuts a long Latin stretch (LONG_LATIN_WORDS words or more) off the Han text it touches.

export const ZH = 'zh';
export const EN = 'en';
/** The language of a request without a voice whose segments have neither Han nor Latin letters. */
export const DEFAULT_LANG = ZH;
/** A stretch without Han holding at least this many Latin words is cut off the Han next to it. */
export const LONG_LATIN_WORDS = 4;

// CJK Unified Ideographs, Extension A, Compatibility Ideographs (all in the BMP, so UTF-16
// indices and code points cut the same places).
const HAN_RANGES = '\\u3400-\\u4dbf\\u4e00-\\u9fff\\uf900-\\ufaff';
// ASCII letters, Latin-1 letters (not × ÷), Latin Extended-A and -B, Latin Extended Additional.
const LATIN_RANGES = 'A-Za-z\\u00c0-\\u00d6\\u00d8-\\u00f6\\u00f8-\\u024f\\u1e00-\\u1eff';
const HAN = new RegExp(`[${HAN_RANGES}]`, 'u');
const HAN_RUN = new RegExp(`[${HAN_RANGES}]+`, 'gu');
const LATIN = new RegExp(`[${LATIN_RANGES}]`, 'u');
const LATIN_WORD = new RegExp(`[${LATIN_RANGES}]+`, 'gu');

/** "zh" when the text has a Han ideograph, else "en" when it has a Latin letter, else null. */
export function scriptLang(text) {
  if (HAN.test(text)) return ZH;
  if (LATIN.test(text)) return EN;
  return null;
}

/** Whether pieces of these languages may share a segment (null goes with anything). */
export function compatible(a, b) {
  return a === null || b === null || a === b;
}

/** The language of each segment text: its script's, else the previous one's, else the next one's, else `fallback`. */
export function segmentLanguages(texts, fallback = DEFAULT_LANG) {
  const own = texts.map(scriptLang);
  const first = own.find((lang) => lang !== null) ?? fallback;
  const out = [];
  for (const lang of own) out.push(lang ?? (out.length ? out[out.length - 1] : first));
  return out;
}

/** How many runs of Latin letters the text has. */
function countWords(text) {
  let n = 0;
  for (const _ of text.matchAll(LATIN_WORD)) n += 1;
  return n;
}

/**
 * Cut a clause before and after each stretch without Han that holds at least LONG_LATIN_WORDS
 * Latin words, when the clause also has Han. `strip` is the segmenter's strip (Python's
 * whitespace); empty pieces are dropped; a clause with no such stretch comes back whole.
 */
export function splitScripts(clause, strip) {
  const runs = [...clause.matchAll(HAN_RUN)];
  if (!runs.length) return [clause];
  const gaps = [[0, runs[0].index]];
  for (let i = 1; i < runs.length; i += 1) gaps.push([runs[i - 1].index + runs[i - 1][0].length, runs[i].index]);
  const lastRun = runs[runs.length - 1];
  gaps.push([lastRun.index + lastRun[0].length, clause.length]);
  const cuts = [];
  for (const [start, end] of gaps) {
    if (countWords(clause.slice(start, end)) >= LONG_LATIN_WORDS) cuts.push(start, end);
  }
  if (!cuts.length) return [clause];
  const bounds = [0, ...cuts, clause.length];
  const pieces = [];
  for (let i = 0; i + 1 < bounds.length; i += 1) {
    const piece = strip(clause.slice(bounds[i], bounds[i + 1]));
    if (piece) pieces.push(piece);
  }
  return pieces;
}
