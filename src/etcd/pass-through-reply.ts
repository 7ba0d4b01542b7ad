// A child's answer passed on without decoding it. A request that goes whole to one child (a
// Range, Put, DeleteRange or Txn whose keys all route there) gets the child's exact answer, so
// the parent need not decode and re-encode it (a page of a list is hundreds of KiB). Only the
// header must become this node's (cluster and member identity; the child's revision stays):
// etcd-tree, like etcd, encodes the header as the first field, so it is cut off and replaced.
// (Appending a second header would be valid protobuf, merged by Go clients, but protobufjs
// clients replace embedded messages instead of merging them.)
import type { HeaderFn } from './header.ts';
import { decoderFor, encoderFor } from './proto/load.ts';

/** Recognized by the response encoder (proto/load.ts encoderFor), which sends `passThrough` as is. */
export class PassThroughReply {
  constructor(readonly passThrough: Buffer) {}
}

const HEADER_TAG = 0x0a; // field 1, length-delimited

function varint(n: number): number[] {
  const out: number[] = [];
  for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return out;
}

let codec: { encode: (m: object) => Buffer; decode: (b: Buffer) => unknown } | undefined;

/** The child's encoded response with this node's header in place of the child's. */
export function reheaded(bytes: Buffer, header: HeaderFn): PassThroughReply {
  codec ??= { encode: encoderFor('etcdserverpb.ResponseHeader'), decode: decoderFor('etcdserverpb.ResponseHeader') };
  let revision = 0;
  let rest = bytes;
  let theirs: Buffer | null = null;
  if (bytes[0] === HEADER_TAG) {
    let length = 0;
    let pos = 1;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[pos++];
      length |= (b & 0x7f) << shift;
      if (b < 0x80) break;
    }
    theirs = bytes.subarray(pos, pos + length);
    revision = (codec.decode(theirs) as { revision: number }).revision;
    rest = bytes.subarray(pos + length);
  }
  const mine = codec.encode(header(revision));
  // The child answered with this node's identity already: pass the bytes on as they are.
  if (theirs?.equals(mine)) return new PassThroughReply(bytes);
  return new PassThroughReply(Buffer.concat([Buffer.from([HEADER_TAG, ...varint(mine.length)]), mine, rest]));
}
