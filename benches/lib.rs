//! Shared helpers for the criterion benches (see imgproc.rs).
