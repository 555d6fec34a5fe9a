//! Shared set-up of the tests on real programs.

#![allow(dead_code)] // each test binary uses its part

pub mod nginx;
pub mod pm2;

/// The Godel seed's stable and canary versions, for the deployer suite.
pub fn seed_versions() -> ops_core::testkit::DeployerFixture {
    ops_core::testkit::DeployerFixture {
        version_a: "v2.0.0".into(),
        version_b: "v2.1.0".into(),
    }
}
