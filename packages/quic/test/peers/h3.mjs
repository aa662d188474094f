/**
 * Just enough HTTP/3 (RFC 9114) and QPACK (RFC 9204) for zero-io's raw QUIC streams to talk to
 * HTTP/3 peers (ngtcp2's gtlsserver / gtlsclient, aioquic's HTTP/3 server): a GET and a response
 * head, built from QPACK's static table only (Required Insert Count 0, so no dynamic table and
 * no encoder/decoder streams), and a frame walker that counts DATA payload. Imported by the
 * interop tests (packages/quic/test/interop-ngtcp2.test.ts) and by the benchmark client
 * (benchmarks/servers/quic-client.mjs).
 *
 * What it cannot do: decode field values (peers Huffman-code them; `status` reads the one
 * static-table or plain-literal `:status` of a response, nothing else), server push, trailers'
 * meaning (a trailing HEADERS frame is skipped like any other non-DATA frame).
 *
 * @module
 */

/** A QUIC variable-length integer (RFC 9000 section 16), up to 2^30 - 1. */
export function varint(n) {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 30) throw new RangeError(`varint: ${n} is out of range`);
  return n < 64 ? [n] : n < 16384 ? [0x40 | (n >> 8), n & 255] : [0x80 | (n >>> 24), (n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/**
 * A QUIC varint at `b[i]`: `[value, index after it]`, or null when `b` ends first.
 * @param {ArrayLike<number>} b
 * @param {number} i
 * @returns {[number, number] | null}
 */
export function readVarint(b, i) {
  if (i >= b.length) return null;
  const len = 1 << (b[i] >> 6);
  if (i + len > b.length) return null;
  let v = b[i] & 63;
  for (let k = 1; k < len; k++) v = v * 256 + b[i + k];
  return [v, i + len];
}

// QPACK integers with an N-bit prefix (RFC 9204 section 4.1.1, RFC 7541 section 5.1).
function qint(first, prefixBits, n) {
  const max = (1 << prefixBits) - 1;
  if (n < max) return [first | n];
  const out = [first | max];
  for (n -= max; n >= 128; n = Math.floor(n / 128)) out.push((n % 128) | 128);
  out.push(n);
  return out;
}
// A string literal without Huffman coding (H bit 0, 7-bit length prefix).
const qstr = (s) => {
  const b = Buffer.from(String(s));
  return [...qint(0, 7, b.length), ...b];
};
// An indexed field line, static table (11xxxxxx) / a literal with a static name reference (0101xxxx).
const staticRef = (index) => qint(0xc0, 6, index);
const literalStaticName = (index, value) => [...qint(0x50, 4, index), ...qstr(value)];

/** HTTP/3 frame types used here. */
export const FRAME = Object.freeze({ DATA: 0x00, HEADERS: 0x01, SETTINGS: 0x04 });

/** A frame: type, length, payload. */
export function frame(type, payload) {
  return Buffer.from([...varint(type), ...varint(payload.length), ...payload]);
}

/**
 * The bytes of a client's (or server's) control stream, a unidirectional stream: stream type
 * 0x00, then an empty SETTINGS frame (QPACK dynamic table 0: the peer needs no encoder/decoder
 * streams from us).
 */
export const CONTROL_STREAM = Buffer.from([0x00, FRAME.SETTINGS, 0x00]);

/**
 * A GET request: a HEADERS frame whose field section has Required Insert Count 0, Base 0, the
 * static entries `:method GET` (17) and `:scheme https` (23), and literals with static name
 * references `:authority` (0) and `:path` (1), not Huffman-coded. Write it on a new
 * bidirectional stream and end the stream.
 * @param {string} path e.g. '/1048576'
 * @param {string} authority e.g. 'localhost'
 */
export function get(path, authority) {
  return frame(FRAME.HEADERS, [0, 0, ...staticRef(17), ...staticRef(23), ...literalStaticName(0, authority), ...literalStaticName(1, path)]);
}

// The :status entries of QPACK's static table (Appendix A).
const STATUS_INDEX = new Map([[103, 24], [200, 25], [304, 26], [404, 27], [503, 28], [100, 63], [204, 64], [206, 65], [302, 66], [400, 67], [403, 68], [421, 69], [425, 70], [500, 71]]);
const INDEX_STATUS = new Map([...STATUS_INDEX].map(([s, i]) => [i, s]));

/**
 * A response head: a HEADERS frame with `:status` (the static entry where there is one: 200 is
 * index 25, byte 0xd9; else a literal with the name reference 24) and `content-length` (a literal
 * with the static name reference 4). Follow it with `dataHeader(bodyLength)` and the body.
 * @param {number} status
 * @param {number} bodyLength
 */
export function response(status, bodyLength) {
  const st = STATUS_INDEX.has(status) ? staticRef(STATUS_INDEX.get(status)) : literalStaticName(24, status);
  return frame(FRAME.HEADERS, [0, 0, ...st, ...literalStaticName(4, bodyLength)]);
}

/** The header of a DATA frame carrying `length` bytes (the bytes follow it). */
export function dataHeader(length) {
  return Buffer.from([...varint(FRAME.DATA), ...varint(length)]);
}

/**
 * Walks the HTTP/3 frames of one request or response stream as its pieces arrive (frames may be
 * split anywhere across `push` calls): DATA payload is counted (and handed to `onData` when
 * given), every other frame is skipped but its type noted; the first HEADERS frame's payload is
 * kept (up to 4 KiB) so `status` can read a response's `:status`.
 */
export class FrameWalker {
  /** @param {(bytes: Uint8Array) => void} [onData] the DATA payload, piece by piece (a view: copy to keep) */
  constructor(onData) {
    this.onData = onData;
    /** DATA payload bytes so far. */
    this.body = 0;
    /** Frame types in order of arrival (DATA frames too, one entry each). */
    this.frames = [];
    /** The first HEADERS frame's payload (a field section), once it arrived whole. */
    this.headers = null;
    this.pend = [];  // the bytes of a frame header read so far
    this.left = 0;  // payload bytes of the current frame still to come
    this.type = -1;
    this.hdr = null;  // the first HEADERS payload while it arrives
  }

  /** Feeds the next piece of the stream. */
  push(data, length = data.length) {
    for (let off = 0; off < length;) {
      if (this.left > 0) {
        const n = Math.min(this.left, length - off);
        const piece = data.subarray(off, off + n);
        if (this.type === FRAME.DATA) {
          this.body += n;
          this.onData?.(piece);
        } else if (this.hdr) this.hdr.push(...piece.subarray(0, Math.max(0, 4096 - this.hdr.length)));
        this.left -= n;
        off += n;
        if (this.left === 0) this.endFrame();
      } else {
        this.pend.push(data[off++]);
        const t = readVarint(this.pend, 0);
        const l = t && readVarint(this.pend, t[1]);
        if (!l) continue;
        this.type = t[0];
        this.left = l[0];
        this.pend = [];
        this.frames.push(this.type);
        if (this.type === FRAME.HEADERS && this.headers === null && !this.hdr) this.hdr = [];
        if (this.left === 0) this.endFrame();
      }
    }
  }

  endFrame() {
    if (this.hdr) {
      this.headers = Buffer.from(this.hdr);
      this.hdr = null;
    }
    this.type = -1;
  }

  /** No frame is cut short: call at the stream's FIN. */
  get complete() {
    return this.left === 0 && this.pend.length === 0;
  }

  /**
   * The response's `:status` from its first HEADERS frame when the field section starts with it
   * as a static-table entry or an un-Huffman-coded literal (what nghttp3 and aioquic send); null
   * otherwise (no HEADERS yet, a dynamic-table reference).
   */
  get status() {
    const h = this.headers;
    if (!h || h.length < 3 || h[0] !== 0 || (h[1] & 0x7f) !== 0) return null;  // Required Insert Count 0, Base 0
    const b = h[2];
    if ((b & 0xc0) === 0xc0) {  // indexed, static
      let index = b & 0x3f;
      if (index === 0x3f) index += h[3];
      return INDEX_STATUS.get(index) ?? null;
    }
    if ((b & 0xdf) === 0x5f && h[3] === 24 - 15 && (h[4] & 0x80) === 0) {  // literal, static name :status
      return Number(h.subarray(5, 5 + (h[4] & 0x7f)).toString('latin1'));
    }
    return null;
  }
}
