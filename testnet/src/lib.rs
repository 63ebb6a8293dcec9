//! Local testnets for Phalanx.
//!
//! - [`sim`]: a deterministic simulator over the real consensus engines.
//! - [`cluster`]: real `phalanx` processes on loopback, for end-to-end tests.

pub mod cluster;
pub mod sim;
