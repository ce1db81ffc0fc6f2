//! How many encrypted connections, and handshakes in progress, one client
//! address and everyone together may hold (docs/reliability.md,
//! "Encrypted DNS limits"). A client at its limit has its next connection
//! closed at once and counted; the others are not affected.

use dashmap::DashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Default)]
struct Load {
    connections: usize,
    handshakes: usize,
}

/// Connection and handshake counts per client address.
pub struct Gate {
    clients: DashMap<IpAddr, Load>,
    open: AtomicUsize,
    max_connections: usize,
    per_client: usize,
    handshakes_per_client: usize,
}

/// One admitted connection; leaves the counts when dropped.
pub struct Pass {
    gate: Arc<Gate>,
    ip: IpAddr,
    handshaking: bool,
}

impl Gate {
    pub fn new(max_connections: usize, per_client: usize, handshakes_per_client: usize) -> Self {
        Gate {
            clients: DashMap::new(),
            open: AtomicUsize::new(0),
            max_connections,
            per_client,
            handshakes_per_client,
        }
    }

    /// A connection from `ip` starting its handshake, or `None` when a
    /// limit is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Pass> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let mut load = self.clients.entry(ip).or_default();
        if load.connections >= self.per_client || load.handshakes >= self.handshakes_per_client {
            drop(load);
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        load.connections += 1;
        load.handshakes += 1;
        Some(Pass {
            gate: self.clone(),
            ip,
            handshaking: true,
        })
    }

    /// Encrypted connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Pass {
    /// The handshake is over (done or failed): it no longer counts as one.
    pub fn handshake_done(&mut self) {
        if std::mem::take(&mut self.handshaking)
            && let Some(mut load) = self.gate.clients.get_mut(&self.ip)
        {
            load.handshakes = load.handshakes.saturating_sub(1);
        }
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.handshake_done();
        self.gate.open.fetch_sub(1, Ordering::AcqRel);
        let empty = match self.gate.clients.get_mut(&self.ip) {
            Some(mut load) => {
                load.connections = load.connections.saturating_sub(1);
                load.connections == 0
            }
            None => false,
        };
        if empty {
            self.gate
                .clients
                .remove_if(&self.ip, |_, load| load.connections == 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_at_its_limits_leaves_room_for_others() {
        let gate = Arc::new(Gate::new(10, 3, 2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mut first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        // Two handshakes in progress: the third waits for one to finish.
        assert!(gate.admit(a).is_none());
        first.handshake_done();
        let third = gate.admit(a).unwrap();
        // Three connections: the limit per address.
        assert!(gate.admit(a).is_none());
        assert!(gate.admit(b).is_some());
        drop(third);
        assert!(gate.admit(a).is_some());
        assert!(gate.open() <= 3);
    }

    #[test]
    fn the_total_is_capped_and_freed() {
        let gate = Arc::new(Gate::new(2, 10, 10));
        let one = gate.admit("192.0.2.1".parse().unwrap()).unwrap();
        let _two = gate.admit("192.0.2.2".parse().unwrap()).unwrap();
        assert!(gate.admit("192.0.2.3".parse().unwrap()).is_none());
        drop(one);
        assert!(gate.admit("192.0.2.3".parse().unwrap()).is_some());
        assert!(gate.clients.len() <= 2);
    }
}
