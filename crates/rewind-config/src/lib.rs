//! Configuration: built-in defaults, TOML file, REWIND__SECTION__KEY environment; secrets redacted.

#![forbid(unsafe_code)]
