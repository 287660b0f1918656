;; hello.wat — the smallest WAGI app: a WASI command writing a CGI response,
;; `content-type: text/plain`, a blank line, `hello`, to stdout.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: { buf = 16, len = 31 }; nwritten at 8; text at 16
  (data (i32.const 16) "content-type: text/plain\n\nhello")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 31))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
