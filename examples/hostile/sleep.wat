;; examples/hostile/sleep.wat — a WASI command that asks poll_oneoff to sleep
;; for an hour. A host call runs no wasm code, so epoch interruption alone
;; would not stop it; DWCP's poll_oneoff guard ends it as timed out at once
;; when the sleep would pass the deadline. `nap` sleeps 1 ms, which fits.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; One clock subscription at address 0: userdata (u64) at 0, tag 0 (clock)
  ;; at 8, clock id (u32) at 16, timeout in ns (u64) at 24, precision at 32,
  ;; flags (u16, 0 = relative) at 40. The event goes to 128, the count to 192.
  (func $sleep (param $ns i64)
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (local.get $ns))
    (drop (call $poll (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 192))))
  (func (export "_start") (call $sleep (i64.const 3600000000000)))
  (func (export "run") (call $sleep (i64.const 3600000000000)))
  (func (export "nap") (call $sleep (i64.const 1000000))))
