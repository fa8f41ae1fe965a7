//! The `rewind` command.

fn main() {}
