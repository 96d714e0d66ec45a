  ;; Spliced into hello.wat and hop.wat where they say `;; @common` (WAT has no include).
  ;; Memory: 0..8 an iovec, 8..12 a byte count, 16..24 a clock reading, 32..64 decimal
  ;; digits, 128..1024 the modules' constant strings, 1024.. stdin, then the output.
  (memory (export "memory") 1)
  ;; Bytes of stdin read to 1024.
  (global $in_len (mut i32) (i32.const 0))
  ;; The output: [$out_start, $out).
  (global $out_start (mut i32) (i32.const 0))
  (global $out (mut i32) (i32.const 0))
  ;; A string value found by $string_value: input offsets [$s0, $s1).
  (global $s0 (mut i32) (i32.const 0))
  (global $s1 (mut i32) (i32.const 0))

  ;; Makes [0, $end) addressable, growing the memory in steps of 1 MiB.
  (func $reserve (param $end i32)
    (block $ok
      (loop $grow
        (br_if $ok (i32.le_u (local.get $end) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1)) (then unreachable))
        (br $grow))))

  ;; Reads stdin to its end into memory at 1024; the output starts after it.
  (func $read_stdin
    (local $n i32)
    (loop $more
      (call $reserve (i32.add (i32.add (i32.const 1024) (global.get $in_len)) (i32.const 65536)))
      (i32.store (i32.const 0) (i32.add (i32.const 1024) (global.get $in_len)))
      (i32.store (i32.const 4) (i32.const 65536))
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
        (then unreachable))
      (local.set $n (i32.load (i32.const 8)))
      (global.set $in_len (i32.add (global.get $in_len) (local.get $n)))
      (br_if $more (local.get $n)))
    (global.set $out_start
      (i32.and (i32.add (i32.add (i32.const 1024) (global.get $in_len)) (i32.const 7)) (i32.const -8)))
    (global.set $out (global.get $out_start)))

  ;; The input byte at offset $i.
  (func $in (param $i i32) (result i32)
    (i32.load8_u (i32.add (i32.const 1024) (local.get $i))))

  ;; Appends the $len bytes at $src to the output.
  (func $emit (param $src i32) (param $len i32)
    (call $reserve (i32.add (global.get $out) (local.get $len)))
    (memory.copy (global.get $out) (local.get $src) (local.get $len))
    (global.set $out (i32.add (global.get $out) (local.get $len))))

  ;; Appends one byte to the output.
  (func $emit_byte (param $b i32)
    (call $reserve (i32.add (global.get $out) (i32.const 1)))
    (i32.store8 (global.get $out) (local.get $b))
    (global.set $out (i32.add (global.get $out) (i32.const 1))))

  ;; Appends $v in decimal, zero-padded to at least $width digits.
  (func $emit_u64 (param $v i64) (param $width i32)
    (local $p i32)
    (local.set $p (i32.const 64))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (local.set $width (i32.sub (local.get $width) (i32.const 1)))
      (br_if $digit (i64.ne (local.get $v) (i64.const 0)))
      (br_if $digit (i32.gt_s (local.get $width) (i32.const 0))))
    (call $emit (local.get $p) (i32.sub (i32.const 64) (local.get $p))))

  ;; Writes the output to stdout.
  (func $flush
    (local $p i32)
    (local.set $p (global.get $out_start))
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $p) (global.get $out)))
        (i32.store (i32.const 0) (local.get $p))
        (i32.store (i32.const 4) (i32.sub (global.get $out) (local.get $p)))
        (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))
          (then unreachable))
        (local.set $p (i32.add (local.get $p) (i32.load (i32.const 8))))
        (br $more))))

  ;; The input offset of the first occurrence of the $len bytes at $needle, or -1.
  (func $find (param $needle i32) (param $len i32) (result i32)
    (local $i i32)
    (local $j i32)
    (block $none
      (loop $at
        (br_if $none (i32.gt_u (i32.add (local.get $i) (local.get $len)) (global.get $in_len)))
        (local.set $j (i32.const 0))
        (block $mismatch
          (loop $cmp
            (if (i32.eq (local.get $j) (local.get $len)) (then (return (local.get $i))))
            (br_if $mismatch
              (i32.ne (call $in (i32.add (local.get $i) (local.get $j)))
                      (i32.load8_u (i32.add (local.get $needle) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $cmp)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $at)))
    (i32.const -1))

  ;; The string value of the first key spelled as the $len bytes at $key (quotes included):
  ;; sets [$s0, $s1) to its content, escapes kept as they are; 0 when there is none. A scan
  ;; for the bench's own flat argument objects, not a JSON parser.
  (func $string_value (param $key i32) (param $len i32) (result i32)
    (local $i i32)
    (local $c i32)
    (local.set $i (call $find (local.get $key) (local.get $len)))
    (if (i32.lt_s (local.get $i) (i32.const 0)) (then (return (i32.const 0))))
    (local.set $i (i32.add (local.get $i) (local.get $len)))
    (block $quote
      (loop $skip
        (if (i32.ge_u (local.get $i) (global.get $in_len)) (then (return (i32.const 0))))
        (local.set $c (call $in (local.get $i)))
        (br_if $quote (i32.eq (local.get $c) (i32.const 34)))
        (if (i32.eqz (i32.or (i32.or (i32.eq (local.get $c) (i32.const 58))
                                     (i32.eq (local.get $c) (i32.const 32)))
                             (i32.or (i32.eq (local.get $c) (i32.const 10))
                                     (i32.or (i32.eq (local.get $c) (i32.const 13))
                                             (i32.eq (local.get $c) (i32.const 9))))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $skip)))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (global.set $s0 (local.get $i))
    (loop $scan
      (if (i32.ge_u (local.get $i) (global.get $in_len)) (then (return (i32.const 0))))
      (local.set $c (call $in (local.get $i)))
      (if (i32.eq (local.get $c) (i32.const 34))
        (then (global.set $s1 (local.get $i)) (return (i32.const 1))))
      (local.set $i (i32.add (local.get $i)
        (select (i32.const 2) (i32.const 1) (i32.eq (local.get $c) (i32.const 92)))))
      (br $scan))
    (i32.const 0))
