//! context (in progress)
