;; The hop action of experiment C as a WASI preview-1 command. As head (no headReturnHr in the
;; arguments) it prints its arguments with headReturnHr (a string of nanoseconds) and
;; headReturnWall (ms) added; as tail it prints {"comTimeMs": its start - headReturnHr in ms,
;; "clock":"realtime","size": length of payload}. Both read WASI's realtime clock: wasmtime's
;; monotonic clock counts from the creation of each instance's context, so a head's and a
;; tail's readings of it do not compare.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  ;; @common
  (data (i32.const 128) "\"headReturnHr\"")
  (data (i32.const 160) "\"payload\"")
  (data (i32.const 192) "{\"comTimeMs\":")
  (data (i32.const 224) ",\"clock\":\"realtime\",\"size\":")
  (data (i32.const 256) "\"headReturnHr\":\"")
  (data (i32.const 288) "\",\"headReturnWall\":")

  ;; WASI's realtime clock, ns.
  (func $now (result i64)
    (if (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 16)) (then unreachable))
    (i64.load (i32.const 16)))

  (func $tail (param $start i64)
    (local $head i64)
    (local $d i64)
    (local $i i32)
    (local $size i32)
    (drop (call $string_value (i32.const 128) (i32.const 14)))
    (local.set $i (global.get $s0))
    (block $end
      (loop $digit
        (br_if $end (i32.ge_u (local.get $i) (global.get $s1)))
        (local.set $head
          (i64.add (i64.mul (local.get $head) (i64.const 10))
                   (i64.extend_i32_u (i32.sub (call $in (local.get $i)) (i32.const 48)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $digit)))
    (if (call $string_value (i32.const 160) (i32.const 9))
      (then (local.set $size (i32.sub (global.get $s1) (global.get $s0)))))
    (call $emit (i32.const 192) (i32.const 13))
    (local.set $d (i64.sub (local.get $start) (local.get $head)))
    (if (i64.lt_s (local.get $d) (i64.const 0))
      (then (call $emit_byte (i32.const 45))
            (local.set $d (i64.sub (i64.const 0) (local.get $d)))))
    (call $emit_u64 (i64.div_u (local.get $d) (i64.const 1000000)) (i32.const 1))
    (call $emit_byte (i32.const 46))
    (call $emit_u64 (i64.rem_u (local.get $d) (i64.const 1000000)) (i32.const 6))
    (call $emit (i32.const 224) (i32.const 27))
    (call $emit_u64 (i64.extend_i32_u (local.get $size)) (i32.const 1))
    (call $emit_byte (i32.const 125)))

  (func $head
    (local $end i32)
    (local $p i32)
    (local $c i32)
    (local $t i64)
    ;; The arguments up to their closing brace.
    (local.set $end (global.get $in_len))
    (loop $back
      (if (i32.eqz (local.get $end)) (then unreachable))
      (local.set $end (i32.sub (local.get $end) (i32.const 1)))
      (br_if $back (i32.ne (call $in (local.get $end)) (i32.const 125))))
    (call $emit (i32.const 1024) (local.get $end))
    ;; A comma unless the object is empty.
    (local.set $p (local.get $end))
    (block $found
      (loop $ws
        (br_if $found (i32.eqz (local.get $p)))
        (local.set $c (call $in (i32.sub (local.get $p) (i32.const 1))))
        (br_if $found (i32.gt_u (local.get $c) (i32.const 32)))
        (local.set $p (i32.sub (local.get $p) (i32.const 1)))
        (br $ws)))
    (if (i32.ne (local.get $c) (i32.const 123)) (then (call $emit_byte (i32.const 44))))
    (local.set $t (call $now))
    (call $emit (i32.const 256) (i32.const 16))
    (call $emit_u64 (local.get $t) (i32.const 1))
    (call $emit (i32.const 288) (i32.const 19))
    (call $emit_u64 (i64.div_u (local.get $t) (i64.const 1000000)) (i32.const 1))
    (call $emit_byte (i32.const 125)))

  (func (export "_start")
    (local $start i64)
    (call $read_stdin)
    (local.set $start (call $now))
    (if (i32.ge_s (call $find (i32.const 128) (i32.const 14)) (i32.const 0))
      (then (call $tail (local.get $start)))
      (else (call $head)))
    (call $flush)))
