;; hostile/loop.wat — hostile module: infinite loop (CPU exhaustion).
;; Both "run" () -> () (raw ABI) and "_start" (WASI-style entry) spin forever
;; without calling anything. The sandbox must stop it with its fuel / epoch
;; deadline and report a timeout-style error, never hang.
(module
  (memory (export "memory") 1)
  (func $spin
    (loop $forever
      (br $forever)))
  (func (export "run") (call $spin))
  (func (export "_start") (call $spin)))
