// vendor/streamsearch (busboy's boundary search, see its header): the part the guard calls.
declare module 'streamsearch' {
  export default class StreamSearch {
    /** Declares that `buffer` holds no complete occurrence of `part`: searches whose needle ends with it skip the buffer. */
    static declareAbsent(buffer: Uint8Array, part: Uint8Array): void;
  }
}
