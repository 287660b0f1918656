;; The example app `dwcp up` deploys on first start at /hello: a WAGI
;; program (CGI on WASI) that answers every request with a greeting.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "content-type: text/plain\0a\0aHello from DWCP!\0a")
  (func (export "_start")
    ;; one iovec at 0: the 43 bytes at 64
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 43))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
