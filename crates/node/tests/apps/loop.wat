;; loop.wat — a WAGI app that never answers: it spins until its deadline.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever (br $forever))))
