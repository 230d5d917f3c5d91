;; SIMD kernels of the engine's combine loop (see ../kernels/combineSimd.ts and CombineOf in ../types.ts).
;; Every arithmetic instruction is a plain IEEE float32 operation (f32x4.sub/mul/add round to
;; nearest even, no fused multiply-add), so results equal the JavaScript path bit for bit.
;; Pointers are byte offsets into the exported memory; n is an element count. Each function does
;; 4 or 8 elements per SIMD step and finishes the tail with scalar code.
(module
  (memory (export "memory") 1)

  ;; dst[i] (f32) = bf16 src[i]: a bfloat16 is the upper half of a float32.
  (func (export "bf16_to_f32") (param $src i32) (param $dst i32) (param $n i32)
    (local $i i32) (local $v v128) (local $end8 i32)
    (local.set $end8 (i32.and (local.get $n) (i32.const -8)))
    (block $done
      (loop $simd
        (br_if $done (i32.ge_u (local.get $i) (local.get $end8)))
        (local.set $v (v128.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1)))))
        (v128.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
          (i32x4.shl (i32x4.extend_low_i16x8_u (local.get $v)) (i32.const 16)))
        (v128.store offset=16 (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
          (i32x4.shl (i32x4.extend_high_i16x8_u (local.get $v)) (i32.const 16)))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $simd)))
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
          (i32.shl (i32.load16_u (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1)))) (i32.const 16)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail))))

  ;; Round one float32 lane group to bfloat16 (nearest even; NaN stays a quiet NaN).
  (func $rne_bf16 (param $x v128) (result v128)
    (v128.bitselect
      (v128.or (i32x4.shr_u (local.get $x) (i32.const 16)) (i32x4.splat (i32.const 0x40)))
      (i32x4.shr_u
        (i32x4.add
          (i32x4.add (local.get $x) (i32x4.splat (i32.const 0x7fff)))
          (v128.and (i32x4.shr_u (local.get $x) (i32.const 16)) (i32x4.splat (i32.const 1))))
        (i32.const 16))
      (f32x4.ne (local.get $x) (local.get $x))))

  (func $rne_bf16_scalar (param $x i32) (result i32)
    (if (result i32) (f32.ne (f32.reinterpret_i32 (local.get $x)) (f32.reinterpret_i32 (local.get $x)))
      (then (i32.or (i32.shr_u (local.get $x) (i32.const 16)) (i32.const 0x40)))
      (else (i32.shr_u
        (i32.add (i32.add (local.get $x) (i32.const 0x7fff))
                 (i32.and (i32.shr_u (local.get $x) (i32.const 16)) (i32.const 1)))
        (i32.const 16)))))

  ;; dst[i] (bf16) = round(src[i] f32).
  (func (export "f32_to_bf16") (param $src i32) (param $dst i32) (param $n i32)
    (local $i i32) (local $end8 i32) (local $p i32)
    (local.set $end8 (i32.and (local.get $n) (i32.const -8)))
    (block $done
      (loop $simd
        (br_if $done (i32.ge_u (local.get $i) (local.get $end8)))
        (local.set $p (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))
        (v128.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 1)))
          (i16x8.narrow_i32x4_u
            (call $rne_bf16 (v128.load (local.get $p)))
            (call $rne_bf16 (v128.load offset=16 (local.get $p)))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $simd)))
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store16 (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 1)))
          (call $rne_bf16_scalar (i32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail))))

  ;; out[i] (bf16) = round(cp[i] + r·(chat[i] − base[i])), all bf16: the common case in one pass,
  ;; without float32 intermediates in memory.
  (func $widen_lo (param $v v128) (result v128) (i32x4.shl (i32x4.extend_low_i16x8_u (local.get $v)) (i32.const 16)))
  (func $widen_hi (param $v v128) (result v128) (i32x4.shl (i32x4.extend_high_i16x8_u (local.get $v)) (i32.const 16)))
  (func (export "fused_bf16") (param $cp i32) (param $chat i32) (param $base i32) (param $out i32) (param $r f32) (param $n i32)
    (local $i i32) (local $end8 i32) (local $o i32) (local $rv v128) (local $c v128) (local $a v128) (local $b v128)
    (local $x i32)
    (local.set $rv (f32x4.splat (local.get $r)))
    (local.set $end8 (i32.and (local.get $n) (i32.const -8)))
    (block $done
      (loop $simd
        (br_if $done (i32.ge_u (local.get $i) (local.get $end8)))
        (local.set $o (i32.shl (local.get $i) (i32.const 1)))
        (local.set $c (v128.load (i32.add (local.get $cp) (local.get $o))))
        (local.set $a (v128.load (i32.add (local.get $chat) (local.get $o))))
        (local.set $b (v128.load (i32.add (local.get $base) (local.get $o))))
        (v128.store (i32.add (local.get $out) (local.get $o))
          (i16x8.narrow_i32x4_u
            (call $rne_bf16 (f32x4.add (call $widen_lo (local.get $c))
              (f32x4.mul (local.get $rv) (f32x4.sub (call $widen_lo (local.get $a)) (call $widen_lo (local.get $b))))))
            (call $rne_bf16 (f32x4.add (call $widen_hi (local.get $c))
              (f32x4.mul (local.get $rv) (f32x4.sub (call $widen_hi (local.get $a)) (call $widen_hi (local.get $b))))))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $simd)))
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 1)))
        (local.set $x (i32.reinterpret_f32
          (f32.add (f32.reinterpret_i32 (i32.shl (i32.load16_u (i32.add (local.get $cp) (local.get $o))) (i32.const 16)))
            (f32.mul (local.get $r)
              (f32.sub (f32.reinterpret_i32 (i32.shl (i32.load16_u (i32.add (local.get $chat) (local.get $o))) (i32.const 16)))
                       (f32.reinterpret_i32 (i32.shl (i32.load16_u (i32.add (local.get $base) (local.get $o))) (i32.const 16))))))))
        (i32.store16 (i32.add (local.get $out) (local.get $o)) (call $rne_bf16_scalar (local.get $x)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail))))

  ;; acc[i] = acc[i] + r·(a[i] − b[i])
  (func (export "acc_diff") (param $acc i32) (param $a i32) (param $b i32) (param $r f32) (param $n i32)
    (local $i i32) (local $end4 i32) (local $o i32) (local $rv v128)
    (local.set $rv (f32x4.splat (local.get $r)))
    (local.set $end4 (i32.and (local.get $n) (i32.const -4)))
    (block $done
      (loop $simd
        (br_if $done (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (v128.store (i32.add (local.get $acc) (local.get $o))
          (f32x4.add (v128.load (i32.add (local.get $acc) (local.get $o)))
            (f32x4.mul (local.get $rv)
              (f32x4.sub (v128.load (i32.add (local.get $a) (local.get $o))) (v128.load (i32.add (local.get $b) (local.get $o)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $simd)))
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (f32.store (i32.add (local.get $acc) (local.get $o))
          (f32.add (f32.load (i32.add (local.get $acc) (local.get $o)))
            (f32.mul (local.get $r)
              (f32.sub (f32.load (i32.add (local.get $a) (local.get $o))) (f32.load (i32.add (local.get $b) (local.get $o)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail))))

  ;; acc[i] = r·(a[i] − b[i])   (the first term when there is no target)
  (func (export "set_diff") (param $acc i32) (param $a i32) (param $b i32) (param $r f32) (param $n i32)
    (local $i i32) (local $end4 i32) (local $o i32) (local $rv v128)
    (local.set $rv (f32x4.splat (local.get $r)))
    (local.set $end4 (i32.and (local.get $n) (i32.const -4)))
    (block $done
      (loop $simd
        (br_if $done (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (v128.store (i32.add (local.get $acc) (local.get $o))
          (f32x4.mul (local.get $rv)
            (f32x4.sub (v128.load (i32.add (local.get $a) (local.get $o))) (v128.load (i32.add (local.get $b) (local.get $o))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $simd)))
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (f32.store (i32.add (local.get $acc) (local.get $o))
          (f32.mul (local.get $r)
            (f32.sub (f32.load (i32.add (local.get $a) (local.get $o))) (f32.load (i32.add (local.get $b) (local.get $o))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail))))

  ;; acc[i] = acc[i] + r·a[i]   (a stored chat vector)
  (func (export "acc_scaled") (param $acc i32) (param $a i32) (param $r f32) (param $n i32)
    (local $i i32) (local $end4 i32) (local $o i32) (local $rv v128)
    (local.set $rv (f32x4.splat (local.get $r)))
    (local.set $end4 (i32.and (local.get $n) (i32.const -4)))
    (block $done
      (loop $simd
        (br_if $done (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (v128.store (i32.add (local.get $acc) (local.get $o))
          (f32x4.add (v128.load (i32.add (local.get $acc) (local.get $o)))
            (f32x4.mul (local.get $rv) (v128.load (i32.add (local.get $a) (local.get $o))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $simd)))
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (f32.store (i32.add (local.get $acc) (local.get $o))
          (f32.add (f32.load (i32.add (local.get $acc) (local.get $o)))
            (f32.mul (local.get $r) (f32.load (i32.add (local.get $a) (local.get $o))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail))))

  ;; 1 when any of the n 16-bit floats at p has every bit of $exp set (its exponent: NaN or ±Inf),
  ;; else 0; $exp is 0x7f80 for bf16, 0x7c00 for f16. The SIMD twin of anyNonFinite in
  ;; ../nonFinite.ts, for an output that is already in this memory.
  (func (export "any_nonfinite16") (param $p i32) (param $n i32) (param $exp i32) (result i32)
    (local $i i32) (local $end32 i32) (local $end8 i32) (local $m v128) (local $acc v128) (local $q i32)
    (local.set $m (i16x8.splat (local.get $exp)))
    (local.set $end32 (i32.and (local.get $n) (i32.const -32)))
    (local.set $end8 (i32.and (local.get $n) (i32.const -8)))
    ;; 32 elements (four vectors) per step, then 8 at a time.
    (block $done32
      (loop $simd32
        (br_if $done32 (i32.ge_u (local.get $i) (local.get $end32)))
        (local.set $q (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 1))))
        (local.set $acc (v128.or (v128.or (local.get $acc)
            (v128.or (i16x8.eq (v128.and (v128.load (local.get $q)) (local.get $m)) (local.get $m))
                     (i16x8.eq (v128.and (v128.load offset=16 (local.get $q)) (local.get $m)) (local.get $m))))
          (v128.or (i16x8.eq (v128.and (v128.load offset=32 (local.get $q)) (local.get $m)) (local.get $m))
                   (i16x8.eq (v128.and (v128.load offset=48 (local.get $q)) (local.get $m)) (local.get $m)))))
        (local.set $i (i32.add (local.get $i) (i32.const 32)))
        (br $simd32)))
    (block $done
      (loop $simd
        (br_if $done (i32.ge_u (local.get $i) (local.get $end8)))
        (local.set $acc (v128.or (local.get $acc)
          (i16x8.eq (v128.and (v128.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 1)))) (local.get $m)) (local.get $m))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $simd)))
    (if (v128.any_true (local.get $acc)) (then (return (i32.const 1))))
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.eq (i32.and (i32.load16_u (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 1)))) (local.get $exp)) (local.get $exp))
          (then (return (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (i32.const 0))

  ;; The same for n float32 at p.
  (func (export "any_nonfinite32") (param $p i32) (param $n i32) (result i32)
    (local $i i32) (local $end4 i32) (local $m v128) (local $acc v128)
    (local.set $m (i32x4.splat (i32.const 0x7f800000)))
    (local.set $end4 (i32.and (local.get $n) (i32.const -4)))
    (block $done
      (loop $simd
        (br_if $done (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $acc (v128.or (local.get $acc)
          (i32x4.eq (v128.and (v128.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))) (local.get $m)) (local.get $m))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $simd)))
    (if (v128.any_true (local.get $acc)) (then (return (i32.const 1))))
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.eq (i32.and (i32.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))) (i32.const 0x7f800000)) (i32.const 0x7f800000))
          (then (return (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (i32.const 0))

  ;; acc[i] = r·a[i]
  (func (export "set_scaled") (param $acc i32) (param $a i32) (param $r f32) (param $n i32)
    (local $i i32) (local $end4 i32) (local $o i32) (local $rv v128)
    (local.set $rv (f32x4.splat (local.get $r)))
    (local.set $end4 (i32.and (local.get $n) (i32.const -4)))
    (block $done
      (loop $simd
        (br_if $done (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (v128.store (i32.add (local.get $acc) (local.get $o))
          (f32x4.mul (local.get $rv) (v128.load (i32.add (local.get $a) (local.get $o)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $simd)))
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (f32.store (i32.add (local.get $acc) (local.get $o))
          (f32.mul (local.get $r) (f32.load (i32.add (local.get $a) (local.get $o)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail))))
)
