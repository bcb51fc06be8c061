// A strict msgpack reader for the protocol's decoders. @msgpack/msgpack (used to encode) cannot
// tell a float 1.0 from an integer 1 on the wire, decodes invalid UTF-8 leniently and turns
// numeric keys into strings; the Python reference refuses all of these (msgpack-python with
// raw=False, strict_map_key=True, an ext hook that refuses, and size caps). This reader keeps
// the wire type: integers are numbers (BigInt beyond 2^53 - 1), floats are PyFloat boxes,
// str is a string (fatal UTF-8), bin a Buffer, maps are null-prototype objects.

export class PyFloat {
  constructor(value) {
    this.value = value;
  }
}

/** Any failure of the reader: `ext` says an ext value was met (the decoders name field "payload"). */
export class MsgpackError extends Error {
  constructor(message, { ext = false, utf8 = false } = {}) {
    super(message);
    this.ext = ext;
    this.utf8 = utf8;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decode one msgpack value that must fill `data` exactly.
 * @param {Uint8Array} data
 * @param {object} [limits] maxStr / maxBin (bytes; default data.length), maxArray (64), maxMap (32),
 *   strictKeys (true: map keys must be str or bin, as strict_map_key), maxDepth (64)
 */
export function unpack(data, { maxStr, maxBin, maxArray = 64, maxMap = 32, strictKeys = true, maxDepth = 64 } = {}) {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const strCap = maxStr ?? buf.length;
  const binCap = maxBin ?? buf.length;
  let pos = 0;

  const need = (n) => {
    if (pos + n > buf.length) throw new MsgpackError('unexpected end of data');
  };
  const u8 = () => {
    need(1);
    return buf[pos++];
  };
  const u16 = () => {
    need(2);
    const v = buf.readUInt16BE(pos);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = buf.readUInt32BE(pos);
    pos += 4;
    return v;
  };
  const big = (v) => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  const bytes = (n) => {
    need(n);
    const out = buf.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const str = (n) => {
    if (n > strCap) throw new MsgpackError(`${n} exceeds max_str_len(${strCap})`);
    try {
      return utf8.decode(bytes(n));
    } catch (err) {
      if (err instanceof MsgpackError) throw err;
      throw new MsgpackError('invalid UTF-8 in a string', { utf8: true });
    }
  };
  const bin = (n) => {
    if (n > binCap) throw new MsgpackError(`${n} exceeds max_bin_len(${binCap})`);
    return Buffer.from(bytes(n));
  };
  const ext = (n) => {
    const type = (() => {
      need(1);
      return buf.readInt8(pos++);
    })();
    bytes(n);
    throw new MsgpackError(`msgpack ext type ${type} is not allowed`, { ext: true });
  };

  const array = (n, depth) => {
    if (n > maxArray) throw new MsgpackError(`${n} exceeds max_array_len(${maxArray})`);
    const out = [];
    for (let i = 0; i < n; i += 1) out.push(value(depth + 1));
    return out;
  };
  const map = (n, depth) => {
    if (n > maxMap) throw new MsgpackError(`${n} exceeds max_map_len(${maxMap})`);
    const out = Object.create(null);
    for (let i = 0; i < n; i += 1) {
      const key = value(depth + 1);
      const val = value(depth + 1);
      if (typeof key === 'string') {
        out[key] = val;
      } else if (key instanceof Uint8Array) {
        // a bytes key is allowed but can never name a field (Python keeps it as b'…')
      } else if (strictKeys) {
        throw new MsgpackError(`${typeof key} is not allowed for map key when strict_map_key=True`);
      } else if (key !== null && typeof key === 'object' && !(key instanceof PyFloat)) {
        throw new MsgpackError('unhashable map key');
      }
    }
    return out;
  };

  const value = (depth) => {
    if (depth > maxDepth) throw new MsgpackError('nested too deep');
    const b = u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0x80 && b <= 0x8f) return map(b & 0x0f, depth);
    if (b >= 0x90 && b <= 0x9f) return array(b & 0x0f, depth);
    if (b >= 0xa0 && b <= 0xbf) return str(b & 0x1f);
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return bin(u8());
      case 0xc5:
        return bin(u16());
      case 0xc6:
        return bin(u32());
      case 0xc7:
        return ext(u8());
      case 0xc8:
        return ext(u16());
      case 0xc9:
        return ext(u32());
      case 0xca: {
        need(4);
        const v = buf.readFloatBE(pos);
        pos += 4;
        return new PyFloat(v);
      }
      case 0xcb: {
        need(8);
        const v = buf.readDoubleBE(pos);
        pos += 8;
        return new PyFloat(v);
      }
      case 0xcc:
        return u8();
      case 0xcd:
        return u16();
      case 0xce:
        return u32();
      case 0xcf: {
        need(8);
        const v = buf.readBigUInt64BE(pos);
        pos += 8;
        return big(v);
      }
      case 0xd0: {
        need(1);
        return buf.readInt8(pos++);
      }
      case 0xd1: {
        need(2);
        const v = buf.readInt16BE(pos);
        pos += 2;
        return v;
      }
      case 0xd2: {
        need(4);
        const v = buf.readInt32BE(pos);
        pos += 4;
        return v;
      }
      case 0xd3: {
        need(8);
        const v = buf.readBigInt64BE(pos);
        pos += 8;
        return big(v);
      }
      case 0xd4:
        return ext(1);
      case 0xd5:
        return ext(2);
      case 0xd6:
        return ext(4);
      case 0xd7:
        return ext(8);
      case 0xd8:
        return ext(16);
      case 0xd9:
        return str(u8());
      case 0xda:
        return str(u16());
      case 0xdb:
        return str(u32());
      case 0xdc:
        return array(u16(), depth);
      case 0xdd:
        return array(u32(), depth);
      case 0xde:
        return map(u16(), depth);
      case 0xdf:
        return map(u32(), depth);
      default:
        throw new MsgpackError(`unknown msgpack byte 0x${b.toString(16)}`);
    }
  };

  const out = value(0);
  if (pos !== buf.length) throw new MsgpackError('extra data after the value');
  return out;
}
