;; SIMD GEMMs of the randomized SVD (see ../kernels/gemmSimd.ts): a float32 matrix M (m × n,
;; row-major) times a float64 panel of l columns, two panel columns per f64x2 lane pair. Every
;; element gets exactly the operations of the JavaScript reference (gemmJs.ts) in the same order —
;; float32 promoted to float64 exactly, then mul and add (no fused multiply-add) — so both give
;; the same bits. Pointers are byte offsets into the exported memory; out is overwritten.
;; Assembled into generated/gemmWasm.ts by scripts/build-wasm.mjs (run by npm run build).
(module
  (memory (export "memory") 1)

  (func $zero (param $p i32) (param $bytes i32)
    (local $e i32)
    (local.set $e (i32.add (local.get $p) (local.get $bytes)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $e)))
        (f64.store (local.get $p) (f64.const 0))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br $next))))

  ;; out (m × l) = M · X with X (n × l): four rows of M per pass over X, then the rest.
  (func (export "mul_panel") (param $M i32) (param $m i32) (param $n i32) (param $X i32) (param $l i32) (param $out i32)
    (local $i i32) (local $j i32) (local $c i32) (local $pb i32) (local $even i32) (local $mb i32)
    (local $o0 i32) (local $o1 i32) (local $o2 i32) (local $o3 i32) (local $r0 i32) (local $x i32)
    (local $s0 f64) (local $s1 f64) (local $s2 f64) (local $s3 f64)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128) (local $xc v128) (local $xs f64)
    (local.set $pb (i32.shl (local.get $l) (i32.const 3)))
    (local.set $even (i32.shl (i32.and (local.get $l) (i32.const -2)) (i32.const 3)))
    (local.set $mb (i32.shl (local.get $n) (i32.const 2)))
    (call $zero (local.get $out) (i32.mul (local.get $m) (local.get $pb)))
    (block $rows4done
      (loop $rows4
        (br_if $rows4done (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $m)))
        (local.set $o0 (i32.add (local.get $out) (i32.mul (local.get $i) (local.get $pb))))
        (local.set $o1 (i32.add (local.get $o0) (local.get $pb)))
        (local.set $o2 (i32.add (local.get $o1) (local.get $pb)))
        (local.set $o3 (i32.add (local.get $o2) (local.get $pb)))
        (local.set $r0 (i32.add (local.get $M) (i32.mul (local.get $i) (local.get $mb))))
        (local.set $j (i32.const 0))
        (block $jdone
          (loop $jloop
            (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
            (local.set $s0 (f64.promote_f32 (f32.load (i32.add (local.get $r0) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $s1 (f64.promote_f32 (f32.load (i32.add (i32.add (local.get $r0) (local.get $mb)) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $s2 (f64.promote_f32 (f32.load (i32.add (i32.add (local.get $r0) (i32.shl (local.get $mb) (i32.const 1))) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $s3 (f64.promote_f32 (f32.load (i32.add (i32.add (local.get $r0) (i32.mul (local.get $mb) (i32.const 3))) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $v0 (f64x2.splat (local.get $s0)))
            (local.set $v1 (f64x2.splat (local.get $s1)))
            (local.set $v2 (f64x2.splat (local.get $s2)))
            (local.set $v3 (f64x2.splat (local.get $s3)))
            (local.set $x (i32.add (local.get $X) (i32.mul (local.get $j) (local.get $pb))))
            (local.set $c (i32.const 0))
            (block $cdone
              (loop $cloop
                (br_if $cdone (i32.ge_u (local.get $c) (local.get $even)))
                (local.set $xc (v128.load (i32.add (local.get $x) (local.get $c))))
                (v128.store (i32.add (local.get $o0) (local.get $c)) (f64x2.add (v128.load (i32.add (local.get $o0) (local.get $c))) (f64x2.mul (local.get $v0) (local.get $xc))))
                (v128.store (i32.add (local.get $o1) (local.get $c)) (f64x2.add (v128.load (i32.add (local.get $o1) (local.get $c))) (f64x2.mul (local.get $v1) (local.get $xc))))
                (v128.store (i32.add (local.get $o2) (local.get $c)) (f64x2.add (v128.load (i32.add (local.get $o2) (local.get $c))) (f64x2.mul (local.get $v2) (local.get $xc))))
                (v128.store (i32.add (local.get $o3) (local.get $c)) (f64x2.add (v128.load (i32.add (local.get $o3) (local.get $c))) (f64x2.mul (local.get $v3) (local.get $xc))))
                (local.set $c (i32.add (local.get $c) (i32.const 16)))
                (br $cloop)))
            (if (i32.lt_u (local.get $even) (local.get $pb))
              (then
                (local.set $xs (f64.load (i32.add (local.get $x) (local.get $even))))
                (f64.store (i32.add (local.get $o0) (local.get $even)) (f64.add (f64.load (i32.add (local.get $o0) (local.get $even))) (f64.mul (local.get $s0) (local.get $xs))))
                (f64.store (i32.add (local.get $o1) (local.get $even)) (f64.add (f64.load (i32.add (local.get $o1) (local.get $even))) (f64.mul (local.get $s1) (local.get $xs))))
                (f64.store (i32.add (local.get $o2) (local.get $even)) (f64.add (f64.load (i32.add (local.get $o2) (local.get $even))) (f64.mul (local.get $s2) (local.get $xs))))
                (f64.store (i32.add (local.get $o3) (local.get $even)) (f64.add (f64.load (i32.add (local.get $o3) (local.get $even))) (f64.mul (local.get $s3) (local.get $xs))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $jloop)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $rows4)))
    ;; the remaining rows, one at a time
    (block $rowsdone
      (loop $rows
        (br_if $rowsdone (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $o0 (i32.add (local.get $out) (i32.mul (local.get $i) (local.get $pb))))
        (local.set $r0 (i32.add (local.get $M) (i32.mul (local.get $i) (local.get $mb))))
        (local.set $j (i32.const 0))
        (block $jdone1
          (loop $jloop1
            (br_if $jdone1 (i32.ge_u (local.get $j) (local.get $n)))
            (local.set $s0 (f64.promote_f32 (f32.load (i32.add (local.get $r0) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $v0 (f64x2.splat (local.get $s0)))
            (local.set $x (i32.add (local.get $X) (i32.mul (local.get $j) (local.get $pb))))
            (local.set $c (i32.const 0))
            (block $cdone1
              (loop $cloop1
                (br_if $cdone1 (i32.ge_u (local.get $c) (local.get $even)))
                (v128.store (i32.add (local.get $o0) (local.get $c)) (f64x2.add (v128.load (i32.add (local.get $o0) (local.get $c))) (f64x2.mul (local.get $v0) (v128.load (i32.add (local.get $x) (local.get $c))))))
                (local.set $c (i32.add (local.get $c) (i32.const 16)))
                (br $cloop1)))
            (if (i32.lt_u (local.get $even) (local.get $pb))
              (then
                (f64.store (i32.add (local.get $o0) (local.get $even)) (f64.add (f64.load (i32.add (local.get $o0) (local.get $even))) (f64.mul (local.get $s0) (f64.load (i32.add (local.get $x) (local.get $even))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $jloop1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))

  ;; out (n × l) = Mᵀ · X with X (m × l): per element out += ((v0·x0 + v1·x1) + v2·x2) + v3·x3 over
  ;; four rows of M at a time, then out += v·x for the rest.
  (func (export "mul_panel_t") (param $M i32) (param $m i32) (param $n i32) (param $X i32) (param $l i32) (param $out i32)
    (local $i i32) (local $j i32) (local $c i32) (local $pb i32) (local $even i32) (local $mb i32)
    (local $x0 i32) (local $x1 i32) (local $x2 i32) (local $x3 i32) (local $r0 i32) (local $o i32)
    (local $s0 f64) (local $s1 f64) (local $s2 f64) (local $s3 f64)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128) (local $t v128)
    (local.set $pb (i32.shl (local.get $l) (i32.const 3)))
    (local.set $even (i32.shl (i32.and (local.get $l) (i32.const -2)) (i32.const 3)))
    (local.set $mb (i32.shl (local.get $n) (i32.const 2)))
    (call $zero (local.get $out) (i32.mul (local.get $n) (local.get $pb)))
    (block $rows4done
      (loop $rows4
        (br_if $rows4done (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $m)))
        (local.set $x0 (i32.add (local.get $X) (i32.mul (local.get $i) (local.get $pb))))
        (local.set $x1 (i32.add (local.get $x0) (local.get $pb)))
        (local.set $x2 (i32.add (local.get $x1) (local.get $pb)))
        (local.set $x3 (i32.add (local.get $x2) (local.get $pb)))
        (local.set $r0 (i32.add (local.get $M) (i32.mul (local.get $i) (local.get $mb))))
        (local.set $j (i32.const 0))
        (block $jdone
          (loop $jloop
            (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
            (local.set $s0 (f64.promote_f32 (f32.load (i32.add (local.get $r0) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $s1 (f64.promote_f32 (f32.load (i32.add (i32.add (local.get $r0) (local.get $mb)) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $s2 (f64.promote_f32 (f32.load (i32.add (i32.add (local.get $r0) (i32.shl (local.get $mb) (i32.const 1))) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $s3 (f64.promote_f32 (f32.load (i32.add (i32.add (local.get $r0) (i32.mul (local.get $mb) (i32.const 3))) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $v0 (f64x2.splat (local.get $s0)))
            (local.set $v1 (f64x2.splat (local.get $s1)))
            (local.set $v2 (f64x2.splat (local.get $s2)))
            (local.set $v3 (f64x2.splat (local.get $s3)))
            (local.set $o (i32.add (local.get $out) (i32.mul (local.get $j) (local.get $pb))))
            (local.set $c (i32.const 0))
            (block $cdone
              (loop $cloop
                (br_if $cdone (i32.ge_u (local.get $c) (local.get $even)))
                (local.set $t (f64x2.add (f64x2.add (f64x2.add
                  (f64x2.mul (local.get $v0) (v128.load (i32.add (local.get $x0) (local.get $c))))
                  (f64x2.mul (local.get $v1) (v128.load (i32.add (local.get $x1) (local.get $c)))))
                  (f64x2.mul (local.get $v2) (v128.load (i32.add (local.get $x2) (local.get $c)))))
                  (f64x2.mul (local.get $v3) (v128.load (i32.add (local.get $x3) (local.get $c))))))
                (v128.store (i32.add (local.get $o) (local.get $c)) (f64x2.add (v128.load (i32.add (local.get $o) (local.get $c))) (local.get $t)))
                (local.set $c (i32.add (local.get $c) (i32.const 16)))
                (br $cloop)))
            (if (i32.lt_u (local.get $even) (local.get $pb))
              (then
                (f64.store (i32.add (local.get $o) (local.get $even)) (f64.add (f64.load (i32.add (local.get $o) (local.get $even)))
                  (f64.add (f64.add (f64.add
                    (f64.mul (local.get $s0) (f64.load (i32.add (local.get $x0) (local.get $even))))
                    (f64.mul (local.get $s1) (f64.load (i32.add (local.get $x1) (local.get $even)))))
                    (f64.mul (local.get $s2) (f64.load (i32.add (local.get $x2) (local.get $even)))))
                    (f64.mul (local.get $s3) (f64.load (i32.add (local.get $x3) (local.get $even)))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $jloop)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $rows4)))
    (block $rowsdone
      (loop $rows
        (br_if $rowsdone (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $x0 (i32.add (local.get $X) (i32.mul (local.get $i) (local.get $pb))))
        (local.set $r0 (i32.add (local.get $M) (i32.mul (local.get $i) (local.get $mb))))
        (local.set $j (i32.const 0))
        (block $jdone1
          (loop $jloop1
            (br_if $jdone1 (i32.ge_u (local.get $j) (local.get $n)))
            (local.set $s0 (f64.promote_f32 (f32.load (i32.add (local.get $r0) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $v0 (f64x2.splat (local.get $s0)))
            (local.set $o (i32.add (local.get $out) (i32.mul (local.get $j) (local.get $pb))))
            (local.set $c (i32.const 0))
            (block $cdone1
              (loop $cloop1
                (br_if $cdone1 (i32.ge_u (local.get $c) (local.get $even)))
                (v128.store (i32.add (local.get $o) (local.get $c)) (f64x2.add (v128.load (i32.add (local.get $o) (local.get $c))) (f64x2.mul (local.get $v0) (v128.load (i32.add (local.get $x0) (local.get $c))))))
                (local.set $c (i32.add (local.get $c) (i32.const 16)))
                (br $cloop1)))
            (if (i32.lt_u (local.get $even) (local.get $pb))
              (then
                (f64.store (i32.add (local.get $o) (local.get $even)) (f64.add (f64.load (i32.add (local.get $o) (local.get $even))) (f64.mul (local.get $s0) (f64.load (i32.add (local.get $x0) (local.get $even))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $jloop1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows)))))
