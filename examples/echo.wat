;; echo.wat — WASI preview1 command module.
;; The sandbox should run "_start" with some stdin; it copies all of stdin to
;; stdout (fd_read in a loop until it reads 0 bytes, fd_write of each chunk,
;; handling short writes) and exits 0. Exits 1 via proc_exit on an I/O error.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; layout: read iovec at 0, nread at 8, write iovec at 16, nwritten at 24,
  ;; buffer at 1024 .. 1024+32768
  (func (export "_start")
    (local $n i32) (local $off i32) (local $w i32)
    (block $eof
      (loop $read
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 32768))
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 1))))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $off (i32.const 0))
        (block $written
          (loop $write
            (br_if $written (i32.ge_u (local.get $off) (local.get $n)))
            (i32.store (i32.const 16) (i32.add (i32.const 1024) (local.get $off)))
            (i32.store (i32.const 20) (i32.sub (local.get $n) (local.get $off)))
            (if (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))
              (then (call $proc_exit (i32.const 1))))
            (local.set $w (i32.load (i32.const 24)))
            (if (i32.eqz (local.get $w)) (then (call $proc_exit (i32.const 1))))
            (local.set $off (i32.add (local.get $off) (local.get $w)))
            (br $write)))
        (br $read)))))
