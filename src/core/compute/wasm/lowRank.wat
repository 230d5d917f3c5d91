;; SIMD low-rank product of apply (see ../kernels/lowRankSimd.ts): one row segment of τ = B·A,
;; two columns per f64x2. Every element gets exactly the operations of the JavaScript reference
;; (lowRankJs.ts) in the same order — acc = 0, then acc = acc + f64(B[row, k])·f64(A[k, j]) for
;; k = 0 … rank−1 (no fused multiply-add; the products of two float32 are exact in float64), then
;; one rounding to float32 — so both give the same bits. Pointers are byte offsets into the
;; exported memory. Assembled into generated/lowRankWasm.ts by scripts/build-wasm.mjs.
(module
  (memory (export "memory") 1)

  ;; out[j − j0] = f32(Σ_k b[k]·A[k, j]) for j in [j0, j1); b: rank float32, A: rank × cols
  ;; float32 (row-major), acc: cols float64 of scratch, out: j1 − j0 float32.
  (func (export "ba_row") (param $b i32) (param $rank i32) (param $A i32) (param $cols i32) (param $j0 i32) (param $j1 i32) (param $acc i32) (param $out i32)
    (local $k i32) (local $p i32) (local $e i32) (local $q i32) (local $s f64) (local $v v128)
    (local.set $e (i32.add (local.get $acc) (i32.shl (local.get $j1) (i32.const 3))))
    (local.set $p (i32.add (local.get $acc) (i32.shl (local.get $j0) (i32.const 3))))
    (block $zdone
      (loop $z
        (br_if $zdone (i32.ge_u (local.get $p) (local.get $e)))
        (f64.store (local.get $p) (f64.const 0))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br $z)))
    (block $kdone
      (loop $kloop
        (br_if $kdone (i32.ge_u (local.get $k) (local.get $rank)))
        (local.set $s (f64.promote_f32 (f32.load (i32.add (local.get $b) (i32.shl (local.get $k) (i32.const 2))))))
        (local.set $v (f64x2.splat (local.get $s)))
        (local.set $p (i32.add (local.get $acc) (i32.shl (local.get $j0) (i32.const 3))))
        ;; q = &A[k, j0]
        (local.set $q (i32.add (local.get $A) (i32.shl (i32.add (i32.mul (local.get $k) (local.get $cols)) (local.get $j0)) (i32.const 2))))
        (block $jdone
          (loop $jloop
            (br_if $jdone (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $e)))
            (v128.store (local.get $p)
              (f64x2.add (v128.load (local.get $p)) (f64x2.mul (local.get $v) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $q))))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (local.set $q (i32.add (local.get $q) (i32.const 8)))
            (br $jloop)))
        (if (i32.lt_u (local.get $p) (local.get $e))
          (then
            (f64.store (local.get $p) (f64.add (f64.load (local.get $p)) (f64.mul (local.get $s) (f64.promote_f32 (f32.load (local.get $q))))))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $kloop)))
    ;; one rounding to float32 (nearest, ties to even)
    (local.set $p (i32.add (local.get $acc) (i32.shl (local.get $j0) (i32.const 3))))
    (local.set $q (local.get $out))
    (block $odone
      (loop $oloop
        (br_if $odone (i32.ge_u (local.get $p) (local.get $e)))
        (f32.store (local.get $q) (f32.demote_f64 (f64.load (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (local.set $q (i32.add (local.get $q) (i32.const 4)))
        (br $oloop))))
)
