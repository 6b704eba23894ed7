//! MongoDB store (in progress).
