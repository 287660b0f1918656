;; noop.wat — DWCP raw-ABI module: the cold-start benchmark.
;; The sandbox should instantiate it and call "run" () -> (); it does nothing
;; and must return immediately with no output.
(module
  (memory (export "memory") 1)
  (func (export "run")))
