// Types for the parts of fuse-native 2.2.6 that the adapter uses. The package ships none.
declare module 'fuse-native' {
  type Callback = (result: number, ...values: unknown[]) => void;

  interface FuseOptions {
    force?: boolean;
    mkdir?: boolean;
    timeout?: number | false;
    debug?: boolean;
    allowOther?: boolean;
    defaultPermissions?: boolean;
    autoUnmount?: boolean;
    autoCache?: boolean;
    kernelCache?: boolean;
    fsname?: string;
    subtype?: string;
    attrTimeout?: number;
    entryTimeout?: number;
    maxRead?: number;
  }

  class Fuse {
    constructor(mountpoint: string, ops: Record<string, (...args: never[]) => void>, options?: FuseOptions);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mountpoint: string, cb: (err: Error | null) => void): void;
    _fuseOptions(): string;
  }

  export default Fuse;
  export type { Callback, FuseOptions };
}
