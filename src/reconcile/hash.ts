/**
 * Stable hashing and encoding, in plain TypeScript so the reconcile core stays free of `node:`
 * modules and runs the same in any process.
 *
 * Why a built-in hash rather than a hash function passed in: the hash is persisted state. It is
 * written into `io.swarmkeeper.spec-hash` labels and into realised config and secret names
 * (`<name>-<hash8>`), so every process that plans, applies or reports must compute exactly the
 * same value forever. One fixed implementation makes that a property of the code rather than a
 * convention every caller has to honour.
 *
 * Why FNV-1a 64-bit: it only has to detect change, not resist an adversary (whoever can write to
 * the Docker API owns the host anyway). It is ten lines, well specified, and its 64 bits leave
 * accidental collisions between versions of one resource out of reach.
 */

const OFFSET_HI = 0xcbf29ce4;
const OFFSET_LO = 0x84222325;
/** The 64-bit FNV prime is 2^40 + 0x1b3; the 2^40 part is applied as a shift. */
const PRIME_LO = 0x1b3;
const TWO_32 = 0x1_0000_0000;

/** UTF-8 bytes of a string; lone surrogates become U+FFFD, as TextEncoder does. */
export function utf8(text: string): Uint8Array {
  const bytes: number[] = [];
  for (const char of text) {
    let code = char.codePointAt(0) ?? 0xfffd;
    if (code >= 0xd800 && code <= 0xdfff) code = 0xfffd;
    if (code < 0x80) bytes.push(code);
    else if (code < 0x800) bytes.push(0xc0 | (code >> 6), 0x80 | (code & 0x3f));
    else if (code < 0x10000)
      bytes.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
    else
      bytes.push(
        0xf0 | (code >> 18),
        0x80 | ((code >> 12) & 0x3f),
        0x80 | ((code >> 6) & 0x3f),
        0x80 | (code & 0x3f),
      );
  }
  return Uint8Array.from(bytes);
}

/**
 * FNV-1a 64-bit of the UTF-8 bytes of `input`, as 16 lower-case hex digits.
 * The 64-bit product is computed on two 32-bit halves so that no intermediate exceeds 2^53.
 */
export function fnv1a64(input: string | Uint8Array): string {
  const bytes = typeof input === 'string' ? utf8(input) : input;
  let hi = OFFSET_HI;
  let lo = OFFSET_LO;
  for (const byte of bytes) {
    lo = (lo ^ byte) >>> 0;
    const low = lo * PRIME_LO;
    const carry = Math.floor(low / TWO_32);
    hi = (Math.imul(hi, PRIME_LO) + carry + (lo << 8)) >>> 0;
    lo = low >>> 0;
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

/**
 * JSON with object keys sorted and `undefined` members dropped, so two values that mean the same
 * thing serialise, and therefore hash and compare, the same whatever order their keys were built in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : 'null';
  if (typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return 'null';
}

/** The hash of a value's canonical JSON: equal for values that are equal as data. */
export function hashValue(value: unknown): string {
  return fnv1a64(canonicalJson(value));
}

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard padded base64, the encoding the Engine API wants for config and secret Data. */
export function base64(input: string | Uint8Array): string {
  const bytes = typeof input === 'string' ? utf8(input) : input;
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i] ?? 0;
    const b = bytes[i + 1] ?? 0;
    const c = bytes[i + 2] ?? 0;
    const triple = (a << 16) | (b << 8) | c;
    out += BASE64_ALPHABET.charAt((triple >> 18) & 63) + BASE64_ALPHABET.charAt((triple >> 12) & 63);
    out += i + 1 < bytes.length ? BASE64_ALPHABET.charAt((triple >> 6) & 63) : '=';
    out += i + 2 < bytes.length ? BASE64_ALPHABET.charAt(triple & 63) : '=';
  }
  return out;
}

/** Bytes of standard or URL-safe base64; characters outside the alphabet are skipped. */
export function fromBase64(text: string): Uint8Array {
  const bytes: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (const char of text) {
    const index = BASE64_ALPHABET.indexOf(char === '-' ? '+' : char === '_' ? '/' : char);
    if (index < 0) continue;
    buffer = ((buffer << 6) | index) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((buffer >> bits) & 0xff);
    }
  }
  return Uint8Array.from(bytes);
}
