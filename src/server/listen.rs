//! One process per listen address: a second gateway on a RADIUS address is refused at start-up
//! instead of silently taking a share of the traffic.
//!
//! The RADIUS sockets of one address share their port through `SO_REUSEPORT` (see
//! [`super::radius::bind_sockets`]), and Linux lets any other socket of the same user join such a
//! group: a second gateway would start without an error and the kernel would split the clients
//! between the two. Before binding that group, [`claim_udp`] therefore
//!
//! 1. takes a kernel-held claim on the address: an abstract Unix socket named after it
//!    (`tokengate/udp/127.0.0.1:1812`). Only one socket can hold a name, and the kernel drops it
//!    with the process (a crash or `SIGKILL` leaves nothing stale behind, unlike a lock file).
//!    It serialises two gateways started at the same instant on the same address;
//! 2. binds a probe socket *without* `SO_REUSEPORT` and closes it again: it fails with
//!    `EADDRINUSE` when any other socket holds the port on that address, on an overlapping
//!    wildcard address, or (IPv6 dual-stack) on the IPv4 side. It also resolves port 0 to the
//!    port the group will share.
//!
//! Every RADIUS address is claimed and probed before any group is bound, so the gateway's own
//! addresses (say `0.0.0.0:1812` and a dual-stack `[::]:1812`) never refuse each other. The TCP
//! listeners (TACACS+, admin API, metrics) do not use `SO_REUSEPORT`, so their bind already fails
//! on a taken address; [`in_use`] gives every listener the same message. Abstract names are
//! per network namespace, like ports.

use std::io;
use std::net::SocketAddr;

/// A claim on one listen address, held as long as the gateway serves it.
#[derive(Debug)]
pub struct Claim {
    #[cfg(target_os = "linux")]
    _holder: std::os::unix::net::UnixDatagram,
}

/// The error for an address another process serves.
pub fn in_use(addr: SocketAddr) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("another process is already serving {addr} (address in use)"),
    )
}

/// Claims `addr` for this process (see the module doc) and returns it with port 0 resolved.
pub fn claim_udp(addr: SocketAddr) -> io::Result<(SocketAddr, Claim)> {
    if addr.port() == 0 {
        // A port the kernel just picked is not anyone else's; claim what it picked.
        let resolved = probe_udp(addr)?;
        return Ok((resolved, claim("udp", resolved)?));
    }
    let claim = claim("udp", addr)?;
    let resolved = probe_udp(addr)?;
    Ok((resolved, claim))
}

/// Binds and closes a UDP socket without `SO_REUSEPORT` on `addr`; the address it got.
fn probe_udp(addr: SocketAddr) -> io::Result<SocketAddr> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    match sock.bind(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Err(in_use(addr)),
        Err(e) => return Err(e),
    }
    sock.local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("bound socket has no IP address"))
}

/// Holds the abstract Unix socket name `tokengate/<proto>/<addr>`.
#[cfg(target_os = "linux")]
fn claim(proto: &str, addr: SocketAddr) -> io::Result<Claim> {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("tokengate/{proto}/{addr}");
    let unix = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    match std::os::unix::net::UnixDatagram::bind_addr(&unix) {
        Ok(holder) => Ok(Claim { _holder: holder }),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(in_use(addr)),
        Err(e) => Err(e),
    }
}

/// Elsewhere only the probe guards the address.
#[cfg(not(target_os = "linux"))]
fn claim(_proto: &str, _addr: SocketAddr) -> io::Result<Claim> {
    Ok(Claim {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_address_is_refused_until_the_claim_is_dropped() {
        let (addr, first) = claim_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(addr.port(), 0);
        let err = claim_udp(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        assert!(err.to_string().contains("another process"), "{err}");
        drop(first);
        let (again, _claim) = claim_udp(addr).unwrap();
        assert_eq!(again, addr);
    }

    #[test]
    fn a_port_held_by_another_socket_is_refused_even_with_reuseport() {
        let other = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .unwrap();
        other.set_reuse_port(true).unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        other.bind(&any.into()).unwrap();
        let addr = other.local_addr().unwrap().as_socket().unwrap();
        let err = claim_udp(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    }
}
