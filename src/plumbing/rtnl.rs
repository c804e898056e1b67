//! rtnetlink connections bound to a chosen network namespace.

use std::path::PathBuf;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::{Handle, LinkUnspec};
use tokio::task::JoinHandle;

use super::error::{netlink_cause, netlink_errno};
use super::netns::{in_netns_async, Netns};
use super::PlumbingError;

/// An rtnetlink connection whose socket was opened in one network namespace and therefore
/// acts there, whichever thread later drives it. Dropping it stops the connection task.
#[derive(Debug)]
pub(crate) struct Rtnl {
    handle: Handle,
    task: JoinHandle<()>,
    /// `None` for the namespace of this process; kept for error messages.
    netns: Option<PathBuf>,
}

impl Rtnl {
    /// Opens a connection in `netns`, or in the namespace of the calling thread when `None`.
    /// Must be called within a Tokio runtime.
    pub(crate) async fn open(netns: Option<&Netns>) -> Result<Self, PlumbingError> {
        let (rtnl, ()) = Self::open_with(netns, || Ok(())).await?;
        Ok(rtnl)
    }

    /// Like [`Rtnl::open`], and also runs `extra` in the same namespace, on the same thread,
    /// to open other namespace-bound resources without a second thread.
    pub(crate) async fn open_with<X, F>(
        netns: Option<&Netns>,
        extra: F,
    ) -> Result<(Self, X), PlumbingError>
    where
        F: FnOnce() -> Result<X, PlumbingError> + Send + 'static,
        X: Send + 'static,
    {
        let path = netns.map(|netns| netns.path().to_owned());
        let error_path = path.clone();
        let open = move || {
            let (connection, handle, _) =
                rtnetlink::new_connection().map_err(|source| PlumbingError::OpenNetlink {
                    netns: error_path,
                    source,
                })?;
            Ok((connection, handle, extra()?))
        };

        let (connection, handle, extra) = match netns {
            None => open()?,
            Some(netns) => {
                // The socket must be created on the thread inside the namespace; entering the
                // runtime there lets it register with the reactor.
                let runtime = tokio::runtime::Handle::current();
                in_netns_async(netns, move || {
                    let _entered = runtime.enter();
                    open()
                })
                .await?
            }
        };
        let task = tokio::spawn(connection);
        Ok((
            Self {
                handle,
                task,
                netns: path,
            },
            extra,
        ))
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    pub(crate) fn netns(&self) -> Option<PathBuf> {
        self.netns.clone()
    }

    /// Returns the interface index of `ifname`, or `None` when there is no such interface.
    pub(crate) async fn link_index(&self, ifname: &str) -> Result<Option<u32>, PlumbingError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(ifname.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(Some(link.header.index)),
            Ok(None) => Ok(None),
            Err(error) if netlink_errno(&error) == Some(libc::ENODEV) => Ok(None),
            Err(error) => Err(PlumbingError::FindLink {
                ifname: ifname.to_owned(),
                netns: self.netns(),
                source: netlink_cause(error),
            }),
        }
    }

    /// Returns the names of all interfaces in the namespace.
    pub(crate) async fn link_names(&self) -> Result<Vec<String>, PlumbingError> {
        let links: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|error| PlumbingError::ListLinks {
                netns: self.netns(),
                source: netlink_cause(error),
            })?;
        Ok(links.iter().filter_map(link_name).collect())
    }

    /// Brings `ifname` up, addressing it by name.
    pub(crate) async fn set_up(&self, ifname: &str) -> Result<(), PlumbingError> {
        let message = LinkUnspec::new_with_name(ifname).up().build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|error| PlumbingError::SetLinkUp {
                ifname: ifname.to_owned(),
                netns: self.netns(),
                source: netlink_cause(error),
            })
    }

    /// Deletes `ifname`; returns false when it did not exist. Deleting one end of a veth
    /// deletes its peer too, wherever the peer is.
    pub(crate) async fn delete_link(&self, ifname: &str) -> Result<bool, PlumbingError> {
        let message = LinkUnspec::new_with_name(ifname).build();
        match self.handle.link().del_with_message(message).execute().await {
            Ok(()) => Ok(true),
            Err(error) if netlink_errno(&error) == Some(libc::ENODEV) => Ok(false),
            Err(error) => Err(PlumbingError::DeleteLink {
                ifname: ifname.to_owned(),
                netns: self.netns(),
                source: netlink_cause(error),
            }),
        }
    }
}

impl Drop for Rtnl {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        })
}
