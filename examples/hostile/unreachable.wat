;; hostile/unreachable.wat — hostile module: immediate trap.
;; Both "run" () -> () and "_start" execute `unreachable`. The sandbox must
;; report a clean "unreachable" trap error and stay healthy for the next call.
(module
  (memory (export "memory") 1)
  (func (export "run") unreachable)
  (func (export "_start") unreachable))
