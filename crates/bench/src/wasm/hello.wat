;; The bench's hello action as a WASI preview-1 command: reads the arguments object on stdin and
;; prints {"payload":"Hello, <name>!"} (name "World" when the arguments have none).
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  ;; @common
  (data (i32.const 128) "\"name\"")
  (data (i32.const 144) "{\"payload\":\"Hello, ")
  (data (i32.const 176) "World")
  (data (i32.const 192) "!\"}")
  (func (export "_start")
    (call $read_stdin)
    (call $emit (i32.const 144) (i32.const 19))
    (if (call $string_value (i32.const 128) (i32.const 6))
      (then (call $emit (i32.add (i32.const 1024) (global.get $s0))
                        (i32.sub (global.get $s1) (global.get $s0))))
      (else (call $emit (i32.const 176) (i32.const 5))))
    (call $emit (i32.const 192) (i32.const 3))
    (call $flush)))
