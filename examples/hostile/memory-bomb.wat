;; hostile/memory-bomb.wat — hostile module: memory exhaustion.
;; "run" () -> () calls memory.grow by 16 pages (1 MiB) in an endless loop,
;; ignoring the result (so if growth failed silently with -1 it would spin
;; forever). Memory starts at 1 page with no declared maximum. The sandbox's
;; memory limiter must refuse growth past its limit and trap (wasmtime:
;; ResourceLimiter + trap_on_grow_failure), reporting a memory-limit error.
(module
  (memory (export "memory") 1)
  (func (export "run")
    (loop $forever
      (drop (memory.grow (i32.const 16)))
      ;; touch the last byte so the pages are really used
      (i32.store8
        (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 1))
        (i32.const 1))
      (br $forever))))
