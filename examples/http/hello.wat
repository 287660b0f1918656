;; hello.wat — a wasi:http/incoming-handler component (WASI 0.2), generated from
;; hello.core.wat by scripts/build-http-examples.sh (wasm-tools 1.262.0, WIT of
;; wasmtime-wasi-http 48.0.8). Do not edit: edit hello.core.wat and regenerate.
(component
  (type $ty-wasi:io/error@0.2.12 (;0;)
    (instance
      (export (;0;) "error" (type (sub resource)))
    )
  )
  (import "wasi:io/error@0.2.12" (instance $wasi:io/error@0.2.12 (;0;) (type $ty-wasi:io/error@0.2.12)))
  (alias export $wasi:io/error@0.2.12 "error" (type $error (;1;)))
  (type $ty-wasi:io/streams@0.2.12 (;2;)
    (instance
      (export (;0;) "output-stream" (type (sub resource)))
      (alias outer 1 $error (type (;1;)))
      (export (;2;) "error" (type (eq 1)))
      (type (;3;) (own 2))
      (type (;4;) (variant (case "last-operation-failed" 3) (case "closed")))
      (export (;5;) "stream-error" (type (eq 4)))
      (type (;6;) (borrow 0))
      (type (;7;) (list u8))
      (type (;8;) (result (error 5)))
      (type (;9;) (func (param "self" 6) (param "contents" 7) (result 8)))
      (export (;0;) "[method]output-stream.blocking-write-and-flush" (func (type 9)))
    )
  )
  (import "wasi:io/streams@0.2.12" (instance $wasi:io/streams@0.2.12 (;1;) (type $ty-wasi:io/streams@0.2.12)))
  (alias export $wasi:io/streams@0.2.12 "output-stream" (type $output-stream (;3;)))
  (type $ty-wasi:http/types@0.2.12 (;4;)
    (instance
      (export (;0;) "fields" (type (sub resource)))
      (type (;1;) string)
      (export (;2;) "field-key" (type (eq 1)))
      (export (;3;) "field-name" (type (eq 2)))
      (type (;4;) (list u8))
      (export (;5;) "field-value" (type (eq 4)))
      (type (;6;) (variant (case "invalid-syntax") (case "forbidden") (case "immutable")))
      (export (;7;) "header-error" (type (eq 6)))
      (export (;8;) "headers" (type (eq 0)))
      (export (;9;) "outgoing-response" (type (sub resource)))
      (export (;10;) "outgoing-body" (type (sub resource)))
      (alias outer 1 $output-stream (type (;11;)))
      (export (;12;) "output-stream" (type (eq 11)))
      (export (;13;) "trailers" (type (eq 0)))
      (type (;14;) (option string))
      (type (;15;) (option u16))
      (type (;16;) (record (field "rcode" 14) (field "info-code" 15)))
      (export (;17;) "DNS-error-payload" (type (eq 16)))
      (type (;18;) (option u8))
      (type (;19;) (record (field "alert-id" 18) (field "alert-message" 14)))
      (export (;20;) "TLS-alert-received-payload" (type (eq 19)))
      (type (;21;) (option u32))
      (type (;22;) (record (field "field-name" 14) (field "field-size" 21)))
      (export (;23;) "field-size-payload" (type (eq 22)))
      (type (;24;) (option u64))
      (type (;25;) (option 23))
      (type (;26;) (variant (case "DNS-timeout") (case "DNS-error" 17) (case "destination-not-found") (case "destination-unavailable") (case "destination-IP-prohibited") (case "destination-IP-unroutable") (case "connection-refused") (case "connection-terminated") (case "connection-timeout") (case "connection-read-timeout") (case "connection-write-timeout") (case "connection-limit-reached") (case "TLS-protocol-error") (case "TLS-certificate-error") (case "TLS-alert-received" 20) (case "HTTP-request-denied") (case "HTTP-request-length-required") (case "HTTP-request-body-size" 24) (case "HTTP-request-method-invalid") (case "HTTP-request-URI-invalid") (case "HTTP-request-URI-too-long") (case "HTTP-request-header-section-size" 21) (case "HTTP-request-header-size" 25) (case "HTTP-request-trailer-section-size" 21) (case "HTTP-request-trailer-size" 23) (case "HTTP-response-incomplete") (case "HTTP-response-header-section-size" 21) (case "HTTP-response-header-size" 23) (case "HTTP-response-body-size" 24) (case "HTTP-response-trailer-section-size" 21) (case "HTTP-response-trailer-size" 23) (case "HTTP-response-transfer-coding" 14) (case "HTTP-response-content-coding" 14) (case "HTTP-response-timeout") (case "HTTP-upgrade-failed") (case "HTTP-protocol-error") (case "loop-detected") (case "configuration-error") (case "internal-error" 14)))
      (export (;27;) "error-code" (type (eq 26)))
      (export (;28;) "response-outparam" (type (sub resource)))
      (export (;29;) "incoming-request" (type (sub resource)))
      (type (;30;) (own 0))
      (type (;31;) (func (result 30)))
      (export (;0;) "[constructor]fields" (func (type 31)))
      (type (;32;) (borrow 0))
      (type (;33;) (result (error 7)))
      (type (;34;) (func (param "self" 32) (param "name" 3) (param "value" 5) (result 33)))
      (export (;1;) "[method]fields.append" (func (type 34)))
      (type (;35;) (own 28))
      (type (;36;) (own 9))
      (type (;37;) (result 36 (error 27)))
      (type (;38;) (func (param "param" 35) (param "response" 37)))
      (export (;2;) "[static]response-outparam.set" (func (type 38)))
      (type (;39;) (own 8))
      (type (;40;) (func (param "headers" 39) (result 36)))
      (export (;3;) "[constructor]outgoing-response" (func (type 40)))
      (type (;41;) (borrow 9))
      (type (;42;) (own 10))
      (type (;43;) (result 42))
      (type (;44;) (func (param "self" 41) (result 43)))
      (export (;4;) "[method]outgoing-response.body" (func (type 44)))
      (type (;45;) (borrow 10))
      (type (;46;) (own 12))
      (type (;47;) (result 46))
      (type (;48;) (func (param "self" 45) (result 47)))
      (export (;5;) "[method]outgoing-body.write" (func (type 48)))
      (type (;49;) (own 13))
      (type (;50;) (option 49))
      (type (;51;) (result (error 27)))
      (type (;52;) (func (param "this" 42) (param "trailers" 50) (result 51)))
      (export (;6;) "[static]outgoing-body.finish" (func (type 52)))
    )
  )
  (import "wasi:http/types@0.2.12" (instance $wasi:http/types@0.2.12 (;2;) (type $ty-wasi:http/types@0.2.12)))
  (core module $main (;0;)
    (type (;0;) (func (result i32)))
    (type (;1;) (func (param i32 i32 i32 i32 i32 i32)))
    (type (;2;) (func (param i32) (result i32)))
    (type (;3;) (func (param i32 i32)))
    (type (;4;) (func (param i32 i32 i32 i32)))
    (type (;5;) (func (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
    (type (;6;) (func (param i32)))
    (type (;7;) (func (param i32 i32 i32 i32) (result i32)))
    (import "wasi:http/types@0.2.12" "[constructor]fields" (func $fields.new (;0;) (type 0) (result i32)))
    (import "wasi:http/types@0.2.12" "[method]fields.append" (func $fields.append (;1;) (type 1) (param i32 i32 i32 i32 i32 i32)))
    (import "wasi:http/types@0.2.12" "[constructor]outgoing-response" (func $response.new (;2;) (type 2) (param i32) (result i32)))
    (import "wasi:http/types@0.2.12" "[method]outgoing-response.body" (func $response.body (;3;) (type 3) (param i32 i32)))
    (import "wasi:http/types@0.2.12" "[method]outgoing-body.write" (func $body.write (;4;) (type 3) (param i32 i32)))
    (import "wasi:http/types@0.2.12" "[static]outgoing-body.finish" (func $body.finish (;5;) (type 4) (param i32 i32 i32 i32)))
    (import "wasi:http/types@0.2.12" "[static]response-outparam.set" (func $outparam.set (;6;) (type 5) (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
    (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush" (func $stream.write (;7;) (type 4) (param i32 i32 i32 i32)))
    (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream" (func $stream.drop (;8;) (type 6) (param i32)))
    (memory (;0;) 1)
    (global $seen (;0;) (mut i32) i32.const 0)
    (global $heap (;1;) (mut i32) i32.const 4096)
    (export "memory" (memory 0))
    (export "cabi_realloc" (func 9))
    (export "wasi:http/incoming-handler@0.2.12#handle" (func 10))
    (func (;9;) (type 7) (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      global.get $heap
      local.get 2
      i32.const 1
      i32.sub
      i32.add
      i32.const 0
      local.get 2
      i32.sub
      i32.and
      local.set $at
      local.get $at
      local.get 3
      i32.add
      global.set $heap
      local.get $at
    )
    (func (;10;) (type 3) (param $request i32) (param $out i32)
      (local $headers i32) (local $response i32) (local $body i32) (local $stream i32)
      global.get $seen
      i32.const 1
      i32.add
      global.set $seen
      i32.const 1080
      i32.const 48
      global.get $seen
      i32.const 9
      global.get $seen
      i32.const 9
      i32.lt_u
      select
      i32.add
      i32.store8
      call $fields.new
      local.set $headers
      local.get $headers
      i32.const 1024
      i32.const 12
      i32.const 1040
      i32.const 10
      i32.const 0
      call $fields.append
      local.get $headers
      i32.const 1056
      i32.const 15
      i32.const 1080
      i32.const 1
      i32.const 0
      call $fields.append
      local.get $headers
      call $response.new
      local.set $response
      local.get $response
      i32.const 0
      call $response.body
      i32.const 0
      i32.load8_u
      if ;; label = @1
        unreachable
      end
      i32.const 4
      i32.load
      local.set $body
      local.get $body
      i32.const 0
      call $body.write
      i32.const 0
      i32.load8_u
      if ;; label = @1
        unreachable
      end
      i32.const 4
      i32.load
      local.set $stream
      local.get $out
      i32.const 0
      local.get $response
      i32.const 0
      i64.const 0
      i32.const 0
      i32.const 0
      i32.const 0
      i32.const 0
      call $outparam.set
      local.get $stream
      i32.const 1088
      i32.const 17
      i32.const 16
      call $stream.write
      i32.const 16
      i32.load8_u
      if ;; label = @1
        unreachable
      end
      local.get $stream
      call $stream.drop
      local.get $body
      i32.const 0
      i32.const 0
      i32.const 16
      call $body.finish
      i32.const 16
      i32.load8_u
      if ;; label = @1
        unreachable
      end
    )
    (data (;0;) (i32.const 1024) "content-type")
    (data (;1;) (i32.const 1040) "text/plain")
    (data (;2;) (i32.const 1056) "x-requests-seen")
    (data (;3;) (i32.const 1088) "Hello from DWCP!\0a")
    (@producers
      (processed-by "wit-component" "0.262.0")
    )
  )
  (core module $wit-component-shim-module (;1;)
    (type (;0;) (func (param i32 i32 i32 i32 i32 i32)))
    (type (;1;) (func (param i32 i32)))
    (type (;2;) (func (param i32 i32 i32 i32)))
    (type (;3;) (func (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
    (table (;0;) 6 6 funcref)
    (export "0" (func $"indirect-wasi:http/types@0.2.12-[method]fields.append"))
    (export "1" (func $"indirect-wasi:http/types@0.2.12-[method]outgoing-response.body"))
    (export "2" (func $"indirect-wasi:http/types@0.2.12-[method]outgoing-body.write"))
    (export "3" (func $"indirect-wasi:http/types@0.2.12-[static]outgoing-body.finish"))
    (export "4" (func $"indirect-wasi:http/types@0.2.12-[static]response-outparam.set"))
    (export "5" (func $"indirect-wasi:io/streams@0.2.12-[method]output-stream.blocking-write-and-flush"))
    (export "$imports" (table 0))
    (func $"indirect-wasi:http/types@0.2.12-[method]fields.append" (;0;) (type 0) (param i32 i32 i32 i32 i32 i32)
      local.get 0
      local.get 1
      local.get 2
      local.get 3
      local.get 4
      local.get 5
      i32.const 0
      call_indirect (type 0)
    )
    (func $"indirect-wasi:http/types@0.2.12-[method]outgoing-response.body" (;1;) (type 1) (param i32 i32)
      local.get 0
      local.get 1
      i32.const 1
      call_indirect (type 1)
    )
    (func $"indirect-wasi:http/types@0.2.12-[method]outgoing-body.write" (;2;) (type 1) (param i32 i32)
      local.get 0
      local.get 1
      i32.const 2
      call_indirect (type 1)
    )
    (func $"indirect-wasi:http/types@0.2.12-[static]outgoing-body.finish" (;3;) (type 2) (param i32 i32 i32 i32)
      local.get 0
      local.get 1
      local.get 2
      local.get 3
      i32.const 3
      call_indirect (type 2)
    )
    (func $"indirect-wasi:http/types@0.2.12-[static]response-outparam.set" (;4;) (type 3) (param i32 i32 i32 i32 i64 i32 i32 i32 i32)
      local.get 0
      local.get 1
      local.get 2
      local.get 3
      local.get 4
      local.get 5
      local.get 6
      local.get 7
      local.get 8
      i32.const 4
      call_indirect (type 3)
    )
    (func $"indirect-wasi:io/streams@0.2.12-[method]output-stream.blocking-write-and-flush" (;5;) (type 2) (param i32 i32 i32 i32)
      local.get 0
      local.get 1
      local.get 2
      local.get 3
      i32.const 5
      call_indirect (type 2)
    )
    (@producers
      (processed-by "wit-component" "0.262.0")
    )
  )
  (core instance $wit-component-shim-instance (;0;) (instantiate $wit-component-shim-module))
  (alias export $wasi:http/types@0.2.12 "incoming-request" (type $incoming-request (;5;)))
  (alias export $wasi:http/types@0.2.12 "response-outparam" (type $response-outparam (;6;)))
  (alias export $wasi:http/types@0.2.12 "[constructor]fields" (func $"[constructor]fields" (;0;)))
  (core func $"[constructor]fields" (;0;) (canon lower (func $"[constructor]fields")))
  (alias core export $wit-component-shim-instance "0" (core func $"indirect-wasi:http/types@0.2.12-[method]fields.append" (;1;)))
  (alias export $wasi:http/types@0.2.12 "[constructor]outgoing-response" (func $"[constructor]outgoing-response" (;1;)))
  (core func $"[constructor]outgoing-response" (;2;) (canon lower (func $"[constructor]outgoing-response")))
  (alias core export $wit-component-shim-instance "1" (core func $"indirect-wasi:http/types@0.2.12-[method]outgoing-response.body" (;3;)))
  (alias core export $wit-component-shim-instance "2" (core func $"indirect-wasi:http/types@0.2.12-[method]outgoing-body.write" (;4;)))
  (alias core export $wit-component-shim-instance "3" (core func $"indirect-wasi:http/types@0.2.12-[static]outgoing-body.finish" (;5;)))
  (alias core export $wit-component-shim-instance "4" (core func $"indirect-wasi:http/types@0.2.12-[static]response-outparam.set" (;6;)))
  (core instance $wasi:http/types@0.2.12 (;1;)
    (export "[constructor]fields" (func $"[constructor]fields"))
    (export "[method]fields.append" (func $"indirect-wasi:http/types@0.2.12-[method]fields.append"))
    (export "[constructor]outgoing-response" (func $"[constructor]outgoing-response"))
    (export "[method]outgoing-response.body" (func $"indirect-wasi:http/types@0.2.12-[method]outgoing-response.body"))
    (export "[method]outgoing-body.write" (func $"indirect-wasi:http/types@0.2.12-[method]outgoing-body.write"))
    (export "[static]outgoing-body.finish" (func $"indirect-wasi:http/types@0.2.12-[static]outgoing-body.finish"))
    (export "[static]response-outparam.set" (func $"indirect-wasi:http/types@0.2.12-[static]response-outparam.set"))
  )
  (alias core export $wit-component-shim-instance "5" (core func $"indirect-wasi:io/streams@0.2.12-[method]output-stream.blocking-write-and-flush" (;7;)))
  (alias export $wasi:io/streams@0.2.12 "output-stream" (type $"#type7 output-stream" (@name "output-stream") (;7;)))
  (core func $resource.drop (;8;) (canon resource.drop $"#type7 output-stream"))
  (core instance $wasi:io/streams@0.2.12 (;2;)
    (export "[method]output-stream.blocking-write-and-flush" (func $"indirect-wasi:io/streams@0.2.12-[method]output-stream.blocking-write-and-flush"))
    (export "[resource-drop]output-stream" (func $resource.drop))
  )
  (core instance $main (;3;) (instantiate $main
      (with "wasi:http/types@0.2.12" (instance $wasi:http/types@0.2.12))
      (with "wasi:io/streams@0.2.12" (instance $wasi:io/streams@0.2.12))
    )
  )
  (alias core export $main "memory" (core memory $memory (;0;)))
  (core module $wit-component-fixup (;2;)
    (type (;0;) (func (param i32 i32 i32 i32 i32 i32)))
    (type (;1;) (func (param i32 i32)))
    (type (;2;) (func (param i32 i32 i32 i32)))
    (type (;3;) (func (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
    (import "actual" "0" (func $0 (;0;) (type 0) (param i32 i32 i32 i32 i32 i32)))
    (import "actual" "1" (func $1 (;1;) (type 1) (param i32 i32)))
    (import "actual" "2" (func $2 (;2;) (type 1) (param i32 i32)))
    (import "actual" "3" (func $3 (;3;) (type 2) (param i32 i32 i32 i32)))
    (import "actual" "4" (func $4 (;4;) (type 3) (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
    (import "actual" "5" (func $5 (;5;) (type 2) (param i32 i32 i32 i32)))
    (import "shim" "$imports" (table (;0;) 6 6 funcref))
    (elem (;0;) (i32.const 0) func $0 $1 $2 $3 $4 $5)
    (@producers
      (processed-by "wit-component" "0.262.0")
    )
  )
  (alias export $wasi:http/types@0.2.12 "[method]fields.append" (func $"[method]fields.append" (;2;)))
  (core func $"#core-func9 indirect-wasi:http/types@0.2.12-[method]fields.append" (@name "indirect-wasi:http/types@0.2.12-[method]fields.append") (;9;) (canon lower (func $"[method]fields.append") (memory $memory) string-encoding=utf8))
  (alias export $wasi:http/types@0.2.12 "[method]outgoing-response.body" (func $"[method]outgoing-response.body" (;3;)))
  (core func $"#core-func10 indirect-wasi:http/types@0.2.12-[method]outgoing-response.body" (@name "indirect-wasi:http/types@0.2.12-[method]outgoing-response.body") (;10;) (canon lower (func $"[method]outgoing-response.body") (memory $memory)))
  (alias export $wasi:http/types@0.2.12 "[method]outgoing-body.write" (func $"[method]outgoing-body.write" (;4;)))
  (core func $"#core-func11 indirect-wasi:http/types@0.2.12-[method]outgoing-body.write" (@name "indirect-wasi:http/types@0.2.12-[method]outgoing-body.write") (;11;) (canon lower (func $"[method]outgoing-body.write") (memory $memory)))
  (alias export $wasi:http/types@0.2.12 "[static]outgoing-body.finish" (func $"[static]outgoing-body.finish" (;5;)))
  (alias core export $main "cabi_realloc" (core func $cabi_realloc (;12;)))
  (core func $"#core-func13 indirect-wasi:http/types@0.2.12-[static]outgoing-body.finish" (@name "indirect-wasi:http/types@0.2.12-[static]outgoing-body.finish") (;13;) (canon lower (func $"[static]outgoing-body.finish") (memory $memory) (realloc $cabi_realloc) string-encoding=utf8))
  (alias export $wasi:http/types@0.2.12 "[static]response-outparam.set" (func $"[static]response-outparam.set" (;6;)))
  (core func $"#core-func14 indirect-wasi:http/types@0.2.12-[static]response-outparam.set" (@name "indirect-wasi:http/types@0.2.12-[static]response-outparam.set") (;14;) (canon lower (func $"[static]response-outparam.set") (memory $memory) string-encoding=utf8))
  (alias export $wasi:io/streams@0.2.12 "[method]output-stream.blocking-write-and-flush" (func $"[method]output-stream.blocking-write-and-flush" (;7;)))
  (core func $"#core-func15 indirect-wasi:io/streams@0.2.12-[method]output-stream.blocking-write-and-flush" (@name "indirect-wasi:io/streams@0.2.12-[method]output-stream.blocking-write-and-flush") (;15;) (canon lower (func $"[method]output-stream.blocking-write-and-flush") (memory $memory)))
  (core instance $actual (;4;)
    (export "0" (func $"#core-func9 indirect-wasi:http/types@0.2.12-[method]fields.append"))
    (export "1" (func $"#core-func10 indirect-wasi:http/types@0.2.12-[method]outgoing-response.body"))
    (export "2" (func $"#core-func11 indirect-wasi:http/types@0.2.12-[method]outgoing-body.write"))
    (export "3" (func $"#core-func13 indirect-wasi:http/types@0.2.12-[static]outgoing-body.finish"))
    (export "4" (func $"#core-func14 indirect-wasi:http/types@0.2.12-[static]response-outparam.set"))
    (export "5" (func $"#core-func15 indirect-wasi:io/streams@0.2.12-[method]output-stream.blocking-write-and-flush"))
  )
  (core instance $fixup (;5;) (instantiate $wit-component-fixup
      (with "actual" (instance $actual))
      (with "shim" (instance $wit-component-shim-instance))
    )
  )
  (type (;8;) (own $incoming-request))
  (type (;9;) (own $response-outparam))
  (type (;10;) (func (param "request" 8) (param "response-out" 9)))
  (alias core export $main "wasi:http/incoming-handler@0.2.12#handle" (core func $wasi:http/incoming-handler@0.2.12#handle (;16;)))
  (func $handle (;8;) (type 10) (canon lift (core func $wasi:http/incoming-handler@0.2.12#handle)))
  (component $wasi:http/incoming-handler@0.2.12-shim-component (;0;)
    (import "import-type-incoming-request" (type (;0;) (sub resource)))
    (import "import-type-response-outparam" (type (;1;) (sub resource)))
    (import "import-type-incoming-request0" (type (;2;) (eq 0)))
    (type (;3;) (own 2))
    (import "import-type-response-outparam0" (type (;4;) (eq 1)))
    (type (;5;) (own 4))
    (type (;6;) (func (param "request" 3) (param "response-out" 5)))
    (import "import-func-handle" (func (;0;) (type 6)))
    (export (;7;) "incoming-request" (type 0))
    (export (;8;) "response-outparam" (type 1))
    (type (;9;) (own 7))
    (type (;10;) (own 8))
    (type (;11;) (func (param "request" 9) (param "response-out" 10)))
    (export (;1;) "handle" (func 0) (func (type 11)))
  )
  (instance $wasi:http/incoming-handler@0.2.12-shim-instance (;3;) (instantiate $wasi:http/incoming-handler@0.2.12-shim-component
      (with "import-func-handle" (func $handle))
      (with "import-type-incoming-request" (type $incoming-request))
      (with "import-type-response-outparam" (type $response-outparam))
      (with "import-type-incoming-request0" (type $incoming-request))
      (with "import-type-response-outparam0" (type $response-outparam))
    )
  )
  (export $wasi:http/incoming-handler@0.2.12 (;4;) "wasi:http/incoming-handler@0.2.12" (instance $wasi:http/incoming-handler@0.2.12-shim-instance))
  (@producers
    (processed-by "wit-component" "0.262.0")
  )
)
