//! The control plane: the API the CLI talks to, the on-disk state, IPAM, and the
//! interfaces it creates. Nothing here runs on the packet path: requests become typed
//! commands for the workers.

pub mod api;
pub mod capture;
pub mod endpoints;
pub mod error;
pub mod ids;
pub mod ipam;
mod lifecycle;
pub mod links;
pub mod manager;
pub mod metrics;
mod metrics_page;
mod offload_watch;
pub mod overlay;
pub mod router;
pub mod server;
pub mod state;
pub mod trace;
pub mod views;
