//! The real [`Plumbing`]: netlink for the veth pair and OVSDB for the integration bridge.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::{Plumbing, Unplugged};
use crate::plumbing::{self, InterfaceConfig, Netns, OvsInterface, OvsdbClient, PlumbingError};

/// Plumbing on this host's kernel and Open vSwitch.
#[derive(Debug)]
pub struct HostPlumbing {
    ovsdb: OvsdbClient,
    bridge: String,
    datapath: OnceCell<Option<String>>,
}

impl HostPlumbing {
    pub fn new(ovsdb: OvsdbClient, bridge: String) -> Self {
        Self {
            ovsdb,
            bridge,
            datapath: OnceCell::new(),
        }
    }

    pub fn ovsdb(&self) -> &OvsdbClient {
        &self.ovsdb
    }

    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// Returns the bridge's Interface row named `ifname`, if there is one.
    pub async fn find_interface(
        &self,
        ifname: &str,
    ) -> Result<Option<OvsInterface>, PlumbingError> {
        Ok(self
            .interfaces()
            .await?
            .into_iter()
            .find(|row| row.name == ifname))
    }

    /// Lists the Interface rows of the integration bridge.
    pub async fn interfaces(&self) -> Result<Vec<OvsInterface>, PlumbingError> {
        self.ovsdb.list_interfaces(&self.bridge).await
    }
}

impl Plumbing for HostPlumbing {
    async fn datapath_type(&self) -> Result<Option<String>, PlumbingError> {
        // A bridge keeps its datapath type for its whole life, so one read serves every attach.
        self.datapath
            .get_or_try_init(|| self.ovsdb.bridge_datapath_type(&self.bridge))
            .await
            .cloned()
    }

    async fn next_free_ifname(&self, netns: &Netns) -> Result<String, PlumbingError> {
        plumbing::next_free_ifname(netns).await
    }

    async fn plug(
        &self,
        netns: &Netns,
        host_ifname: &str,
        iface: &InterfaceConfig,
        external_ids: &BTreeMap<String, String>,
    ) -> Result<(), PlumbingError> {
        let added = AtomicBool::new(false);
        let add_port = async {
            self.ovsdb
                .add_port(&self.bridge, host_ifname, external_ids)
                .await?;
            added.store(true, Ordering::Relaxed);
            Ok(())
        };
        // On failure plug_veth_with has deleted the pair, but not the OVS port.
        if let Err(error) = plumbing::plug_veth_with(netns, host_ifname, iface, add_port).await {
            if added.load(Ordering::Relaxed) {
                if let Err(cleanup) = self.ovsdb.del_port(&self.bridge, host_ifname).await {
                    tracing::warn!(host_ifname, error = %cleanup, "could not remove OVS port after failed plug; remove it with ovs-vsctl del-port");
                }
            }
            return Err(error);
        }
        Ok(())
    }

    async fn wait_flows_installed(
        &self,
        host_ifname: &str,
        timeout: Duration,
    ) -> Result<bool, PlumbingError> {
        // A timeout is not an error here: ML2/OVS never sets ovn-installed, and Neutron's
        // port status is the final word either way.
        match self.ovsdb.wait_ovn_installed(host_ifname, timeout).await {
            Ok(()) => Ok(true),
            Err(err) => {
                tracing::debug!(host_ifname, error = %err, "no ovn-installed mark; polling Neutron");
                Ok(false)
            }
        }
    }

    async fn plugged_ifname(
        &self,
        host_ifname: &str,
        netns: &Netns,
    ) -> Result<Option<String>, PlumbingError> {
        if !plumbing::link_exists(host_ifname).await? {
            return Ok(None);
        }
        // One row by name: listing the whole bridge would cost every start O(ports).
        let Some(external_ids) = self.ovsdb.interface_external_ids(host_ifname).await? else {
            return Ok(None);
        };
        let recorded = external_ids.get(super::OVS_KEY_NETNS);
        if recorded != Some(&super::netns_label(netns)) {
            return Ok(None);
        }
        Ok(Some(
            external_ids
                .get(super::OVS_KEY_IFNAME)
                .cloned()
                .unwrap_or_default(),
        ))
    }

    async fn unplug(&self, host_ifname: &str) -> Result<Unplugged, PlumbingError> {
        let ovs_port = self.ovsdb.del_port(&self.bridge, host_ifname).await?;
        let link = plumbing::delete_link(host_ifname).await?;
        Ok(Unplugged { ovs_port, link })
    }
}
