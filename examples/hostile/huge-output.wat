;; hostile/huge-output.wat — hostile WASI command: output flooding.
;; "_start" writes a 64 KiB buffer of 'A' bytes to stdout 1024 times (64 MiB in
;; total) and then returns normally (exit 0). The sandbox must cap captured
;; stdout at its output limit (truncate or fail with an output-limit error)
;; instead of buffering 64 MiB. Write errors are ignored: it keeps going.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; layout: iovec at 0, nwritten at 8, 64 KiB buffer at 65536 (page 1)
  (func (export "_start")
    (local $i i32)
    (memory.fill (i32.const 65536) (i32.const 0x41) (i32.const 65536))
    (local.set $i (i32.const 0))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (i32.const 1024)))
        (i32.store (i32.const 0) (i32.const 65536))
        (i32.store (i32.const 4) (i32.const 65536))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))))
