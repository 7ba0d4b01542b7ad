// etcd client 3.4 (kube-apiserver <= 1.21, etcdctl 3.4) dials some per-endpoint calls, such as
// the Status poll behind kube-apiserver's etcd_db_total_size_in_bytes, with the whole endpoint
// URL as the HTTP/2 :authority ("http://127.0.0.1:2379"). etcd (Go) accepts it; Node's HTTP/2
// layer (nghttp2) resets every stream of such a connection with PROTOCOL_ERROR, and has no
// option to relax the check. So plaintext listeners accept connections themselves: a
// connection whose first request has a well-formed authority goes to gRPC untouched (the
// native fast path); one with a URL authority gets its request headers rewritten (scheme
// removed) on the way in. Only the client-to-server header blocks are touched.
// Connections are inspected only until their first request; the rest goes straight through.
import type * as grpc from '@grpc/grpc-js';
import hpack, { type Decompressor } from 'hpack.js';
import { createServer, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { log } from '../telemetry/logger.ts';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const FRAME_HEADER = 9;
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
const SETTINGS = 0x4;
const ACK = 0x1;
/** An empty SETTINGS frame: sent at once, so clients that wait for the server's preface send requests. */
const EARLY_SETTINGS = Buffer.from([0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
/** HPACK table size both sides use until told otherwise (RFC 7540 SETTINGS_HEADER_TABLE_SIZE default). */
const TABLE_SIZE = 4096;
/** Default SETTINGS_MAX_FRAME_SIZE: rewritten header blocks are split to fit it. */
const MAX_FRAME = 16384;
/** A connection whose first request we cannot find in this many bytes is passed on as it is. */
const PEEK_LIMIT = 64 * 1024;

const URL_AUTHORITY = /^[a-z][a-z0-9+.-]*:\/\//i;

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
  raw: Buffer;
}

/** Splits complete frames off the front of `buf`; returns them and the rest. */
function takeFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let at = 0;
  while (buf.length - at >= FRAME_HEADER) {
    const length = buf.readUIntBE(at, 3);
    if (buf.length - at < FRAME_HEADER + length) break;
    const raw = buf.subarray(at, at + FRAME_HEADER + length);
    frames.push({ type: raw[3], flags: raw[4], stream: raw.readUInt32BE(5) & 0x7fffffff, payload: raw.subarray(FRAME_HEADER), raw });
    at += FRAME_HEADER + length;
  }
  return { frames, rest: buf.subarray(at) };
}

/** The header block fragment of a HEADERS frame, without padding and priority fields. */
function headerFragment(f: Frame): { fragment: Buffer; priority: Buffer | null } {
  let p = f.payload;
  let pad = 0;
  if (f.flags & PADDED) {
    pad = p[0];
    p = p.subarray(1);
  }
  let priority: Buffer | null = null;
  if (f.flags & PRIORITY) {
    priority = p.subarray(0, 5);
    p = p.subarray(5);
  }
  return { fragment: p.subarray(0, p.length - pad), priority };
}

function decodeAll(decoder: Decompressor, block: Buffer): Array<{ name: string; value: string; neverIndex?: boolean }> {
  decoder.write(block);
  decoder.execute();
  const headers = [];
  for (let h = decoder.read(); h; h = decoder.read()) headers.push(h);
  return headers;
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(FRAME_HEADER);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/**
 * Rewrites the client's header blocks (URL authority -> host:port), keeping its own HPACK state
 * on both sides: it decodes what the client encoded and re-encodes for the server.
 */
class AuthorityRepairStream extends Duplex {
  private pending: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  private readonly decoder = hpack.decompressor.create({ table: { size: TABLE_SIZE } });
  private readonly encoder = hpack.compressor.create({ table: { size: TABLE_SIZE } });
  /** A HEADERS frame waiting for its CONTINUATION frames. */
  private open: { stream: number; flags: number; priority: Buffer | null; fragments: Buffer[] } | null = null;

  constructor(private readonly socket: Socket, first: Buffer) {
    super();
    socket.on('data', (chunk: Buffer) => this.fromClient(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
    this.fromClient(first);
  }

  private fromClient(chunk: Buffer): void {
    let buf: Buffer = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: Buffer[] = [];
    if (!this.prefaceSeen) {
      if (buf.length < PREFACE.length) {
        this.pending = buf;
        return;
      }
      out.push(buf.subarray(0, PREFACE.length));
      buf = buf.subarray(PREFACE.length);
      this.prefaceSeen = true;
    }
    const { frames, rest } = takeFrames(buf);
    this.pending = Buffer.from(rest);
    for (const f of frames) {
      if (f.type === HEADERS) {
        const { fragment, priority } = headerFragment(f);
        this.open = { stream: f.stream, flags: f.flags, priority, fragments: [fragment] };
      } else if (f.type === CONTINUATION && this.open) {
        this.open.fragments.push(f.payload);
      } else {
        out.push(f.raw);
        continue;
      }
      if (f.flags & END_HEADERS) {
        out.push(this.rewritten(this.open!));
        this.open = null;
      }
    }
    if (out.length > 0 && !this.push(Buffer.concat(out))) this.socket.pause();
  }

  private rewritten(h: { stream: number; flags: number; priority: Buffer | null; fragments: Buffer[] }): Buffer {
    const headers = decodeAll(this.decoder, Buffer.concat(h.fragments)).map((x) =>
      x.name === ':authority' ? { ...x, value: x.value.replace(URL_AUTHORITY, '').replace(/\/+$/, '') } : x,
    );
    this.encoder.write(headers);
    const block = this.encoder.read() ?? Buffer.alloc(0);
    const head = h.priority ?? Buffer.alloc(0);
    const firstRoom = MAX_FRAME - head.length;
    const parts: Buffer[] = [];
    const keep = h.flags & (END_STREAM | PRIORITY);
    if (block.length <= firstRoom) return frame(HEADERS, keep | END_HEADERS, h.stream, Buffer.concat([head, block]));
    parts.push(frame(HEADERS, keep, h.stream, Buffer.concat([head, block.subarray(0, firstRoom)])));
    for (let at = firstRoom; at < block.length; at += MAX_FRAME) {
      const last = at + MAX_FRAME >= block.length;
      parts.push(frame(CONTINUATION, last ? END_HEADERS : 0, h.stream, block.subarray(at, at + MAX_FRAME)));
    }
    return Buffer.concat(parts);
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.socket.write(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy();
    cb(err);
  }
}

/**
 * What the first bytes of a connection tell: the :authority of its first request (null when
 * there is none or the bytes are not HTTP/2), and those bytes without the client's ACK of our
 * early SETTINGS frame (see listenPlaintext). `undefined` while more bytes are needed.
 */
function peek(buf: Buffer): { authority: string | null; bytes: Buffer } | undefined {
  if (buf.length < PREFACE.length) return undefined;
  if (!buf.subarray(0, PREFACE.length).equals(PREFACE)) return { authority: null, bytes: buf };
  const { frames, rest } = takeFrames(buf.subarray(PREFACE.length));
  const kept: Buffer[] = [PREFACE];
  const fragments: Buffer[] = [];
  let ackDropped = false;
  let authority: string | null | undefined;
  for (const f of frames) {
    if (!ackDropped && f.type === SETTINGS && f.flags & ACK) {
      ackDropped = true;
      continue;
    }
    kept.push(f.raw);
    if (authority !== undefined) continue;
    if (f.type === HEADERS) fragments.push(headerFragment(f).fragment);
    else if (f.type === CONTINUATION && fragments.length) fragments.push(f.payload);
    else continue;
    if (f.flags & END_HEADERS) {
      const decoder = hpack.decompressor.create({ table: { size: TABLE_SIZE } });
      authority = decodeAll(decoder, Buffer.concat(fragments)).find((h) => h.name === ':authority')?.value ?? null;
    }
  }
  if (!ackDropped || authority === undefined) return undefined;
  return { authority, bytes: Buffer.concat([...kept, rest]) };
}

/** Serves plaintext gRPC on host:port, repairing URL authorities. */
export function listenPlaintext(grpcServer: grpc.Server, credentials: grpc.ServerCredentials, host: string, port: number): Promise<{ port: number; server: Server }> {
  const injector = grpcServer.createConnectionInjector(credentials);
  const server = createServer((socket) => {
    // gRPC clients send no request before the server's preface (a SETTINGS frame). Ours is an
    // empty one, sent now; the gRPC server sends its real one once it has the connection. The
    // client's ACK of ours is removed before the server sees the bytes (it would not expect it).
    socket.write(EARLY_SETTINGS);
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const first = peek(seen);
      if (first === undefined && seen.length < PEEK_LIMIT) return;
      socket.off('data', onData);
      socket.pause();
      const bytes = first?.bytes ?? seen;
      if (first?.authority && URL_AUTHORITY.test(first.authority)) {
        log.debug({ authority: first.authority }, 'repairing the :authority of a connection (etcd client 3.4)');
        injector.injectConnection(new AuthorityRepairStream(socket, bytes));
      } else {
        socket.unshift(bytes);
        injector.injectConnection(socket);
      }
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      resolve({ port: typeof addr === 'object' && addr ? addr.port : port, server });
    });
  });
}
