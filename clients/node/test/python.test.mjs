// Agreement with the Python reference, run in a Python subprocess: the committed Lua scripts are
// the assembled ones, and `prepare` builds the very KEYS, ARGV and header frame the Python
// producer builds (same segmentation, weights, lanes, payload bytes).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';

import { ChorusError, Keys, prepare } from '../src/index.js';
import { checkTools, PKG, pythonJson } from './helpers.mjs';
import { expected, SCRIPTS } from '../scripts/sync-lua.mjs';

before(() => checkTools());

describe('lua', () => {
  for (const name of SCRIPTS) {
    test(`lua/${name}.lua is the assembled script (npm run sync-lua)`, () => {
      assert.equal(readFileSync(join(PKG, 'lua', `${name}.lua`), 'utf8'), expected(name));
    });
  }
});

const PREPARE_PY = `
import json, sys, types
import broker.producer as bp
try:
    import chorus_client.enqueue as ce
except ImportError:
    ce = bp
try:
    from chorus_client.keys import Keys
except ImportError:
    from shared.keys import Keys
from models.catalog import load_catalog

catalog = load_catalog()
out = []
for case in json.load(sys.stdin):
    opts = case["options"]
    if "speed" in opts:  # JSON cannot say 2.0; a Python caller's int speed would be packed as an int
        opts["speed"] = float(opts["speed"])
    bp.time = ce.time = types.SimpleNamespace(time=lambda: case["now_ms"] / 1000)  # pin prepare's clock
    try:
        req = bp.prepare(case["text"], keys=Keys(), catalog=catalog, **opts)
    except Exception as exc:  # the error class is compared
        out.append({"error": type(exc).__name__})
        continue
    out.append({
        "request_id": req.request_id,
        "keys": req.keys,
        "args": [{"b": a.hex()} if isinstance(a, bytes) else str(a) for a in req.args],
        "header": req.header.hex(),
        "segments": req.segments,
        "sample_rate": req.sample_rate,
    })
print(json.dumps(out))
`;

const RID = 's0.hLn8qfscKkBg3-VVUSeQLg';
const LONG_ZH = `${Array(30).fill('今天天气很好，我们一起去公园散步吧').join('。')}。`;
const LONG_EN = Array(40).fill('The quick brown fox jumps over the lazy dog, and then it rests.').join(' ');
const CASES = [
  ['你好，世界！', {}],
  [LONG_ZH, { priority: 'batch', speed: 1.25 }],
  [LONG_EN, { voice: 'en_joe', deadline_s: 2.5 }],
  ['第一句<break time="250ms"/>第二句<break time="1.5s"/>\n第三句, with English; mixed: 12.5 and 3:30.', { voice: 'jf_alpha', speed: 0.5 }],
  [['第一段。', 'second part', '  第三段  '], { priority: 'batch' }],
  ['短', { deadline_s: 0.0004, speed: 2 }],
  ['😀 emoji and café ＡＢＣ', {}],
  // no voice: each segment's language picks its default voice; the request stays at the first's rate
  ['你好。Hello world, how are you today? 再见。12:30。', {}],
  ['Good morning. 早上好。<break time="300ms"/>我刚才说Hello world how are you today你好吗', { priority: 'batch' }],
  [['123', '你好', '!!', 'Hello', '456'], {}],
  ['你好。Hello world.', { voice: 'jm_kumo' }],
  ['hi', { voice: 'nope' }],
  ['hi', { speed: 3 }],
  ['hi', { priority: 'rt' }],
  ['。。。', {}],
  ['a<break time="20s"/>', {}],
  [[], {}],
];

const ERRORS = {
  UnknownVoice: 'UnknownVoiceError',
  InvalidRequest: 'InvalidRequestError',
  TextError: 'TextError',
  UnknownTenant: 'UnknownTenantError',
};

describe('prepare agrees with broker.producer.prepare', () => {
  const nowMs = 1_700_000_000_500;
  let python;
  before(async () => {
    const input = JSON.stringify(CASES.map(([text, options]) => ({ text, options: { tenant: 'acme', request_id: RID, ...options }, now_ms: nowMs })));
    python = await pythonJson(PREPARE_PY, [], { input });
  });

  CASES.forEach(([text, options], i) => {
    test(`case ${i}: ${JSON.stringify(text).slice(0, 40)} ${JSON.stringify(options)}`, () => {
      const camel = {
        voice: options.voice,
        priority: options.priority,
        speed: options.speed,
        deadlineS: options.deadline_s,
      };
      const py = python[i];
      let node;
      try {
        const req = prepare(text, { tenant: 'acme', keys: new Keys(), requestId: RID, nowMs, ...Object.fromEntries(Object.entries(camel).filter(([, v]) => v !== undefined)) });
        node = {
          request_id: req.requestId,
          keys: req.keys,
          args: req.args.map((a) => (Buffer.isBuffer(a) ? { b: a.toString('hex') } : a)),
          header: req.header.toString('hex'),
          segments: req.segments,
          sample_rate: req.sampleRate,
        };
      } catch (err) {
        if (!(err instanceof ChorusError)) throw err;
        node = { error: err.name };
      }
      if (py.error) assert.deepEqual(node, { error: ERRORS[py.error] ?? py.error });
      else assert.deepEqual(node, py);
    });
  });
});
