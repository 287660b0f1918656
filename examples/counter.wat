;; counter.wat — DWCP raw-ABI module used to prove instance isolation.
;; "bump"(ptr, len) -> i64 ignores its input, increments the mutable global
;; $count and the i32 at memory address 0, then writes the global's new value
;; (i32 LE) at address 16 and the memory word's new value at address 20 and
;; returns (16 << 32) | 8. A FRESH instance must therefore always return the
;; bytes 01 00 00 00 01 00 00 00; anything larger means state leaked between
;; invocations. A data segment puts the 4 bytes "init" at address 8.
(module
  (memory (export "memory") 1)
  (data (i32.const 8) "init")
  (global $count (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 1024))

  ;; bump allocator starting at 1024 (returns 0 if memory cannot grow)
  (func (export "dwcp_alloc") (param $size i32) (result i32)
    (local $ptr i32) (local $end i32) (local $need i32)
    (local.set $ptr (global.get $heap))
    (local.set $end
      (i32.and
        (i32.add (i32.add (local.get $ptr) (local.get $size)) (i32.const 7))
        (i32.const -8)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (local.set $need
          (i32.sub
            (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
            (memory.size)))
        (if (i32.eq (memory.grow (local.get $need)) (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  (func (export "bump") (param $ptr i32) (param $len i32) (result i64)
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (i32.store (i32.const 16) (global.get $count))
    (i32.store (i32.const 20) (i32.load (i32.const 0)))
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 8))))
