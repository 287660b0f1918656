;; hostile/wasi-import.wat — hostile module: requests capabilities it was not
;; granted. It imports "wasi_snapshot_preview1" "path_open" (filesystem access)
;; and a bogus "env" "steal_secrets" (param i32) (result i32) that no host
;; provides, and exports "run" () -> () which never calls them. The sandbox
;; must refuse to instantiate it with a clear error naming the ungranted or
;; unknown import(s), not a generic link failure.
(module
  ;; path_open(fd, dirflags, path_ptr, path_len, oflags, fs_rights_base: i64,
  ;;           fs_rights_inheriting: i64, fdflags, opened_fd_ptr) -> errno
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "env" "steal_secrets"
    (func $steal_secrets (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run")))
