// The voices a producer may name, with what a producer needs of each: its language (the
// payload's `lang`) and its model's sample rate (the header frame's `sr`). This is the Python
// reference's model catalog (models/catalog.json) reduced to that; a test checks it against
// the catalog. Pass your own table as the client's `voices` option for other deployments.
import { UnknownVoiceError } from './errors.js';

/** @type {Readonly<Record<string, {lang: string, sampleRate: number, model: string}>>} */
export const VOICES = Object.freeze({
  jm_kumo: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  jf_alpha: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  jf_gongitsune: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  jf_nezumi: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  jf_tebukuro: Object.freeze({ lang: 'zh', sampleRate: 24000, model: 'kokoro' }),
  en_joe: Object.freeze({ lang: 'en', sampleRate: 22050, model: 'piper-joe' }),
});

/** The voice used when a request names none, per language ("zh" is the default language). */
export const DEFAULT_VOICES = Object.freeze({ zh: 'jm_kumo', en: 'en_joe' });

/** A voice table from a parsed models/catalog.json ({voices, defaultVoices}). */
export function voicesFromCatalog(catalog) {
  const voices = {};
  for (const model of catalog.models) {
    for (const v of model.voices) voices[v.name] = { lang: v.lang, sampleRate: model.sample_rate, model: model.id };
  }
  return { voices, defaultVoices: { ...catalog.default_voices } };
}

/** The named voice (or the language's default when `name` is empty) as {name, lang, sampleRate}. */
export function resolveVoice(voices, defaultVoices, name, lang = 'zh') {
  const key = name || defaultVoices[lang] || '';
  if (!Object.hasOwn(voices, key)) throw new UnknownVoiceError(key, Object.keys(voices).sort());
  const spec = voices[key];
  return { name: key, lang: spec.lang, sampleRate: spec.sampleRate };
}
