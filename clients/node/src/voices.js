// The voices a producer may name, with what a producer needs of each: its language (the
// payload's `lang`) and its model's sample rate (the header frame's `sr`). This is the Python
// reference's model catalog (models/catalog.json) reduced to that; a test checks it against
// the catalog. Pass your own table as the client's `voices` option for other deployments, or
// `voices: 'redis'` to read the table the workers publish (voicesFromHash).
import { UnknownVoiceError } from './errors.js';

/** @type {Readonly<Record<string, {lang: string, sampleRate: number, model: string}>>} */
export const VOICES = Object.freeze({
  zm_yunxi: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  zf_xiaobei: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  zf_xiaoxiao: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  zf_xiaoyi: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  zm_yunjian: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  zm_yunxia: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  zm_yunyang: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  jm_kumo: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  jf_alpha: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  jf_gongitsune: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  jf_nezumi: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  jf_tebukuro: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  en_joe: Object.freeze({ lang: 'en', sampleRate: 22050, model: 'piper-joe' }),
});

/** The voice a segment gets when its request names none, per the segment's language. */
export const DEFAULT_VOICES = Object.freeze({ zh: 'zm_yunxi', en: 'en_joe' });

/** How long a client trusts the voices hash it read (s): VOICES_TTL_S of the Python reference. */
export const VOICES_TTL_S = 5;

/** A voice table from a parsed models/catalog.json ({voices, defaultVoices}). */
export function voicesFromCatalog(catalog) {
  const voices = {};
  for (const model of catalog.models) {
    for (const v of model.voices) voices[v.name] = { lang: v.lang, sampleRate: model.sample_rate, model: model.id };
  }
  return { voices, defaultVoices: { ...catalog.default_voices } };
}

/**
 * A voice table from the `<prefix>:voices` hash as HGETALL returns it (field → JSON):
 * {voices, defaultVoices}. A language's default is its voice marked `"default": true` (workers
 * from protocol v1.3 mark the catalog's default per language), the first by name when several
 * are. A language none of whose voices is marked has no default: only v1.3 workers mark them, and
 * only they resample a segment to its request's rate. An entry that is not a voice description is
 * left out.
 */
export function voicesFromHash(raw) {
  const voices = {};
  const marked = {};
  const names = Object.keys(raw ?? {}).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const name of names) {
    let data;
    try {
      data = JSON.parse(String(raw[name]));
    } catch {
      continue;
    }
    const sampleRate = Number.parseInt(data?.sample_rate, 10);
    if (typeof data?.lang !== 'string' || !Number.isInteger(sampleRate)) continue;
    voices[name] = { lang: data.lang, sampleRate, model: typeof data.model === 'string' ? data.model : '' };
    if (data.default === true) marked[data.lang] ??= name;
  }
  return { voices, defaultVoices: marked };
}

/**
 * The named voice, or with no name the default voice of `lang`, as {name, lang, sampleRate}.
 * UnknownVoiceError when there is no such voice (with `lang` set when no voice serves the language).
 */
export function resolveVoice(voices, defaultVoices, name, lang = 'zh') {
  if (!name) {
    const key = Object.hasOwn(defaultVoices, lang) ? defaultVoices[lang] : '';
    if (!Object.hasOwn(voices, key) || voices[key].lang !== lang) {
      throw new UnknownVoiceError('', Object.keys(voices).sort(), lang);
    }
    return { name: key, lang: voices[key].lang, sampleRate: voices[key].sampleRate };
  }
  if (!Object.hasOwn(voices, name)) throw new UnknownVoiceError(name, Object.keys(voices).sort());
  const spec = voices[name];
  return { name, lang: spec.lang, sampleRate: spec.sampleRate };
}
