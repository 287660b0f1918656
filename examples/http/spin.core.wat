;; spin.core.wat — the core module of examples/http/spin.wat, a
;; wasi:http/incoming-handler component whose handler never returns: the
;; gateway must stop it at its deadline (the hostile example of the
;; component format, like examples/hostile/loop.wat for modules).
(module
  (memory (export "memory") 1)
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param i32 i32)
    (loop $forever (br $forever))))
