;; Byte-pair candidate scan, 16 bytes at a time with WebAssembly SIMD (see pair-scan.ts).
;;
;; Finds every position p in [0, count) of the input where some class bit is set both in
;; first(in[p]) and in second(in[p + 1]). A class of bytes is looked up with two 16-byte tables
;; indexed by the low and the high nibble ("shufti"): class(b) = LO[b & 15] & HI[b >> 4], so a
;; class holds every byte whose low nibble is in its low set and high nibble in its high set: a
;; superset of what the caller asked for, never less (the caller checks each candidate).
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
    (local $f1 v128)
    (local $s1 v128)
    (local $f2 v128)
    (local $s2 v128)
    (local.set $low_nibble (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    (local.set $first_lo (v128.load (i32.const 0)))
    (local.set $first_hi (v128.load (i32.const 16)))
    (local.set $second_lo (v128.load (i32.const 32)))
    (local.set $second_hi (v128.load (i32.const 48)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $at (i32.add (local.get $in) (local.get $i)))
        ;; first block: classes of each byte as a first byte, and of the byte after it as a second
        (local.set $f1 (v128.load (local.get $at)))
        (local.set $f1
          (v128.and
            (i8x16.swizzle (local.get $first_lo) (v128.and (local.get $f1) (local.get $low_nibble)))
            (i8x16.swizzle (local.get $first_hi) (i8x16.shr_u (local.get $f1) (i32.const 4)))))
        (local.set $s1 (v128.load offset=1 (local.get $at)))
        (local.set $s1
          (v128.and
            (i8x16.swizzle (local.get $second_lo) (v128.and (local.get $s1) (local.get $low_nibble)))
            (i8x16.swizzle (local.get $second_hi) (i8x16.shr_u (local.get $s1) (i32.const 4)))))
        (local.set $f1 (v128.and (local.get $f1) (local.get $s1)))
        ;; second block
        (local.set $f2 (v128.load offset=16 (local.get $at)))
        (local.set $f2
          (v128.and
            (i8x16.swizzle (local.get $first_lo) (v128.and (local.get $f2) (local.get $low_nibble)))
            (i8x16.swizzle (local.get $first_hi) (i8x16.shr_u (local.get $f2) (i32.const 4)))))
        (local.set $s2 (v128.load offset=17 (local.get $at)))
        (local.set $s2
          (v128.and
            (i8x16.swizzle (local.get $second_lo) (v128.and (local.get $s2) (local.get $low_nibble)))
            (i8x16.swizzle (local.get $second_hi) (i8x16.shr_u (local.get $s2) (i32.const 4)))))
        (local.set $f2 (v128.and (local.get $f2) (local.get $s2)))
        (if (v128.any_true (v128.or (local.get $f1) (local.get $f2)))
          (then
            (local.set $found (call $record (local.get $f1) (local.get $i) (local.get $count) (local.get $out) (local.get $found)))
            (local.set $found (call $record (local.get $f2) (i32.add (local.get $i) (i32.const 16)) (local.get $count) (local.get $out) (local.get $found)))))
        (local.set $i (i32.add (local.get $i) (i32.const 32)))
        (br $blocks)))
    (local.get $found)))
