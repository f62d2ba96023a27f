;; Byte-pair candidate scan, 16 bytes at a time with WebAssembly SIMD (see pair-scan.ts).
;;
;; Finds every position p in [0, count) of the input where some class bit is set both in
;; first(in[p]) and in second(in[p + 1]). A class of bytes is looked up with two 16-byte tables
;; indexed by the low and the high nibble ("shufti"): class(b) = LO[b & 15] & HI[b >> 4], so a
;; class holds every byte whose low nibble is in its low set and high nibble in its high set: a
;; superset of what the caller asked for, never less (the caller checks each candidate).
;;
;; Each byte is classified once, as a first and as a second byte; the second-byte classes of
;; in[p + 1] line up with position p by shifting the class vectors one lane (i8x16.shuffle across
;; two blocks), rather than loading and classifying every block again at offset 1.
;; SWIZZLE stands for i8x16.swizzle, or i8x16.relaxed_swizzle in the variant scripts/gen-wasm.ts
;; writes for runtimes with relaxed SIMD (Node 24): the two agree on indices below 16, which are
;; the only ones used here (a nibble), and the relaxed one skips the range fix-up.
;;
;; Memory (laid out by pair-scan.ts):
;;   0..63      the four tables: first LO, first HI, second LO, second HI
;;   $in..      the input, followed by at least 48 bytes of readable padding
;;   $out..     one i32 per candidate position, room for `count` of them
;;
;; Regenerate pair-scan-wasm.ts after editing: npm run gen:wasm (a unit test checks it is current).

(module
  (memory (export "memory") 1)

  ;; Writes the candidate positions among in[at .. at + 16) to $out from index $found; returns the new count.
  (func $record (param $hits v128) (param $at i32) (param $count i32) (param $out i32) (param $found i32) (result i32)
    (local $mask i32)
    (local $p i32)
    (local.set $mask (i8x16.bitmask (i8x16.ne (local.get $hits) (v128.const i32x4 0 0 0 0))))
    (block $no_more
      (loop $bits
        (br_if $no_more (i32.eqz (local.get $mask)))
        (local.set $p (i32.add (local.get $at) (i32.ctz (local.get $mask))))
        ;; the last block reads past `count`: those positions are padding
        (br_if $no_more (i32.ge_u (local.get $p) (local.get $count)))
        (i32.store (i32.add (local.get $out) (i32.shl (local.get $found) (i32.const 2))) (local.get $p))
        (local.set $found (i32.add (local.get $found) (i32.const 1)))
        (local.set $mask (i32.and (local.get $mask) (i32.sub (local.get $mask) (i32.const 1))))
        (br $bits)))
    (local.get $found))

  ;; Returns how many candidate positions were written to $out, in ascending order. Two blocks
  ;; (32 positions) per step: candidates are rare, so one test usually covers both. The class
  ;; lookups are written out in place (V8 does not inline calls taking v128 arguments).
  (func (export "scan") (param $in i32) (param $count i32) (param $out i32) (result i32)
    (local $i i32)
    (local $found i32)
    (local $at i32)
    (local $low_nibble v128)
    (local $first_lo v128)
    (local $first_hi v128)
    (local $second_lo v128)
    (local $second_hi v128)
    (local $v v128)
    (local $lo v128)
    (local $hi v128)
    ;; classes of the block at $i (f0: as first bytes, s0: as second bytes) and of the two after it
    (local $f0 v128)
    (local $s0 v128)
    (local $f1 v128)
    (local $s1 v128)
    (local $f2 v128)
    (local $s2 v128)
    (local $hits0 v128)
    (local $hits1 v128)
    (local.set $low_nibble (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    (local.set $first_lo (v128.load (i32.const 0)))
    (local.set $first_hi (v128.load (i32.const 16)))
    (local.set $second_lo (v128.load (i32.const 32)))
    (local.set $second_hi (v128.load (i32.const 48)))
    (local.set $v (v128.load (local.get $in)))
    (local.set $lo (v128.and (local.get $v) (local.get $low_nibble)))
    (local.set $hi (i8x16.shr_u (local.get $v) (i32.const 4)))
    (local.set $f0 (v128.and (SWIZZLE (local.get $first_lo) (local.get $lo)) (SWIZZLE (local.get $first_hi) (local.get $hi))))
    (local.set $s0 (v128.and (SWIZZLE (local.get $second_lo) (local.get $lo)) (SWIZZLE (local.get $second_hi) (local.get $hi))))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $at (i32.add (local.get $in) (local.get $i)))
        (local.set $v (v128.load offset=16 (local.get $at)))
        (local.set $lo (v128.and (local.get $v) (local.get $low_nibble)))
        (local.set $hi (i8x16.shr_u (local.get $v) (i32.const 4)))
        (local.set $f1 (v128.and (SWIZZLE (local.get $first_lo) (local.get $lo)) (SWIZZLE (local.get $first_hi) (local.get $hi))))
        (local.set $s1 (v128.and (SWIZZLE (local.get $second_lo) (local.get $lo)) (SWIZZLE (local.get $second_hi) (local.get $hi))))
        (local.set $v (v128.load offset=32 (local.get $at)))
        (local.set $lo (v128.and (local.get $v) (local.get $low_nibble)))
        (local.set $hi (i8x16.shr_u (local.get $v) (i32.const 4)))
        (local.set $f2 (v128.and (SWIZZLE (local.get $first_lo) (local.get $lo)) (SWIZZLE (local.get $first_hi) (local.get $hi))))
        (local.set $s2 (v128.and (SWIZZLE (local.get $second_lo) (local.get $lo)) (SWIZZLE (local.get $second_hi) (local.get $hi))))
        ;; position p pairs first(in[p]) with second(in[p + 1]): the second classes one lane on
        (local.set $hits0 (v128.and (local.get $f0)
          (i8x16.shuffle 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 (local.get $s0) (local.get $s1))))
        (local.set $hits1 (v128.and (local.get $f1)
          (i8x16.shuffle 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 (local.get $s1) (local.get $s2))))
        (if (v128.any_true (v128.or (local.get $hits0) (local.get $hits1)))
          (then
            (local.set $found (call $record (local.get $hits0) (local.get $i) (local.get $count) (local.get $out) (local.get $found)))
            (local.set $found (call $record (local.get $hits1) (i32.add (local.get $i) (i32.const 16)) (local.get $count) (local.get $out) (local.get $found)))))
        (local.set $f0 (local.get $f2))
        (local.set $s0 (local.get $s2))
        (local.set $i (i32.add (local.get $i) (i32.const 32)))
        (br $blocks)))
    (local.get $found)))
