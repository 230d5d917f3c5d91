;; SIMD kernels of the diff statistics (see ../kernels/diffSimd.ts): over a run of elements, the
;; sums Σd², Σa², Σb², Σab, Σ|d|, max |d| and the count of d = 0, where d = b − a (or the stored Δ).
;;
;; Precision (the bound is derived once, in ../diffBound.ts): each term is formed in float32 (d =
;; b − a or B = A + Δ rounded once, one product rounded once). A half-step takes 8 elements, 2 per
;; lane; each lane adds its 2 terms (1 addition) and that into the block's lane sum, so over a
;; block of 128 elements (8 loop steps of two half-steps) a term passes through at most 1 + 15 =
;; 16 float32 additions. The block's lane sums are then widened and added in float64. Σab is not
;; summed: it is (Σa² + Σb² − Σd²)/2 in float64 at the end of each call (one block of the caller),
;; which diffBound.ts explains. The maximum is that of the float32 |d| (one rounding of the exact
;; value); the count of d = 0 is exact (a float32 difference is 0 only when a = b). NaN/±Inf, and
;; finite inputs whose float32 terms overflow, make a sum non-finite; the caller then redoes that
;; block in float64, element by element. Pointers are byte offsets into the exported memory. The
;; block kernels write 7 float64 at `out` (the count as a float64); the exported `run` drives them
;; block by block (one call from JavaScript per task piece, not one per block). n must be a
;; multiple of 16 and below 2³⁰.
;; Assembled into generated/diffStatsWasm.ts by scripts/build-wasm.mjs (run by npm run build).
(module
  (memory (export "memory") 1)

  ;; Δ = B − A; a and b are float32.
  (func $ab_f32 (param $a i32) (param $b i32) (param $n i32) (param $out i32)
    (local $i i32) (local $end i32) (local $x0 v128) (local $x1 v128) (local $y0 v128) (local $y1 v128) (local $d0 v128) (local $d1 v128) (local $sd2 v128) (local $sa2 v128) (local $sb2 v128) (local $sad v128) (local $mx v128) (local $z v128) (local $zero v128) (local $D2 v128) (local $A2 v128) (local $B2 v128) (local $AD v128)
    (local.set $n (i32.mul (local.get $n) (i32.const 4)))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        ;; a block ends after 128 elements or at n
        (local.set $end (select (local.get $n) (i32.add (local.get $i) (i32.const 512)) (i32.lt_u (i32.sub (local.get $n) (local.get $i)) (i32.const 512))))
        (loop $step
          (local.set $x0 (v128.load (i32.add (local.get $a) (local.get $i))))
          (local.set $x1 (v128.load offset=16 (i32.add (local.get $a) (local.get $i))))
          (local.set $y0 (v128.load (i32.add (local.get $b) (local.get $i))))
          (local.set $y1 (v128.load offset=16 (i32.add (local.get $b) (local.get $i))))
          (local.set $d0 (f32x4.sub (local.get $y0) (local.get $x0)))
          (local.set $d1 (f32x4.sub (local.get $y1) (local.get $x1)))
          (local.set $sd2 (f32x4.add (local.get $sd2) (f32x4.add (f32x4.mul (local.get $d0) (local.get $d0)) (f32x4.mul (local.get $d1) (local.get $d1)))))
          (local.set $sa2 (f32x4.add (local.get $sa2) (f32x4.add (f32x4.mul (local.get $x0) (local.get $x0)) (f32x4.mul (local.get $x1) (local.get $x1)))))
          (local.set $sb2 (f32x4.add (local.get $sb2) (f32x4.add (f32x4.mul (local.get $y0) (local.get $y0)) (f32x4.mul (local.get $y1) (local.get $y1)))))
          (local.set $z (i32x4.sub (local.get $z) (i32x4.add (f32x4.eq (local.get $d0) (local.get $zero)) (f32x4.eq (local.get $d1) (local.get $zero)))))
          (local.set $d0 (f32x4.abs (local.get $d0)))
          (local.set $d1 (f32x4.abs (local.get $d1)))
          (local.set $sad (f32x4.add (local.get $sad) (f32x4.add (local.get $d0) (local.get $d1))))
          ;; pmax is one instruction; a NaN that it would drop makes the sums NaN anyway
          (local.set $mx (f32x4.pmax (local.get $mx) (f32x4.pmax (local.get $d0) (local.get $d1))))
          (local.set $x0 (v128.load offset=32 (i32.add (local.get $a) (local.get $i))))
          (local.set $x1 (v128.load offset=48 (i32.add (local.get $a) (local.get $i))))
          (local.set $y0 (v128.load offset=32 (i32.add (local.get $b) (local.get $i))))
          (local.set $y1 (v128.load offset=48 (i32.add (local.get $b) (local.get $i))))
          (local.set $d0 (f32x4.sub (local.get $y0) (local.get $x0)))
          (local.set $d1 (f32x4.sub (local.get $y1) (local.get $x1)))
          (local.set $sd2 (f32x4.add (local.get $sd2) (f32x4.add (f32x4.mul (local.get $d0) (local.get $d0)) (f32x4.mul (local.get $d1) (local.get $d1)))))
          (local.set $sa2 (f32x4.add (local.get $sa2) (f32x4.add (f32x4.mul (local.get $x0) (local.get $x0)) (f32x4.mul (local.get $x1) (local.get $x1)))))
          (local.set $sb2 (f32x4.add (local.get $sb2) (f32x4.add (f32x4.mul (local.get $y0) (local.get $y0)) (f32x4.mul (local.get $y1) (local.get $y1)))))
          (local.set $z (i32x4.sub (local.get $z) (i32x4.add (f32x4.eq (local.get $d0) (local.get $zero)) (f32x4.eq (local.get $d1) (local.get $zero)))))
          (local.set $d0 (f32x4.abs (local.get $d0)))
          (local.set $d1 (f32x4.abs (local.get $d1)))
          (local.set $sad (f32x4.add (local.get $sad) (f32x4.add (local.get $d0) (local.get $d1))))
          ;; pmax is one instruction; a NaN that it would drop makes the sums NaN anyway
          (local.set $mx (f32x4.pmax (local.get $mx) (f32x4.pmax (local.get $d0) (local.get $d1))))
          (local.set $i (i32.add (local.get $i) (i32.const 64)))
          (br_if $step (i32.lt_u (local.get $i) (local.get $end))))
        ;; the block's float32 lane sums, widened and added in float64
        (local.set $D2 (f64x2.add (local.get $D2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sd2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sd2) (local.get $sd2))))))
        (local.set $sd2 (v128.const i64x2 0 0))
        (local.set $A2 (f64x2.add (local.get $A2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sa2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sa2) (local.get $sa2))))))
        (local.set $sa2 (v128.const i64x2 0 0))
        (local.set $B2 (f64x2.add (local.get $B2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sb2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sb2) (local.get $sb2))))))
        (local.set $sb2 (v128.const i64x2 0 0))
        (local.set $AD (f64x2.add (local.get $AD) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sad)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sad) (local.get $sad))))))
        (local.set $sad (v128.const i64x2 0 0))
        (br $block)))
    (f64.store offset=0 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $D2)) (f64x2.extract_lane 1 (local.get $D2))))
    (f64.store offset=8 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $A2)) (f64x2.extract_lane 1 (local.get $A2))))
    (f64.store offset=16 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $B2)) (f64x2.extract_lane 1 (local.get $B2))))
    ;; Σab = (Σa² + Σb² − Σd²) / 2, in float64 (see the header)
    (f64.store offset=24 (local.get $out) (f64.mul (f64.sub (f64.add (f64.load offset=8 (local.get $out)) (f64.load offset=16 (local.get $out))) (f64.load offset=0 (local.get $out))) (f64.const 0.5)))
    (f64.store offset=32 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $AD)) (f64x2.extract_lane 1 (local.get $AD))))
    (f64.store offset=40 (local.get $out) (f64.promote_f32 (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mx)) (f32x4.extract_lane 1 (local.get $mx))) (f32.max (f32x4.extract_lane 2 (local.get $mx)) (f32x4.extract_lane 3 (local.get $mx))))))
    (f64.store offset=48 (local.get $out) (f64.convert_i32_u (i32.add (i32.add (i32x4.extract_lane 0 (local.get $z)) (i32x4.extract_lane 1 (local.get $z))) (i32.add (i32x4.extract_lane 2 (local.get $z)) (i32x4.extract_lane 3 (local.get $z)))))))

  ;; B = A + Δ with Δ stored; a and d are float32.
  (func $delta_f32 (param $a i32) (param $b i32) (param $n i32) (param $out i32)
    (local $i i32) (local $end i32) (local $x0 v128) (local $x1 v128) (local $y0 v128) (local $y1 v128) (local $d0 v128) (local $d1 v128) (local $sd2 v128) (local $sa2 v128) (local $sb2 v128) (local $sad v128) (local $mx v128) (local $z v128) (local $zero v128) (local $D2 v128) (local $A2 v128) (local $B2 v128) (local $AD v128)
    (local.set $n (i32.mul (local.get $n) (i32.const 4)))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        ;; a block ends after 128 elements or at n
        (local.set $end (select (local.get $n) (i32.add (local.get $i) (i32.const 512)) (i32.lt_u (i32.sub (local.get $n) (local.get $i)) (i32.const 512))))
        (loop $step
          (local.set $x0 (v128.load (i32.add (local.get $a) (local.get $i))))
          (local.set $x1 (v128.load offset=16 (i32.add (local.get $a) (local.get $i))))
          (local.set $d0 (v128.load (i32.add (local.get $b) (local.get $i))))
          (local.set $d1 (v128.load offset=16 (i32.add (local.get $b) (local.get $i))))
          (local.set $y0 (f32x4.add (local.get $x0) (local.get $d0)))
          (local.set $y1 (f32x4.add (local.get $x1) (local.get $d1)))
          (local.set $sd2 (f32x4.add (local.get $sd2) (f32x4.add (f32x4.mul (local.get $d0) (local.get $d0)) (f32x4.mul (local.get $d1) (local.get $d1)))))
          (local.set $sa2 (f32x4.add (local.get $sa2) (f32x4.add (f32x4.mul (local.get $x0) (local.get $x0)) (f32x4.mul (local.get $x1) (local.get $x1)))))
          (local.set $sb2 (f32x4.add (local.get $sb2) (f32x4.add (f32x4.mul (local.get $y0) (local.get $y0)) (f32x4.mul (local.get $y1) (local.get $y1)))))
          (local.set $z (i32x4.sub (local.get $z) (i32x4.add (f32x4.eq (local.get $d0) (local.get $zero)) (f32x4.eq (local.get $d1) (local.get $zero)))))
          (local.set $d0 (f32x4.abs (local.get $d0)))
          (local.set $d1 (f32x4.abs (local.get $d1)))
          (local.set $sad (f32x4.add (local.get $sad) (f32x4.add (local.get $d0) (local.get $d1))))
          ;; pmax is one instruction; a NaN that it would drop makes the sums NaN anyway
          (local.set $mx (f32x4.pmax (local.get $mx) (f32x4.pmax (local.get $d0) (local.get $d1))))
          (local.set $x0 (v128.load offset=32 (i32.add (local.get $a) (local.get $i))))
          (local.set $x1 (v128.load offset=48 (i32.add (local.get $a) (local.get $i))))
          (local.set $d0 (v128.load offset=32 (i32.add (local.get $b) (local.get $i))))
          (local.set $d1 (v128.load offset=48 (i32.add (local.get $b) (local.get $i))))
          (local.set $y0 (f32x4.add (local.get $x0) (local.get $d0)))
          (local.set $y1 (f32x4.add (local.get $x1) (local.get $d1)))
          (local.set $sd2 (f32x4.add (local.get $sd2) (f32x4.add (f32x4.mul (local.get $d0) (local.get $d0)) (f32x4.mul (local.get $d1) (local.get $d1)))))
          (local.set $sa2 (f32x4.add (local.get $sa2) (f32x4.add (f32x4.mul (local.get $x0) (local.get $x0)) (f32x4.mul (local.get $x1) (local.get $x1)))))
          (local.set $sb2 (f32x4.add (local.get $sb2) (f32x4.add (f32x4.mul (local.get $y0) (local.get $y0)) (f32x4.mul (local.get $y1) (local.get $y1)))))
          (local.set $z (i32x4.sub (local.get $z) (i32x4.add (f32x4.eq (local.get $d0) (local.get $zero)) (f32x4.eq (local.get $d1) (local.get $zero)))))
          (local.set $d0 (f32x4.abs (local.get $d0)))
          (local.set $d1 (f32x4.abs (local.get $d1)))
          (local.set $sad (f32x4.add (local.get $sad) (f32x4.add (local.get $d0) (local.get $d1))))
          ;; pmax is one instruction; a NaN that it would drop makes the sums NaN anyway
          (local.set $mx (f32x4.pmax (local.get $mx) (f32x4.pmax (local.get $d0) (local.get $d1))))
          (local.set $i (i32.add (local.get $i) (i32.const 64)))
          (br_if $step (i32.lt_u (local.get $i) (local.get $end))))
        ;; the block's float32 lane sums, widened and added in float64
        (local.set $D2 (f64x2.add (local.get $D2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sd2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sd2) (local.get $sd2))))))
        (local.set $sd2 (v128.const i64x2 0 0))
        (local.set $A2 (f64x2.add (local.get $A2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sa2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sa2) (local.get $sa2))))))
        (local.set $sa2 (v128.const i64x2 0 0))
        (local.set $B2 (f64x2.add (local.get $B2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sb2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sb2) (local.get $sb2))))))
        (local.set $sb2 (v128.const i64x2 0 0))
        (local.set $AD (f64x2.add (local.get $AD) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sad)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sad) (local.get $sad))))))
        (local.set $sad (v128.const i64x2 0 0))
        (br $block)))
    (f64.store offset=0 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $D2)) (f64x2.extract_lane 1 (local.get $D2))))
    (f64.store offset=8 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $A2)) (f64x2.extract_lane 1 (local.get $A2))))
    (f64.store offset=16 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $B2)) (f64x2.extract_lane 1 (local.get $B2))))
    ;; Σab = (Σa² + Σb² − Σd²) / 2, in float64 (see the header)
    (f64.store offset=24 (local.get $out) (f64.mul (f64.sub (f64.add (f64.load offset=8 (local.get $out)) (f64.load offset=16 (local.get $out))) (f64.load offset=0 (local.get $out))) (f64.const 0.5)))
    (f64.store offset=32 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $AD)) (f64x2.extract_lane 1 (local.get $AD))))
    (f64.store offset=40 (local.get $out) (f64.promote_f32 (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mx)) (f32x4.extract_lane 1 (local.get $mx))) (f32.max (f32x4.extract_lane 2 (local.get $mx)) (f32x4.extract_lane 3 (local.get $mx))))))
    (f64.store offset=48 (local.get $out) (f64.convert_i32_u (i32.add (i32.add (i32x4.extract_lane 0 (local.get $z)) (i32x4.extract_lane 1 (local.get $z))) (i32.add (i32x4.extract_lane 2 (local.get $z)) (i32x4.extract_lane 3 (local.get $z)))))))

  ;; Δ = B − A with A and B bfloat16 (the upper half of a float32): read in place, no float32
  ;; copy in memory. Sums do not depend on the order of the elements within a half-step.
  (func $ab_bf16 (param $a i32) (param $b i32) (param $n i32) (param $out i32)
    (local $i i32) (local $end i32) (local $x0 v128) (local $x1 v128) (local $y0 v128) (local $y1 v128) (local $d0 v128) (local $d1 v128) (local $sd2 v128) (local $sa2 v128) (local $sb2 v128) (local $sad v128) (local $mx v128) (local $z v128) (local $zero v128) (local $D2 v128) (local $A2 v128) (local $B2 v128) (local $AD v128) (local $ra v128) (local $rb v128)
    (local.set $n (i32.mul (local.get $n) (i32.const 2)))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        ;; a block ends after 128 elements or at n
        (local.set $end (select (local.get $n) (i32.add (local.get $i) (i32.const 256)) (i32.lt_u (i32.sub (local.get $n) (local.get $i)) (i32.const 256))))
        (loop $step
          (local.set $ra (v128.load (i32.add (local.get $a) (local.get $i))))
          (local.set $rb (v128.load (i32.add (local.get $b) (local.get $i))))
          ;; element 2k is the low half of 32-bit lane k, element 2k+1 the high half: as float32 bits,
          ;; the low half shifted up and the high half with the low bits cleared
          (local.set $x0 (i32x4.shl (local.get $ra) (i32.const 16)))
          (local.set $x1 (v128.and (local.get $ra) (v128.const i32x4 0xffff0000 0xffff0000 0xffff0000 0xffff0000)))
          (local.set $y0 (i32x4.shl (local.get $rb) (i32.const 16)))
          (local.set $y1 (v128.and (local.get $rb) (v128.const i32x4 0xffff0000 0xffff0000 0xffff0000 0xffff0000)))
          (local.set $d0 (f32x4.sub (local.get $y0) (local.get $x0)))
          (local.set $d1 (f32x4.sub (local.get $y1) (local.get $x1)))
          (local.set $sd2 (f32x4.add (local.get $sd2) (f32x4.add (f32x4.mul (local.get $d0) (local.get $d0)) (f32x4.mul (local.get $d1) (local.get $d1)))))
          (local.set $sa2 (f32x4.add (local.get $sa2) (f32x4.add (f32x4.mul (local.get $x0) (local.get $x0)) (f32x4.mul (local.get $x1) (local.get $x1)))))
          (local.set $sb2 (f32x4.add (local.get $sb2) (f32x4.add (f32x4.mul (local.get $y0) (local.get $y0)) (f32x4.mul (local.get $y1) (local.get $y1)))))
          (local.set $z (i32x4.sub (local.get $z) (i32x4.add (f32x4.eq (local.get $d0) (local.get $zero)) (f32x4.eq (local.get $d1) (local.get $zero)))))
          (local.set $d0 (f32x4.abs (local.get $d0)))
          (local.set $d1 (f32x4.abs (local.get $d1)))
          (local.set $sad (f32x4.add (local.get $sad) (f32x4.add (local.get $d0) (local.get $d1))))
          ;; pmax is one instruction; a NaN that it would drop makes the sums NaN anyway
          (local.set $mx (f32x4.pmax (local.get $mx) (f32x4.pmax (local.get $d0) (local.get $d1))))
          (local.set $ra (v128.load offset=16 (i32.add (local.get $a) (local.get $i))))
          (local.set $rb (v128.load offset=16 (i32.add (local.get $b) (local.get $i))))
          ;; element 2k is the low half of 32-bit lane k, element 2k+1 the high half: as float32 bits,
          ;; the low half shifted up and the high half with the low bits cleared
          (local.set $x0 (i32x4.shl (local.get $ra) (i32.const 16)))
          (local.set $x1 (v128.and (local.get $ra) (v128.const i32x4 0xffff0000 0xffff0000 0xffff0000 0xffff0000)))
          (local.set $y0 (i32x4.shl (local.get $rb) (i32.const 16)))
          (local.set $y1 (v128.and (local.get $rb) (v128.const i32x4 0xffff0000 0xffff0000 0xffff0000 0xffff0000)))
          (local.set $d0 (f32x4.sub (local.get $y0) (local.get $x0)))
          (local.set $d1 (f32x4.sub (local.get $y1) (local.get $x1)))
          (local.set $sd2 (f32x4.add (local.get $sd2) (f32x4.add (f32x4.mul (local.get $d0) (local.get $d0)) (f32x4.mul (local.get $d1) (local.get $d1)))))
          (local.set $sa2 (f32x4.add (local.get $sa2) (f32x4.add (f32x4.mul (local.get $x0) (local.get $x0)) (f32x4.mul (local.get $x1) (local.get $x1)))))
          (local.set $sb2 (f32x4.add (local.get $sb2) (f32x4.add (f32x4.mul (local.get $y0) (local.get $y0)) (f32x4.mul (local.get $y1) (local.get $y1)))))
          (local.set $z (i32x4.sub (local.get $z) (i32x4.add (f32x4.eq (local.get $d0) (local.get $zero)) (f32x4.eq (local.get $d1) (local.get $zero)))))
          (local.set $d0 (f32x4.abs (local.get $d0)))
          (local.set $d1 (f32x4.abs (local.get $d1)))
          (local.set $sad (f32x4.add (local.get $sad) (f32x4.add (local.get $d0) (local.get $d1))))
          ;; pmax is one instruction; a NaN that it would drop makes the sums NaN anyway
          (local.set $mx (f32x4.pmax (local.get $mx) (f32x4.pmax (local.get $d0) (local.get $d1))))
          (local.set $i (i32.add (local.get $i) (i32.const 32)))
          (br_if $step (i32.lt_u (local.get $i) (local.get $end))))
        ;; the block's float32 lane sums, widened and added in float64
        (local.set $D2 (f64x2.add (local.get $D2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sd2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sd2) (local.get $sd2))))))
        (local.set $sd2 (v128.const i64x2 0 0))
        (local.set $A2 (f64x2.add (local.get $A2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sa2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sa2) (local.get $sa2))))))
        (local.set $sa2 (v128.const i64x2 0 0))
        (local.set $B2 (f64x2.add (local.get $B2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sb2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sb2) (local.get $sb2))))))
        (local.set $sb2 (v128.const i64x2 0 0))
        (local.set $AD (f64x2.add (local.get $AD) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sad)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sad) (local.get $sad))))))
        (local.set $sad (v128.const i64x2 0 0))
        (br $block)))
    (f64.store offset=0 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $D2)) (f64x2.extract_lane 1 (local.get $D2))))
    (f64.store offset=8 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $A2)) (f64x2.extract_lane 1 (local.get $A2))))
    (f64.store offset=16 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $B2)) (f64x2.extract_lane 1 (local.get $B2))))
    ;; Σab = (Σa² + Σb² − Σd²) / 2, in float64 (see the header)
    (f64.store offset=24 (local.get $out) (f64.mul (f64.sub (f64.add (f64.load offset=8 (local.get $out)) (f64.load offset=16 (local.get $out))) (f64.load offset=0 (local.get $out))) (f64.const 0.5)))
    (f64.store offset=32 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $AD)) (f64x2.extract_lane 1 (local.get $AD))))
    (f64.store offset=40 (local.get $out) (f64.promote_f32 (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mx)) (f32x4.extract_lane 1 (local.get $mx))) (f32.max (f32x4.extract_lane 2 (local.get $mx)) (f32x4.extract_lane 3 (local.get $mx))))))
    (f64.store offset=48 (local.get $out) (f64.convert_i32_u (i32.add (i32.add (i32x4.extract_lane 0 (local.get $z)) (i32x4.extract_lane 1 (local.get $z))) (i32.add (i32x4.extract_lane 2 (local.get $z)) (i32x4.extract_lane 3 (local.get $z)))))))

  ;; Runs a kernel block by block over n elements (a multiple of 16): blocks of 4096 elements (the
  ;; JavaScript reference's DIFF_BLOCK) from the first, the last one shorter. Each block's sums go
  ;; to the 7 float64 at `out` + 64 and, when Σd² + Σa² + Σb² + Σab + Σ|d| (added in that order) is
  ;; finite, are added into the running results at `out`: Σd², Σa², Σb², Σab, Σ|d|, max |d|, count
  ;; of d ≠ 0, in the order and float64 operations of the reference's driveBlocks, so the results
  ;; are the same bits as calling the kernel per block from JavaScript. A block whose sums are not
  ;; finite (NaN/±Inf inside, or float32 terms that overflow) stops the run: the result is the
  ;; element index where that block starts (the caller sums it carefully and runs on from the next
  ;; block), or n when every block was added. $kind: 0 ab_f32, 1 delta_f32, 2 ab_bf16 (A and B of 2
  ;; bytes per element, else 4).
  (func (export "run") (param $kind i32) (param $a i32) (param $b i32) (param $n i32) (param $out i32) (result i32)
    (local $i i32) (local $len i32) (local $blk i32) (local $fin f64)
    (local $d2 f64) (local $a2 f64) (local $b2 f64) (local $ab f64) (local $ad f64) (local $mx f64) (local $ch f64)
    (local.set $blk (i32.add (local.get $out) (i32.const 64)))
    (local.set $d2 (f64.load offset=0 (local.get $out)))
    (local.set $a2 (f64.load offset=8 (local.get $out)))
    (local.set $b2 (f64.load offset=16 (local.get $out)))
    (local.set $ab (f64.load offset=24 (local.get $out)))
    (local.set $ad (f64.load offset=32 (local.get $out)))
    (local.set $mx (f64.load offset=40 (local.get $out)))
    (local.set $ch (f64.load offset=48 (local.get $out)))
    (block $stop
      (loop $blocks
        (br_if $stop (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $len (select (i32.const 4096) (i32.sub (local.get $n) (local.get $i)) (i32.lt_u (i32.const 4096) (i32.sub (local.get $n) (local.get $i)))))
        (block $called
          (if (i32.eqz (local.get $kind)) (then (call $ab_f32 (i32.add (local.get $a) (i32.mul (local.get $i) (i32.const 4))) (i32.add (local.get $b) (i32.mul (local.get $i) (i32.const 4))) (local.get $len) (local.get $blk)) (br $called)))
          (if (i32.eq (local.get $kind) (i32.const 1)) (then (call $delta_f32 (i32.add (local.get $a) (i32.mul (local.get $i) (i32.const 4))) (i32.add (local.get $b) (i32.mul (local.get $i) (i32.const 4))) (local.get $len) (local.get $blk)) (br $called)))
          (call $ab_bf16 (i32.add (local.get $a) (i32.mul (local.get $i) (i32.const 2))) (i32.add (local.get $b) (i32.mul (local.get $i) (i32.const 2))) (local.get $len) (local.get $blk)))
        (local.set $fin (f64.add (f64.add (f64.add (f64.add (f64.load offset=0 (local.get $blk)) (f64.load offset=8 (local.get $blk))) (f64.load offset=16 (local.get $blk))) (f64.load offset=24 (local.get $blk))) (f64.load offset=32 (local.get $blk))))
        ;; x − x is 0 exactly when x is finite
        (br_if $stop (f64.ne (f64.sub (local.get $fin) (local.get $fin)) (f64.const 0)))
        (local.set $d2 (f64.add (local.get $d2) (f64.load offset=0 (local.get $blk))))
        (local.set $a2 (f64.add (local.get $a2) (f64.load offset=8 (local.get $blk))))
        (local.set $b2 (f64.add (local.get $b2) (f64.load offset=16 (local.get $blk))))
        (local.set $ab (f64.add (local.get $ab) (f64.load offset=24 (local.get $blk))))
        (local.set $ad (f64.add (local.get $ad) (f64.load offset=32 (local.get $blk))))
        (local.set $mx (select (f64.load offset=40 (local.get $blk)) (local.get $mx) (f64.gt (f64.load offset=40 (local.get $blk)) (local.get $mx))))
        (local.set $ch (f64.add (local.get $ch) (f64.sub (f64.convert_i32_u (local.get $len)) (f64.load offset=48 (local.get $blk)))))
        (local.set $i (i32.add (local.get $i) (local.get $len)))
        (br $blocks)))
    (f64.store offset=0 (local.get $out) (local.get $d2))
    (f64.store offset=8 (local.get $out) (local.get $a2))
    (f64.store offset=16 (local.get $out) (local.get $b2))
    (f64.store offset=24 (local.get $out) (local.get $ab))
    (f64.store offset=32 (local.get $out) (local.get $ad))
    (f64.store offset=40 (local.get $out) (local.get $mx))
    (f64.store offset=48 (local.get $out) (local.get $ch))
    (local.get $i))
)
