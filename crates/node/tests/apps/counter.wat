;; counter.wat — a WAGI app that counts its invocations in a global and
;; answers the count modulo 10 as one digit. A fresh sandbox always answers
;; `1`; a warm (keep-alive) instance answers 1, 2, 3, ...
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $count (mut i32) (i32.const 0))
  ;; header (26 bytes) at 16, the digit right after it at 42
  (data (i32.const 16) "content-type: text/plain\n\n")
  (func (export "_start")
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (i32.store8 (i32.const 42)
      (i32.add (i32.const 48) (i32.rem_u (global.get $count) (i32.const 10))))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 27))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
