'use strict';
// upload-guard's drop-in for the `streamsearch` package that busboy searches multipart bodies with
// (wired in by the "overrides" of the project's package.json).
//
// Why: busboy finds every "\r\n--BOUNDARY" with streamsearch's Boyer-Moore-Horspool loop written in
// JavaScript, and on a big upload that loop was the largest single cost of the guard (a quarter of
// its main-thread time, six times what Buffer.indexOf takes for the same needle over the same
// bytes). This keeps streamsearch's interface and makes the same callbacks, in the same order, with
// the same ranges, for every needle busboy builds (test/unit/stream-search.test.ts checks that
// against streamsearch itself): the search over each chunk is Buffer.indexOf, and only the bytes
// around chunk boundaries are compared by hand.
//
// Callbacks, as streamsearch makes them: cb(isMatch, data, start, end, isDataSafe)
//   isMatch false: data[start, end) is not part of a match (data may be the lookbehind buffer,
//                  then isDataSafe is false: it is reused, copy what you keep)
//   isMatch true:  a match ends here; data[start, end) are the non-matching bytes just before it
//                  (data undefined when there are none to report)
//
// One addition: StreamSearch.declareAbsent(buffer, part) tells every search that `buffer` holds no
// complete occurrence of `part`. A search whose needle ends with `part` then skips its own search
// of that buffer (a match inside it would hold `part`): upload-guard's framing scan has just
// searched the same bytes for "--BOUNDARY", the end of busboy's needle, so the body is searched
// once instead of twice. Matches across buffer ends are found as always.
//
// Needles with a border (a proper prefix that is also a suffix, which needs needle[0] to occur
// again) are handled as the description above says; streamsearch 1.1.0 drops or garbles lookbehind
// bytes for some of them. busboy's needle "\r\n--" + boundary has none: a boundary cannot hold CR.

/** buffer -> bytes it holds no complete occurrence of (declareAbsent) */
const absent = new WeakMap();

class StreamSearch {
  constructor(needle, cb) {
    if (typeof cb !== 'function') throw new Error('Missing match callback');
    if (typeof needle === 'string') needle = Buffer.from(needle);
    else if (!Buffer.isBuffer(needle)) throw new Error(`Expected Buffer for needle, got ${typeof needle}`);
    this.maxMatches = Infinity;
    this.matches = 0;
    this._cb = cb;
    this._needle = needle;
    /** a needle prefix seen at the end of the previous chunk(s) */
    this._lookbehind = Buffer.allocUnsafe(needle.length);
    this._lookbehindSize = 0;
    this._bufPos = 0;
    /** the last declared-absent part found to end this needle (checked once per part) */
    this._absentTail = null;
  }

  /** Declares that `buffer` holds no complete occurrence of `part` (which may end a needle). */
  static declareAbsent(buffer, part) {
    absent.set(buffer, part);
  }

  reset() {
    this.matches = 0;
    this._lookbehindSize = 0;
    this._bufPos = 0;
  }

  push(chunk, pos) {
    if (!Buffer.isBuffer(chunk)) chunk = Buffer.from(chunk, 'latin1');
    const chunkLen = chunk.length;
    this._bufPos = pos || 0;
    let result;
    while (result !== chunkLen && this.matches < this.maxMatches) result = this._feed(chunk);
    return result;
  }

  destroy() {
    const size = this._lookbehindSize;
    if (size) this._cb(false, this._lookbehind, 0, size, false);
    this.reset();
  }

  /** Consumes data from _bufPos up to and including the next match, or to its end; returns where it stopped. */
  _feed(data) {
    const len = data.length;
    const needle = this._needle;
    const needleLen = needle.length;
    if (this._lookbehindSize > 0) {
      const lbSize = this._lookbehindSize;
      const lookbehind = this._lookbehind;
      // a match that starts in the lookbehind and ends in data
      for (let at = -lbSize; at < 0 && at <= len - needleLen; ++at) {
        if (!this._matchesAcross(data, at, needleLen)) continue;
        this._lookbehindSize = 0;
        ++this.matches;
        if (at > -lbSize) this._cb(true, lookbehind, 0, lbSize + at, false);
        else this._cb(true, undefined, 0, 0, true);
        return (this._bufPos = at + needleLen);
      }
      // data too short to decide: keep the part of lookbehind + data that may still start a match
      for (let at = Math.max(-lbSize, len - needleLen + 1); at < 0; ++at) {
        if (!this._matchesAcross(data, at, len - at)) continue;
        const cut = lbSize + at;
        if (cut > 0) {
          this._cb(false, lookbehind, 0, cut, false);
          lookbehind.copyWithin(0, cut, lbSize);
        }
        lookbehind.set(data, lbSize - cut);
        this._lookbehindSize = lbSize - cut + len;
        this._bufPos = len;
        return len;
      }
      this._cb(false, lookbehind, 0, lbSize, false);
      this._lookbehindSize = 0;
    }

    const from = this._bufPos;
    const at = this._absentIn(data) ? -1 : data.indexOf(needle, from);
    if (at !== -1) {
      ++this.matches;
      if (at > 0) this._cb(true, data, from, at, true);
      else this._cb(true, undefined, 0, 0, true);
      return (this._bufPos = at + needleLen);
    }
    // no match: the first tail of data that is a needle prefix waits for the next chunk
    let keep = len;
    const first = needle[0];
    for (let p = Math.max(from, len - needleLen + 1); p < len; ++p) {
      if (data[p] === first && needle.compare(data, p, len, 0, len - p) === 0) {
        keep = p;
        break;
      }
    }
    if (keep < len) {
      data.copy(this._lookbehind, 0, keep, len);
      this._lookbehindSize = len - keep;
    }
    if (keep > 0) this._cb(false, data, from, keep, true);
    this._bufPos = len;
    return len;
  }

  /** Whether data was declared to hold no complete occurrence of a part that ends the needle. */
  _absentIn(data) {
    const part = absent.get(data);
    if (part === undefined) return false;
    if (part === this._absentTail) return true;
    const needle = this._needle;
    const endsNeedle = part.length > 0 && part.length <= needle.length && needle.compare(part, 0, part.length, needle.length - part.length) === 0;
    if (endsNeedle) this._absentTail = part;
    return endsNeedle;
  }

  /** Whether the needle's first `count` bytes equal lookbehind + data from `at` (negative: in the lookbehind). */
  _matchesAcross(data, at, count) {
    const needle = this._needle;
    const lookbehind = this._lookbehind;
    const lbSize = this._lookbehindSize;
    for (let i = 0; i < count; ++i, ++at) {
      if ((at < 0 ? lookbehind[lbSize + at] : data[at]) !== needle[i]) return false;
    }
    return true;
  }
}

module.exports = StreamSearch;
