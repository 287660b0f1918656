;; hostile/recursion.wat — hostile module: unbounded recursion.
;; "run" () -> () calls $recurse, which calls itself forever; it keeps a local
;; live across the call and adds to the result so it cannot be a tail call.
;; The sandbox must report a stack overflow trap (wasm stack limit), not crash.
(module
  (memory (export "memory") 1)
  (func $recurse (param $n i32) (result i32)
    (local $keep i32)
    (local.set $keep (i32.add (local.get $n) (i32.const 1)))
    (i32.add
      (call $recurse (local.get $keep))
      (local.get $keep)))
  (func (export "run")
    (drop (call $recurse (i32.const 0)))))
