// The part of the WebAssembly JS API that pair-scan.ts uses: Node has it as a global, but the
// ES2023 lib and @types/node 20 do not declare it (it lives in TypeScript's DOM lib).
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports: object);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
}
