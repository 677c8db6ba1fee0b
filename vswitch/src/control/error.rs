//! What a control request can fail with. Every message is one line that says what is
//! wrong and, where there is one, what to do instead.

use super::ipam::IpamError;
use super::links::LinkError;
use super::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("network '{0}' not found (see `vswitch network ls`)")]
    NoSuchNetwork(String),
    #[error("network '{0}' already exists: choose another name or remove it first")]
    NetworkExists(String),
    #[error(
        "endpoint '{endpoint}' not found in network '{network}' (see `vswitch network inspect {network}`)"
    )]
    NoSuchEndpoint { network: String, endpoint: String },
    #[error(
        "endpoint '{endpoint}' already exists in network '{network}': pass --name to pick another"
    )]
    EndpointExists { network: String, endpoint: String },
    #[error("network '{network}' has endpoints ({endpoints}): disconnect them first")]
    HasEndpoints { network: String, endpoints: String },
    #[error("MAC address {mac} is already used by endpoint '{endpoint}' in network '{network}'")]
    MacInUse {
        mac: fdb::MacAddr,
        endpoint: String,
        network: String,
    },
    #[error("interface {0} is already a port of this switch")]
    AlreadyAttached(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("cannot open port {port}: {msg}")]
    Port { port: String, msg: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the datapath did not answer: {0}")]
    Datapath(String),
    #[error("the daemon is stopping; try again once it runs")]
    Stopping,
}
