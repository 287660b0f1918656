;; trap.core.wat — the core module of examples/http/trap.wat, a
;; wasi:http/incoming-handler component that traps on every request (the
;; failing version of the breaker test, like tests/apps/trap.wat for WAGI).
(module
  (memory (export "memory") 1)
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param i32 i32)
    unreachable))
