;; hello.core.wat — the core module of examples/http/hello.wat, a
;; wasi:http/incoming-handler component (see README.md here for how the
;; component is made from it). Every request is answered 200 with
;; `content-type: text/plain`, `x-requests-seen: N` (how many requests this
;; instance has handled, this one included: always 1 when every request
;; gets a fresh instance) and the body "Hello from DWCP!\n", the same answer
;; as the WAGI example examples/wagi/hello.wat.
(module
  (import "wasi:http/types@0.2.12" "[constructor]fields"
    (func $fields.new (result i32)))
  (import "wasi:http/types@0.2.12" "[method]fields.append"
    (func $fields.append (param i32 i32 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-response"
    (func $response.new (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.body"
    (func $response.body (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-body.write"
    (func $body.write (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]outgoing-body.finish"
    (func $body.finish (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]response-outparam.set"
    (func $outparam.set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush"
    (func $stream.write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream"
    (func $stream.drop (param i32)))
  (memory (export "memory") 1)
  (global $seen (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 1024) "content-type")
  (data (i32.const 1040) "text/plain")
  (data (i32.const 1056) "x-requests-seen")
  (data (i32.const 1088) "Hello from DWCP!\0a")
  ;; A bump allocator: the host writes an error's strings here, if any.
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $at i32)
    (local.set $at
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $at) (local.get 3)))
    (local.get $at))
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (local $headers i32) (local $response i32) (local $body i32) (local $stream i32)
    (global.set $seen (i32.add (global.get $seen) (i32.const 1)))
    ;; the count as one digit (9 and up show as `9`+)
    (i32.store8 (i32.const 1080)
      (i32.add (i32.const 48)
        (select (global.get $seen) (i32.const 9) (i32.lt_u (global.get $seen) (i32.const 9)))))
    (local.set $headers (call $fields.new))
    (call $fields.append (local.get $headers) (i32.const 1024) (i32.const 12)
      (i32.const 1040) (i32.const 10) (i32.const 0))
    (call $fields.append (local.get $headers) (i32.const 1056) (i32.const 15)
      (i32.const 1080) (i32.const 1) (i32.const 0))
    (local.set $response (call $response.new (local.get $headers)))
    ;; result<own<outgoing-body>> at 0: tag, then the handle at 4
    (call $response.body (local.get $response) (i32.const 0))
    (if (i32.load8_u (i32.const 0)) (then unreachable))
    (local.set $body (i32.load (i32.const 4)))
    (call $body.write (local.get $body) (i32.const 0))
    (if (i32.load8_u (i32.const 0)) (then unreachable))
    (local.set $stream (i32.load (i32.const 4)))
    ;; the head goes first (ok: tag 0), then the body streams
    (call $outparam.set (local.get $out) (i32.const 0) (local.get $response)
      (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $stream.write (local.get $stream) (i32.const 1088) (i32.const 17) (i32.const 16))
    (if (i32.load8_u (i32.const 16)) (then unreachable))
    (call $stream.drop (local.get $stream))
    (call $body.finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 16))
    (if (i32.load8_u (i32.const 16)) (then unreachable))))
