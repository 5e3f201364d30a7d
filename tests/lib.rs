//! End-to-end tests live in `tests/tests/`; this library holds the helpers they share.
