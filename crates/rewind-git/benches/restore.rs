//! Placeholder: the restore benchmark is being written.
fn main() {}
