;; trap.wat — a WAGI app that traps (`unreachable`) before writing anything.
(module
  (memory (export "memory") 1)
  (func (export "_start") unreachable))
