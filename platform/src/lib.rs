//! Plumbing shared by the Citaflow services: layered settings, JSON telemetry, Kafka clients,
//! the PostgreSQL pool and migrations, the operational HTTP endpoints (health, metrics) and
//! shutdown signalling. Business logic lives in the services, never here.

pub mod contract;
pub mod db;
pub mod kafka;
pub mod ops;
pub mod settings;
pub mod shutdown;
pub mod telemetry;

pub use settings::Settings;
