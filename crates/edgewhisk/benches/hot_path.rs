//! Criterion microbenchmarks of edgewhisk's hot path (placeholder being filled in).

fn main() {}
