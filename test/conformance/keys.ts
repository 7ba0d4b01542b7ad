// Byte helpers for building etcd requests (bytes fields must be Buffers: a string would be
// taken as base64 by protobufjs).

export const b = (s: string): Buffer => Buffer.from(s);

/** range_end "\0": with a key, every key >= key; with key "\0" too, every key. */
export const FROM_KEY = Buffer.from([0]);

/** The range_end that makes [prefix, end) cover every key starting with prefix (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return FROM_KEY;
}

/** The smallest key after `key`: where kube-apiserver continues a paginated list. */
export const keyAfter = (key: Buffer): Buffer => Buffer.concat([key, FROM_KEY]);
