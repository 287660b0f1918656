;; hostile/start-loop.wat — hostile module: the wasm (start) function loops
;; forever, so instantiation itself never finishes. "run" () -> () is exported
;; but is never reached. The sandbox must apply its fuel / epoch deadline during
;; instantiation too and report a timeout-style error, never hang.
(module
  (memory (export "memory") 1)
  (func $init
    (loop $forever
      (br $forever)))
  (start $init)
  (func (export "run")))
