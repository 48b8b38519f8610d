//! Clusters exist only in server configuration; users pick one by name, so no
//! request can make the server call a URL a user supplied.

use super::secret::Secret;

/// The bearer token of the built-in sandbox cluster inside `serve`: the
/// sandbox checks it and the console sends it, both from this one definition.
pub const SANDBOX_TOKEN: &str = "sandbox-token";

/// One remote TMS API.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub name: String,
    pub label: String,
    /// Without a trailing slash.
    pub base_url: String,
    /// The server-side token; `None` means the user types one.
    pub token: Option<Secret>,
    /// Batches of runs in flight at once, across every instance.
    pub max_in_flight: u32,
    /// Batches of runs started per second, across every instance.
    pub max_per_second: Option<u32>,
    /// Four eyes: every action on this cluster waits for a second person's approval.
    pub approval_required: bool,
}

/// Batches in flight toward a cluster when its configuration does not say.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 4;

/// The configured clusters, names unique.
#[derive(Clone, Debug, Default)]
pub struct ClusterRegistry {
    clusters: Vec<Cluster>,
}

impl ClusterRegistry {
    pub fn new(clusters: Vec<Cluster>) -> Result<Self, String> {
        for (i, c) in clusters.iter().enumerate() {
            if clusters[..i].iter().any(|d| d.name == c.name) {
                return Err(format!("cluster name {:?} appears twice", c.name));
            }
        }
        Ok(Self { clusters })
    }

    pub fn get(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.iter()
    }
}
