//! Local testnets for Phalanx.
//!
//! - [`sim`]: a deterministic simulator over the real consensus engines.

pub mod sim;
