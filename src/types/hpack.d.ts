// Types for hpack.js (it ships none): the part etcd-tree uses.
declare module 'hpack.js' {
  interface Header {
    name: string;
    value: string;
    neverIndex?: boolean;
  }
  interface Compressor {
    write(headers: Header[]): void;
    read(): Buffer | null;
  }
  interface Decompressor {
    write(data: Buffer): void;
    execute(): void;
    read(): Header | null;
  }
  const hpack: {
    compressor: { create(options: { table: { size: number } }): Compressor };
    decompressor: { create(options: { table: { size: number } }): Decompressor };
  };
  export default hpack;
  export type { Header, Compressor, Decompressor };
}
