//! OpenStack over HTTP: credentials, Keystone v3 tokens and the Neutron calls Clampify makes.
//!
//! This module only speaks HTTP and makes no Linux calls. It turns credentials into a [`Session`] (one token,
//! renewed before it expires) and offers [`Neutron`] calls on top of it. The usual flow:
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::collections::HashMap;
//! use clampify::openstack::{CredentialOptions, Credentials, Neutron, Session};
//!
//! let env: HashMap<String, String> = std::env::vars().collect();
//! let credentials = Credentials::load(&CredentialOptions::default(), &env)?;
//! let neutron = Neutron::new(Session::new(credentials)?);
//! let network = neutron.find_network("demo-net").await?;
//! println!("{} has MTU {:?}", network.id, network.mtu);
//! # Ok(())
//! # }
//! ```

mod credentials;
mod http;
mod keystone;
mod neutron;
mod session;
#[cfg(test)]
pub(crate) mod testing;

pub use credentials::{
    AuthMethod, CredentialOptions, CredentialSource, Credentials, CredentialsError, DomainRef,
    Interface, ProjectRef, Scope, Secret, UserRef,
};
pub use http::{RequestError, RequestErrorKind};
pub use keystone::KeystoneError;
pub use neutron::{
    find_subnet_for_ip, FixedIp, FixedIpRequest, HostRoute, Network, Neutron, NeutronError, Port,
    PortBinding, PortCreate, PortFilters, SecurityGroup, Subnet,
};
pub use session::{Session, SessionError};
