;; rollout.wat — a WAGI app for rollout tests and `dwcp bench rollout`,
;; made into versions by replacing three words before compiling:
;;   TAG_TAG_  the 8 bytes it answers (then a newline), to tell versions apart;
;;   SPIN      a busy loop's iterations before answering (latency);
;;   FAILS     1: trap (a 500) when the request body starts with `f`; 0: never.
;; A load that sends `f` in some bodies makes a version fail exactly those.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "content-type: text/plain\0a\0aTAG_TAG_\0a")
  (func (export "_start") (local $i i32)
    (local.set $i (i32.const SPIN))
    (block $done
      (loop $spin
        (br_if $done (i32.eqz (local.get $i)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br $spin)))
    ;; the body's first bytes, at 200
    (i32.store (i32.const 16) (i32.const 200))
    (i32.store (i32.const 20) (i32.const 4))
    (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
    (if (i32.and (i32.const FAILS) (i32.eq (i32.load8_u (i32.const 200)) (i32.const 102)))
      (then unreachable))
    ;; one iovec at 0: the 35 bytes at 64
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 35))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
