//! chan (in progress)
