;; env.wat — a WAGI app that answers text/plain with every CGI variable it
;; was given, one "KEY=VALUE" per line (examples/env.wat behind a header).
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; layout: 0 count, 4 buf size, 16 iovecs (2 x 8 bytes), 32 nwritten,
  ;; 48 "\n", 1024 pointer array (count*4), then the string buffer.
  (data (i32.const 48) "\n")
  (data (i32.const 64) "content-type: text/plain\n\n")

  (func $write (param $ptr i32) (param $len i32)
    (local $w i32)
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store (i32.const 16) (local.get $ptr))
        (i32.store (i32.const 20) (local.get $len))
        (if (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32))
          (then (call $proc_exit (i32.const 1))))
        (local.set $w (i32.load (i32.const 32)))
        (if (i32.eqz (local.get $w)) (then (call $proc_exit (i32.const 1))))
        (local.set $ptr (i32.add (local.get $ptr) (local.get $w)))
        (local.set $len (i32.sub (local.get $len) (local.get $w)))
        (br $again))))

  (func (export "_start")
    (local $count i32) (local $bufsize i32) (local $ptrs i32) (local $buf i32)
    (local $end i32) (local $need i32) (local $i i32) (local $s i32) (local $p i32)
    (call $write (i32.const 64) (i32.const 26))
    (if (call $environ_sizes_get (i32.const 0) (i32.const 4))
      (then (call $proc_exit (i32.const 1))))
    (local.set $count (i32.load (i32.const 0)))
    ;; nothing to print (and skip environ_get: some hosts reject it when empty)
    (if (i32.eqz (local.get $count)) (then (return)))
    (local.set $bufsize (i32.load (i32.const 4)))
    (local.set $ptrs (i32.const 1024))
    (local.set $buf (i32.add (local.get $ptrs) (i32.shl (local.get $count) (i32.const 2))))
    (local.set $end (i32.add (local.get $buf) (local.get $bufsize)))
    ;; grow memory if the environment does not fit
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (local.set $need
          (i32.sub
            (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
            (memory.size)))
        (if (i32.eq (memory.grow (local.get $need)) (i32.const -1))
          (then (call $proc_exit (i32.const 1))))))
    (if (call $environ_get (local.get $ptrs) (local.get $buf))
      (then (call $proc_exit (i32.const 1))))
    (local.set $i (i32.const 0))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $s
          (i32.load (i32.add (local.get $ptrs) (i32.shl (local.get $i) (i32.const 2)))))
        ;; strlen
        (local.set $p (local.get $s))
        (block $nul
          (loop $scan
            (br_if $nul (i32.eqz (i32.load8_u (local.get $p))))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $scan)))
        (call $write (local.get $s) (i32.sub (local.get $p) (local.get $s)))
        (call $write (i32.const 48) (i32.const 1))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))))
