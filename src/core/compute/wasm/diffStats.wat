;; SIMD kernels of the diff statistics (see ../kernels/diffSimd.ts): over a run of elements, the
;; sums Σd², Σa², Σb², Σab, Σ|d|, max |d| and the count of d = 0, where d = b − a (or the stored Δ).
;;
;; Precision (the bound is stated and derived once, in ../diffBound.ts): each term is formed in
;; float32 (d = b − a or B = A + Δ rounded once, one product rounded once) and the terms of a block
;; of 128 elements are added in float32: each of the 4 lanes adds the sums of pairs of terms in 16
;; steps, so a term passes through at most 16 float32 additions. The block's lane sums are then
;; widened and added in float64. The maximum is that of the float32 |d| (one rounding of the exact
;; value); the count of d = 0 is exact (float32 subtraction is exact near zero: d = 0 only when a = b).
;; NaN/±Inf, and finite inputs whose float32 terms overflow, make one of the sums non-finite; the
;; caller then redoes that run in float64, element by element. Pointers are byte offsets into the
;; exported memory; the results are 7 float64 at `out` (the count as a float64). n must be a
;; multiple of 8 and at most 2³⁰.
;; Assembled into generated/diffStatsWasm.ts by scripts/build-wasm.mjs (run by npm run build).
(module
  (memory (export "memory") 1)

  ;; Δ = B − A; a and b are float32.
  (func (export "ab_f32") (param $a i32) (param $b i32) (param $n i32) (param $out i32)
    (local $i i32) (local $end i32) (local $x0 v128) (local $x1 v128) (local $y0 v128) (local $y1 v128) (local $d0 v128) (local $d1 v128) (local $d2 v128) (local $a2 v128) (local $b2 v128) (local $ab v128) (local $sa v128) (local $mx v128) (local $z v128) (local $zero v128) (local $D2 v128) (local $A2 v128) (local $B2 v128) (local $AB v128) (local $SA v128) (local $ra v128) (local $rb v128)
    (local.set $n (i32.mul (local.get $n) (i32.const 4)))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        ;; the block ends after 128 elements or at n
        (local.set $end (select (local.get $n) (i32.add (local.get $i) (i32.const 512)) (i32.lt_u (i32.sub (local.get $n) (local.get $i)) (i32.const 512))))
        (loop $step
          (local.set $x0 (v128.load (i32.add (local.get $a) (local.get $i))))
          (local.set $x1 (v128.load offset=16 (i32.add (local.get $a) (local.get $i))))
          (local.set $y0 (v128.load (i32.add (local.get $b) (local.get $i))))
          (local.set $y1 (v128.load offset=16 (i32.add (local.get $b) (local.get $i))))
          (local.set $d0 (f32x4.sub (local.get $y0) (local.get $x0)))
          (local.set $d1 (f32x4.sub (local.get $y1) (local.get $x1)))
          (local.set $d2 (f32x4.add (local.get $d2) (f32x4.add (f32x4.mul (local.get $d0) (local.get $d0)) (f32x4.mul (local.get $d1) (local.get $d1)))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.add (f32x4.mul (local.get $x0) (local.get $x0)) (f32x4.mul (local.get $x1) (local.get $x1)))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.add (f32x4.mul (local.get $y0) (local.get $y0)) (f32x4.mul (local.get $y1) (local.get $y1)))))
          (local.set $ab (f32x4.add (local.get $ab) (f32x4.add (f32x4.mul (local.get $x0) (local.get $y0)) (f32x4.mul (local.get $x1) (local.get $y1)))))
          (local.set $d0 (f32x4.abs (local.get $d0)))
          (local.set $d1 (f32x4.abs (local.get $d1)))
          (local.set $sa (f32x4.add (local.get $sa) (f32x4.add (local.get $d0) (local.get $d1))))
          (local.set $mx (f32x4.pmax (local.get $mx) (f32x4.pmax (local.get $d0) (local.get $d1))))
          (local.set $z (i32x4.sub (i32x4.sub (local.get $z) (f32x4.eq (local.get $d0) (local.get $zero))) (f32x4.eq (local.get $d1) (local.get $zero))))
          (local.set $i (i32.add (local.get $i) (i32.const 32)))
          (br_if $step (i32.lt_u (local.get $i) (local.get $end))))
        (local.set $D2 (f64x2.add (local.get $D2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $d2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $d2) (local.get $d2))))))
        (local.set $d2 (v128.const i64x2 0 0))
        (local.set $A2 (f64x2.add (local.get $A2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $a2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $a2) (local.get $a2))))))
        (local.set $a2 (v128.const i64x2 0 0))
        (local.set $B2 (f64x2.add (local.get $B2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $b2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $b2) (local.get $b2))))))
        (local.set $b2 (v128.const i64x2 0 0))
        (local.set $AB (f64x2.add (local.get $AB) (f64x2.add (f64x2.promote_low_f32x4 (local.get $ab)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $ab) (local.get $ab))))))
        (local.set $ab (v128.const i64x2 0 0))
        (local.set $SA (f64x2.add (local.get $SA) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sa)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sa) (local.get $sa))))))
        (local.set $sa (v128.const i64x2 0 0))
        (br $block)))
    (f64.store offset=0 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $D2)) (f64x2.extract_lane 1 (local.get $D2))))
    (f64.store offset=8 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $A2)) (f64x2.extract_lane 1 (local.get $A2))))
    (f64.store offset=16 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $B2)) (f64x2.extract_lane 1 (local.get $B2))))
    (f64.store offset=24 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $AB)) (f64x2.extract_lane 1 (local.get $AB))))
    (f64.store offset=32 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $SA)) (f64x2.extract_lane 1 (local.get $SA))))
    (f64.store offset=40 (local.get $out) (f64.promote_f32 (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mx)) (f32x4.extract_lane 1 (local.get $mx))) (f32.max (f32x4.extract_lane 2 (local.get $mx)) (f32x4.extract_lane 3 (local.get $mx))))))
    (f64.store offset=48 (local.get $out) (f64.convert_i32_u (i32.add (i32.add (i32x4.extract_lane 0 (local.get $z)) (i32x4.extract_lane 1 (local.get $z))) (i32.add (i32x4.extract_lane 2 (local.get $z)) (i32x4.extract_lane 3 (local.get $z)))))))

  ;; B = A + Δ with Δ stored; a and d are float32.
  (func (export "delta_f32") (param $a i32) (param $b i32) (param $n i32) (param $out i32)
    (local $i i32) (local $end i32) (local $x0 v128) (local $x1 v128) (local $y0 v128) (local $y1 v128) (local $d0 v128) (local $d1 v128) (local $d2 v128) (local $a2 v128) (local $b2 v128) (local $ab v128) (local $sa v128) (local $mx v128) (local $z v128) (local $zero v128) (local $D2 v128) (local $A2 v128) (local $B2 v128) (local $AB v128) (local $SA v128) (local $ra v128) (local $rb v128)
    (local.set $n (i32.mul (local.get $n) (i32.const 4)))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        ;; the block ends after 128 elements or at n
        (local.set $end (select (local.get $n) (i32.add (local.get $i) (i32.const 512)) (i32.lt_u (i32.sub (local.get $n) (local.get $i)) (i32.const 512))))
        (loop $step
          (local.set $x0 (v128.load (i32.add (local.get $a) (local.get $i))))
          (local.set $x1 (v128.load offset=16 (i32.add (local.get $a) (local.get $i))))
          (local.set $d0 (v128.load (i32.add (local.get $b) (local.get $i))))
          (local.set $d1 (v128.load offset=16 (i32.add (local.get $b) (local.get $i))))
          (local.set $y0 (f32x4.add (local.get $x0) (local.get $d0)))
          (local.set $y1 (f32x4.add (local.get $x1) (local.get $d1)))
          (local.set $d2 (f32x4.add (local.get $d2) (f32x4.add (f32x4.mul (local.get $d0) (local.get $d0)) (f32x4.mul (local.get $d1) (local.get $d1)))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.add (f32x4.mul (local.get $x0) (local.get $x0)) (f32x4.mul (local.get $x1) (local.get $x1)))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.add (f32x4.mul (local.get $y0) (local.get $y0)) (f32x4.mul (local.get $y1) (local.get $y1)))))
          (local.set $ab (f32x4.add (local.get $ab) (f32x4.add (f32x4.mul (local.get $x0) (local.get $y0)) (f32x4.mul (local.get $x1) (local.get $y1)))))
          (local.set $d0 (f32x4.abs (local.get $d0)))
          (local.set $d1 (f32x4.abs (local.get $d1)))
          (local.set $sa (f32x4.add (local.get $sa) (f32x4.add (local.get $d0) (local.get $d1))))
          (local.set $mx (f32x4.pmax (local.get $mx) (f32x4.pmax (local.get $d0) (local.get $d1))))
          (local.set $z (i32x4.sub (i32x4.sub (local.get $z) (f32x4.eq (local.get $d0) (local.get $zero))) (f32x4.eq (local.get $d1) (local.get $zero))))
          (local.set $i (i32.add (local.get $i) (i32.const 32)))
          (br_if $step (i32.lt_u (local.get $i) (local.get $end))))
        (local.set $D2 (f64x2.add (local.get $D2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $d2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $d2) (local.get $d2))))))
        (local.set $d2 (v128.const i64x2 0 0))
        (local.set $A2 (f64x2.add (local.get $A2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $a2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $a2) (local.get $a2))))))
        (local.set $a2 (v128.const i64x2 0 0))
        (local.set $B2 (f64x2.add (local.get $B2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $b2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $b2) (local.get $b2))))))
        (local.set $b2 (v128.const i64x2 0 0))
        (local.set $AB (f64x2.add (local.get $AB) (f64x2.add (f64x2.promote_low_f32x4 (local.get $ab)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $ab) (local.get $ab))))))
        (local.set $ab (v128.const i64x2 0 0))
        (local.set $SA (f64x2.add (local.get $SA) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sa)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sa) (local.get $sa))))))
        (local.set $sa (v128.const i64x2 0 0))
        (br $block)))
    (f64.store offset=0 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $D2)) (f64x2.extract_lane 1 (local.get $D2))))
    (f64.store offset=8 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $A2)) (f64x2.extract_lane 1 (local.get $A2))))
    (f64.store offset=16 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $B2)) (f64x2.extract_lane 1 (local.get $B2))))
    (f64.store offset=24 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $AB)) (f64x2.extract_lane 1 (local.get $AB))))
    (f64.store offset=32 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $SA)) (f64x2.extract_lane 1 (local.get $SA))))
    (f64.store offset=40 (local.get $out) (f64.promote_f32 (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mx)) (f32x4.extract_lane 1 (local.get $mx))) (f32.max (f32x4.extract_lane 2 (local.get $mx)) (f32x4.extract_lane 3 (local.get $mx))))))
    (f64.store offset=48 (local.get $out) (f64.convert_i32_u (i32.add (i32.add (i32x4.extract_lane 0 (local.get $z)) (i32x4.extract_lane 1 (local.get $z))) (i32.add (i32x4.extract_lane 2 (local.get $z)) (i32x4.extract_lane 3 (local.get $z)))))))

  ;; Δ = B − A with A and B bfloat16 (the upper half of a float32): read in place, no float32
  ;; copy in memory; the order of elements within 8 does not matter to sums.
  (func (export "ab_bf16") (param $a i32) (param $b i32) (param $n i32) (param $out i32)
    (local $i i32) (local $end i32) (local $x0 v128) (local $x1 v128) (local $y0 v128) (local $y1 v128) (local $d0 v128) (local $d1 v128) (local $d2 v128) (local $a2 v128) (local $b2 v128) (local $ab v128) (local $sa v128) (local $mx v128) (local $z v128) (local $zero v128) (local $D2 v128) (local $A2 v128) (local $B2 v128) (local $AB v128) (local $SA v128) (local $ra v128) (local $rb v128)
    (local.set $n (i32.mul (local.get $n) (i32.const 2)))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        ;; the block ends after 128 elements or at n
        (local.set $end (select (local.get $n) (i32.add (local.get $i) (i32.const 256)) (i32.lt_u (i32.sub (local.get $n) (local.get $i)) (i32.const 256))))
        (loop $step
          (local.set $ra (v128.load (i32.add (local.get $a) (local.get $i))))
          (local.set $rb (v128.load (i32.add (local.get $b) (local.get $i))))
          (local.set $x0 (i32x4.shl (local.get $ra) (i32.const 16)))
          (local.set $x1 (v128.and (local.get $ra) (v128.const i32x4 0xffff0000 0xffff0000 0xffff0000 0xffff0000)))
          (local.set $y0 (i32x4.shl (local.get $rb) (i32.const 16)))
          (local.set $y1 (v128.and (local.get $rb) (v128.const i32x4 0xffff0000 0xffff0000 0xffff0000 0xffff0000)))
          (local.set $d0 (f32x4.sub (local.get $y0) (local.get $x0)))
          (local.set $d1 (f32x4.sub (local.get $y1) (local.get $x1)))
          (local.set $d2 (f32x4.add (local.get $d2) (f32x4.add (f32x4.mul (local.get $d0) (local.get $d0)) (f32x4.mul (local.get $d1) (local.get $d1)))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.add (f32x4.mul (local.get $x0) (local.get $x0)) (f32x4.mul (local.get $x1) (local.get $x1)))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.add (f32x4.mul (local.get $y0) (local.get $y0)) (f32x4.mul (local.get $y1) (local.get $y1)))))
          (local.set $ab (f32x4.add (local.get $ab) (f32x4.add (f32x4.mul (local.get $x0) (local.get $y0)) (f32x4.mul (local.get $x1) (local.get $y1)))))
          (local.set $d0 (f32x4.abs (local.get $d0)))
          (local.set $d1 (f32x4.abs (local.get $d1)))
          (local.set $sa (f32x4.add (local.get $sa) (f32x4.add (local.get $d0) (local.get $d1))))
          (local.set $mx (f32x4.pmax (local.get $mx) (f32x4.pmax (local.get $d0) (local.get $d1))))
          (local.set $z (i32x4.sub (i32x4.sub (local.get $z) (f32x4.eq (local.get $d0) (local.get $zero))) (f32x4.eq (local.get $d1) (local.get $zero))))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br_if $step (i32.lt_u (local.get $i) (local.get $end))))
        (local.set $D2 (f64x2.add (local.get $D2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $d2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $d2) (local.get $d2))))))
        (local.set $d2 (v128.const i64x2 0 0))
        (local.set $A2 (f64x2.add (local.get $A2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $a2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $a2) (local.get $a2))))))
        (local.set $a2 (v128.const i64x2 0 0))
        (local.set $B2 (f64x2.add (local.get $B2) (f64x2.add (f64x2.promote_low_f32x4 (local.get $b2)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $b2) (local.get $b2))))))
        (local.set $b2 (v128.const i64x2 0 0))
        (local.set $AB (f64x2.add (local.get $AB) (f64x2.add (f64x2.promote_low_f32x4 (local.get $ab)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $ab) (local.get $ab))))))
        (local.set $ab (v128.const i64x2 0 0))
        (local.set $SA (f64x2.add (local.get $SA) (f64x2.add (f64x2.promote_low_f32x4 (local.get $sa)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $sa) (local.get $sa))))))
        (local.set $sa (v128.const i64x2 0 0))
        (br $block)))
    (f64.store offset=0 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $D2)) (f64x2.extract_lane 1 (local.get $D2))))
    (f64.store offset=8 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $A2)) (f64x2.extract_lane 1 (local.get $A2))))
    (f64.store offset=16 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $B2)) (f64x2.extract_lane 1 (local.get $B2))))
    (f64.store offset=24 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $AB)) (f64x2.extract_lane 1 (local.get $AB))))
    (f64.store offset=32 (local.get $out) (f64.add (f64x2.extract_lane 0 (local.get $SA)) (f64x2.extract_lane 1 (local.get $SA))))
    (f64.store offset=40 (local.get $out) (f64.promote_f32 (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mx)) (f32x4.extract_lane 1 (local.get $mx))) (f32.max (f32x4.extract_lane 2 (local.get $mx)) (f32x4.extract_lane 3 (local.get $mx))))))
    (f64.store offset=48 (local.get $out) (f64.convert_i32_u (i32.add (i32.add (i32x4.extract_lane 0 (local.get $z)) (i32x4.extract_lane 1 (local.get $z))) (i32.add (i32x4.extract_lane 2 (local.get $z)) (i32x4.extract_lane 3 (local.get $z)))))))
)
